package snapshot

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/capture/oplogwindow"
	"github.com/mongopg/replicator/transform"
)

// OplogFloor returns the earliest T0 a recovery from lost history may
// resume: the oldest entry of the source's oplog. Capture restarts its
// change stream at the resync's T0, so a T0 before it would be lost again
// at once. Where the oplog cannot be read (a mongos, no privilege on
// local.oplog.rs) it returns the current cluster time, so every
// unfinished run starts over at a new T0, which is always in the oplog.
func OplogFloor(ctx context.Context, client *mongo.Client) (transform.ClusterTime, error) {
	if oldest, err := oplogwindow.OldestEntry(ctx, client); err == nil && !oldest.IsZero() {
		return oldest, nil
	}
	return capture.ClusterTime(ctx, client)
}
