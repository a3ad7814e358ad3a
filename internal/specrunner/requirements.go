package specrunner

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Topology names used by runOnRequirements.
const (
	TopologySingle       = "single"
	TopologyReplicaSet   = "replicaset"
	TopologySharded      = "sharded"
	TopologyLoadBalanced = "load-balanced"
)

// ServerInfo is what runOnRequirements are evaluated against.
type ServerInfo struct {
	// Version comes from buildInfo's versionArray.
	Version Version
	// Topology is one of the Topology* constants, from hello.
	Topology string
	// Serverless and Auth describe the deployment; neither can be detected
	// from the server, so the caller states them.
	Serverless bool
	Auth       bool

	client *mongo.Client
	params map[string]bson.RawValue
}

// DiscoverServer asks the server behind client for its version (buildInfo)
// and topology (hello).
func DiscoverServer(ctx context.Context, client *mongo.Client) (ServerInfo, error) {
	info := ServerInfo{client: client, params: map[string]bson.RawValue{}}
	admin := client.Database("admin")

	var build struct {
		Version      string  `bson:"version"`
		VersionArray []int32 `bson:"versionArray"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return info, fmt.Errorf("buildInfo: %w", err)
	}
	if len(build.VersionArray) >= 3 {
		info.Version = Version{int(build.VersionArray[0]), int(build.VersionArray[1]), int(build.VersionArray[2])}
	} else {
		v, err := ParseVersion(build.Version)
		if err != nil {
			return info, fmt.Errorf("buildInfo: %w", err)
		}
		info.Version = v
	}

	hello, err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		return info, fmt.Errorf("hello: %w", err)
	}
	info.Topology = topologyFromHello(hello)
	return info, nil
}

// topologyFromHello classifies a hello reply the way the format's
// topologies are named.
func topologyFromHello(hello bson.Raw) string {
	if s, ok := hello.Lookup("msg").StringValueOK(); ok && s == "isdbgrid" {
		return TopologySharded
	}
	if _, err := hello.LookupErr("serviceId"); err == nil {
		return TopologyLoadBalanced
	}
	if _, err := hello.LookupErr("setName"); err == nil {
		return TopologyReplicaSet
	}
	return TopologySingle
}

// Satisfied reports whether any of reqs is met (an empty list is met). When
// none is, reason says why the first one was not.
func (s *ServerInfo) Satisfied(ctx context.Context, reqs []Requirement) (ok bool, reason string, err error) {
	if len(reqs) == 0 {
		return true, "", nil
	}
	var reasons []string
	for _, r := range reqs {
		why, err := s.unmet(ctx, r)
		if err != nil {
			return false, "", err
		}
		if why == "" {
			return true, "", nil
		}
		reasons = append(reasons, why)
	}
	return false, strings.Join(reasons, "; or "), nil
}

// unmet returns "" when r is met, else the reason it is not.
func (s *ServerInfo) unmet(ctx context.Context, r Requirement) (string, error) {
	if r.MinServerVersion != "" {
		min, err := ParseVersion(r.MinServerVersion)
		if err != nil {
			return "", fmt.Errorf("minServerVersion: %w", err)
		}
		if s.Version.Compare(min) < 0 {
			return fmt.Sprintf("server %s < minServerVersion %s", s.Version, r.MinServerVersion), nil
		}
	}
	if r.MaxServerVersion != "" {
		max, err := ParseVersion(r.MaxServerVersion)
		if err != nil {
			return "", fmt.Errorf("maxServerVersion: %w", err)
		}
		if s.Version.Compare(max) > 0 {
			return fmt.Sprintf("server %s > maxServerVersion %s", s.Version, r.MaxServerVersion), nil
		}
	}
	if len(r.Topologies) > 0 && !topologyMatches(s.Topology, r.Topologies) {
		return fmt.Sprintf("topology %s not in %v", s.Topology, r.Topologies), nil
	}
	switch r.Serverless {
	case "", "allow":
	case "require":
		if !s.Serverless {
			return "requires serverless", nil
		}
	case "forbid":
		if s.Serverless {
			return "forbids serverless", nil
		}
	default:
		return "", fmt.Errorf("serverless: unknown value %q", r.Serverless)
	}
	if r.Auth != nil && *r.Auth != s.Auth {
		return fmt.Sprintf("requires auth=%v", *r.Auth), nil
	}
	if r.CSFLE != nil && *r.CSFLE {
		return "requires client-side field level encryption, which this runner does not support", nil
	}
	if r.AuthMechanism != "" {
		v, ok, err := s.parameter(ctx, "authenticationMechanisms")
		if err != nil {
			return "", err
		}
		found := false
		if ok {
			if arr, isArr := v.ArrayOK(); isArr {
				vals, _ := arr.Values()
				for _, m := range vals {
					if str, isStr := m.StringValueOK(); isStr && strings.EqualFold(str, r.AuthMechanism) {
						found = true
					}
				}
			}
		}
		if !found {
			return fmt.Sprintf("requires auth mechanism %s", r.AuthMechanism), nil
		}
	}
	if len(r.ServerParameters) > 0 {
		elems, err := r.ServerParameters.Elements()
		if err != nil {
			return "", fmt.Errorf("serverParameters: %w", err)
		}
		for _, e := range elems {
			actual, ok, err := s.parameter(ctx, e.Key())
			if err != nil {
				return "", err
			}
			if !ok {
				return fmt.Sprintf("server parameter %s not supported", e.Key()), nil
			}
			if !valuesEqual(e.Value(), actual) {
				return fmt.Sprintf("server parameter %s is %s, want %s", e.Key(), actual, e.Value()), nil
			}
		}
	}
	return "", nil
}

func topologyMatches(actual string, wanted []string) bool {
	for _, w := range wanted {
		if w == actual {
			return true
		}
		// "sharded-replicaset" is deprecated; since 3.6 every shard is a
		// replica set, so a sharded cluster satisfies it.
		if w == "sharded-replicaset" && actual == TopologySharded {
			return true
		}
	}
	return false
}

// parameter fetches one server parameter with getParameter, caching the
// answer. ok is false when the server does not know the parameter (any
// error from getParameter counts as that, as the format requires).
func (s *ServerInfo) parameter(ctx context.Context, name string) (bson.RawValue, bool, error) {
	if v, ok := s.params[name]; ok {
		return v, v.Type != 0, nil
	}
	if s.client == nil {
		return bson.RawValue{}, false, nil
	}
	reply, err := s.client.Database("admin").RunCommand(ctx,
		bson.D{{Key: "getParameter", Value: 1}, {Key: name, Value: 1}}).Raw()
	var v bson.RawValue
	if err == nil {
		v, _ = reply.LookupErr(name)
	}
	if s.params == nil {
		s.params = map[string]bson.RawValue{}
	}
	s.params[name] = v
	return v, v.Type != 0, nil
}

// checkRequirementKeys checks every runOnRequirement in the array value v.
func checkRequirementKeys(v bson.RawValue) error {
	arr, ok := v.ArrayOK()
	if !ok {
		return fmt.Errorf("runOnRequirements is not an array")
	}
	vals, err := arr.Values()
	if err != nil {
		return err
	}
	for _, rv := range vals {
		doc, ok := rv.DocumentOK()
		if !ok {
			return fmt.Errorf("runOnRequirement is not a document")
		}
		if err := checkKeys(doc, "runOnRequirement", requirementKeys); err != nil {
			return err
		}
	}
	return nil
}
