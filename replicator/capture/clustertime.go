package capture

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/transform"
)

// ClusterTime returns the source's current majority-committed cluster time:
// the operationTime of a majority read, or else the gossiped $clusterTime.
//
// It is the one source of T0: capture's first start, and every snapshot
// and resync (package snapshot). A snapshot's T0 comes from here, before any document is read: every
// write at or before T0 is majority-committed and so visible to the
// snapshot's majority reads, and every later write is in a change stream
// opened at T0.
func ClusterTime(ctx context.Context, client *mongo.Client) (transform.ClusterTime, error) {
	cmd := bson.D{
		{Key: "find", Value: "system.version"},
		{Key: "filter", Value: bson.D{}},
		{Key: "limit", Value: 1},
		{Key: "singleBatch", Value: true},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "majority"}}},
	}
	raw, err := client.Database("admin").RunCommand(ctx, cmd).Raw()
	if err != nil {
		// Some deployments refuse reads of admin.system.version; any
		// command returns $clusterTime. A source that could not be
		// reached or refused the login fails the same way again, and its
		// first error is the one that names why.
		if !refusedRead(err) {
			return transform.ClusterTime{}, fmt.Errorf("read cluster time: %w", err)
		}
		raw, err = client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Raw()
		if err != nil {
			return transform.ClusterTime{}, fmt.Errorf("read cluster time: %w", err)
		}
	}
	if t, i, ok := raw.Lookup("operationTime").TimestampOK(); ok {
		return transform.ClusterTime{T: t, I: i}, nil
	}
	if t, i, ok := raw.Lookup("$clusterTime", "clusterTime").TimestampOK(); ok {
		return transform.ClusterTime{T: t, I: i}, nil
	}
	return transform.ClusterTime{}, errors.New("read cluster time: the source reports neither operationTime nor $clusterTime (is it a replica set or sharded cluster?)")
}

// refusedRead reports whether the server answered a read with an error of
// its own (a missing privilege, say) rather than not being reached or
// refusing the login.
func refusedRead(err error) bool {
	code, _, _, ok := serverError(err)
	return ok && code != 0 && code != codeAuthenticationFailed
}
