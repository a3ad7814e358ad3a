package capture

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Lag is measured on this host's clock (ARCHITECTURE.md, guarantee 9), but
// change events carry the source's wall time, and the source's clock may
// be off: with the primary ahead by X, an event's wall time is X in the
// future here, and a stall would read lag 0 for X. So capture measures the
// skew, the source's clock minus this host's (hello's localTime against
// the midpoint of the round trip, like NTP), and moves every source wall
// time onto this host's clock before it feeds the lag metric or goes into
// an envelope (envelope.md, wall_time). The apply side compares those times
// with its own clock; hosts of one deployment are assumed to keep their
// clocks in step (NTP), the source is not.

// skewInterval is how often the skew is measured again.
const skewInterval = 30 * time.Second

// maxSkewRTT bounds the round trip of a measurement that is trusted: the
// error of one is at most half the round trip.
const maxSkewRTT = 2 * time.Second

// skew is the last measured source clock skew.
type skew struct{ nanos atomic.Int64 }

// local moves a source wall time onto this host's clock.
func (s *skew) local(wall time.Time) time.Time {
	if wall.IsZero() {
		return wall
	}
	return wall.Add(-time.Duration(s.nanos.Load()))
}

// measureSkew measures the skew once and records it (and the gauge).
func (c *Capture) measureSkew(ctx context.Context, client *mongo.Client) error {
	var reply struct {
		LocalTime time.Time `bson:"localTime"`
	}
	sent := time.Now()
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&reply); err != nil {
		return fmt.Errorf("measure the source's clock: %w", err)
	}
	rtt := time.Since(sent)
	if reply.LocalTime.IsZero() {
		return fmt.Errorf("measure the source's clock: hello reported no localTime")
	}
	if rtt > maxSkewRTT {
		return fmt.Errorf("measure the source's clock: round trip %s is too long to trust", rtt)
	}
	d := reply.LocalTime.Sub(sent.Add(rtt / 2))
	c.skew.nanos.Store(int64(d))
	c.met.skew.Set(d.Seconds())
	return nil
}

// skewLoop measures the skew every skewInterval until ctx ends. A failed
// measurement keeps the last value and is logged once until one succeeds.
func (c *Capture) skewLoop(ctx context.Context, client *mongo.Client) error {
	failing := false
	t := time.NewTicker(skewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := c.measureSkew(ctx, client); err != nil {
			if !failing && ctx.Err() == nil {
				c.log.Warn("source clock skew not measured; lag uses the last measurement", "err", SourceError(c.cfg.URI, err))
			}
			failing = true
			continue
		}
		failing = false
	}
}
