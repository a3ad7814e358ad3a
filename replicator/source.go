package replicator

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/replicator/redact"
)

// OpenSource returns a MongoDB client for uri, named appName in the
// server's logs and currentOp: the source client of the snapshot
// coordinator, the oplog-window guard and the snapshot and resync commands.
// Capture connects on its own (capture.New), with its own pool.
func OpenSource(uri, appName string) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName(appName))
	if err != nil {
		return nil, fmt.Errorf("source: %w", redact.Error(err))
	}
	return client, nil
}

// CloseSource disconnects client, waiting at most five seconds.
func CloseSource(client *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = client.Disconnect(ctx)
}
