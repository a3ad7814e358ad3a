package specrunner

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// clientEntity is a client with its command monitoring record.
type clientEntity struct {
	id               string
	client           *mongo.Client
	observe          map[string]bool // observed event types
	ignore           map[string]bool // lower-case command names to ignore
	observeSensitive bool

	mu            sync.Mutex
	listening     bool
	events        []commandEvent
	sensitiveReqs map[int64]bool // request ids of ignored sensitive commands
}

var clientKeys = []string{"id", "uriOptions", "useMultipleMongoses", "observeEvents",
	"ignoreCommandMonitoringEvents", "observeSensitiveCommands", "serverApi"}

// failPointHeartbeat is the driver's smallest heartbeat interval.
const failPointHeartbeat = 500 * time.Millisecond

func (r *Runner) createClient(e *entities, id string, def bson.Raw, fastHeartbeat bool) error {
	if err := checkKeys(def, "client", clientKeys); err != nil {
		return err
	}
	var spec struct {
		URIOptions               bson.Raw `bson:"uriOptions"`
		UseMultipleMongoses      *bool    `bson:"useMultipleMongoses"`
		ObserveEvents            []string `bson:"observeEvents"`
		IgnoreCommandMonitoring  []string `bson:"ignoreCommandMonitoringEvents"`
		ObserveSensitiveCommands bool     `bson:"observeSensitiveCommands"`
		ServerAPI                *struct {
			Version           string `bson:"version"`
			Strict            *bool  `bson:"strict"`
			DeprecationErrors *bool  `bson:"deprecationErrors"`
		} `bson:"serverApi"`
	}
	if err := bson.Unmarshal(def, &spec); err != nil {
		return err
	}
	uri := r.cfg.URI
	if r.cfg.Server.Topology == TopologySharded && spec.UseMultipleMongoses != nil {
		if *spec.UseMultipleMongoses {
			if !strings.Contains(hostList(uri), ",") {
				return fmt.Errorf("useMultipleMongoses: true needs a connection string with several mongos hosts")
			}
		} else {
			uri = singleHost(uri)
		}
	}
	uri, err := withURIOptions(uri, spec.URIOptions)
	if err != nil {
		return fmt.Errorf("uriOptions: %w", err)
	}
	c := &clientEntity{
		id:               id,
		observe:          map[string]bool{},
		ignore:           map[string]bool{},
		observeSensitive: spec.ObserveSensitiveCommands,
		sensitiveReqs:    map[int64]bool{},
	}
	for _, ev := range spec.ObserveEvents {
		switch ev {
		case "commandStartedEvent", "commandSucceededEvent", "commandFailedEvent":
			c.observe[ev] = true
		default:
			return fmt.Errorf("observeEvents: %q is not supported by this runner", ev)
		}
	}
	for _, name := range spec.IgnoreCommandMonitoring {
		c.ignore[strings.ToLower(name)] = true
	}
	opts := options.Client().ApplyURI(uri).SetMonitor(c.monitor())
	if fastHeartbeat && !hasKeyFold(spec.URIOptions, "heartbeatFrequencyMS") {
		opts.SetHeartbeatInterval(failPointHeartbeat)
	}
	if spec.ServerAPI != nil {
		api := options.ServerAPI(options.ServerAPIVersion(spec.ServerAPI.Version))
		if spec.ServerAPI.Strict != nil {
			api.SetStrict(*spec.ServerAPI.Strict)
		}
		if spec.ServerAPI.DeprecationErrors != nil {
			api.SetDeprecationErrors(*spec.ServerAPI.DeprecationErrors)
		}
		opts.SetServerAPIOptions(api)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return err
	}
	c.client = client
	e.clients[id] = c
	return nil
}
