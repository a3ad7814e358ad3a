package capture

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// headroomLoop measures, every HeadroomInterval, how much oplog lies
// before the durable position (its cluster time minus the oldest oplog
// entry's): when it reaches 0 the position falls off the oplog and capture
// stops with ChangeStreamHistoryLost. Below OplogHeadroomWarning it warns.
// Where the oplog cannot be read (mongos, no privilege) it gives up quietly.
func (c *Capture) headroomLoop(ctx context.Context, client *mongo.Client) error {
	oplog := client.Database("local").Collection("oplog.rs")
	t := time.NewTicker(c.cfg.HeadroomInterval)
	defer t.Stop()
	for {
		var first struct {
			TS bson.Timestamp `bson:"ts"`
		}
		err := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&first)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			c.log.Debug("oplog headroom not measured", "err", err)
			return nil
		}
		if pos := c.met.durableCT.Load(); pos > 0 && first.TS.T > 0 {
			headroom := time.Duration(pos-int64(first.TS.T)) * time.Second
			c.met.headroom.Set(headroom.Seconds())
			if headroom < c.cfg.OplogHeadroomWarning {
				c.log.Warn("the capture position is close to falling off the oplog; enlarge the oplog or speed capture up",
					"headroom", headroom, "warning_below", c.cfg.OplogHeadroomWarning)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
