package oplogwindow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/transform"
)

// Config tunes a Guard.
type Config struct {
	// Interval between measurements (default DefaultInterval).
	Interval time.Duration
	// Warning is the headroom below which the guard warns (default
	// DefaultWarning).
	Warning time.Duration
	// Repeat is how often a lasting warning is logged again (default
	// DefaultRepeat).
	Repeat time.Duration
}

// Defaults used for zero fields.
const (
	DefaultInterval = 30 * time.Second
	DefaultWarning  = 24 * time.Hour
	DefaultRepeat   = 10 * time.Minute
)

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Warning <= 0 {
		c.Warning = DefaultWarning
	}
	if c.Repeat <= 0 {
		c.Repeat = DefaultRepeat
	}
	return c
}

// PositionFunc returns the capture position's cluster time; ok is false
// when capture has no position yet.
type PositionFunc func(ctx context.Context) (ct transform.ClusterTime, ok bool, err error)

// FromPositions reads the position capture saved for source.
func FromPositions(p *buffer.Positions, source string) PositionFunc {
	return func(ctx context.Context) (transform.ClusterTime, bool, error) {
		pos, err := p.Load(ctx, source)
		if errors.Is(err, buffer.ErrNoPosition) {
			return transform.ClusterTime{}, false, nil
		}
		if err != nil {
			return transform.ClusterTime{}, false, err
		}
		if !pos.ClusterTime.IsZero() {
			return pos.ClusterTime, true, nil
		}
		ct, ok := buffer.ClusterTimeOfToken(pos.Token)
		return ct, ok, nil
	}
}

// Guard measures the oplog headroom (see the package documentation).
type Guard struct {
	cfg      Config
	client   *mongo.Client
	position PositionFunc
	gauge    prometheus.Gauge
	log      *slog.Logger

	// SnapshotRemaining, if set, returns the running snapshot's estimated
	// remaining time (negative when unknown or none is running); the guard
	// warns when the headroom is shorter.
	SnapshotRemaining func() time.Duration

	warned   bool
	lastWarn time.Time
}

// Headroom is one measurement.
type Headroom struct {
	Position transform.ClusterTime
	Oldest   transform.ClusterTime
	// Headroom is Position minus Oldest (seconds resolution).
	Headroom time.Duration
	// Warning says why the headroom is too small, "" when it is not.
	Warning string
}

// New returns a Guard; reg receives replicator_capture_oplog_headroom_seconds
// (nil: not registered).
func New(client *mongo.Client, position PositionFunc, cfg Config, reg prometheus.Registerer, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg.withDefaults(), client: client, position: position, log: log,
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replicator_capture_oplog_headroom_seconds",
			Help: "Capture position's cluster time minus the oldest entry in the source oplog: how long capture may fall behind before its resume point is lost.",
		})}
	if reg != nil {
		reg.MustRegister(g.gauge)
	}
	return g
}

// Run measures every Interval until ctx ends.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := g.Check(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("oplog headroom not measured", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check measures once, sets the gauge and logs a warning if due. It
// returns a zero Headroom without error while capture has no position.
func (g *Guard) Check(ctx context.Context) (Headroom, error) {
	pos, ok, err := g.position(ctx)
	if err != nil {
		return Headroom{}, fmt.Errorf("oplog headroom: capture position: %w", err)
	}
	if !ok {
		return Headroom{}, nil
	}
	oldest, err := OldestEntry(ctx, g.client)
	if err != nil {
		return Headroom{}, err
	}
	h := Headroom{Position: pos, Oldest: oldest, Headroom: time.Duration(int64(pos.T)-int64(oldest.T)) * time.Second}
	g.gauge.Set(h.Headroom.Seconds())
	switch rem := g.remaining(); {
	case h.Headroom < g.cfg.Warning:
		h.Warning = fmt.Sprintf("oplog headroom %s is below the %s warning threshold", h.Headroom, g.cfg.Warning)
	case rem > 0 && h.Headroom < rem:
		h.Warning = fmt.Sprintf("oplog headroom %s is shorter than the snapshot's estimated remaining %s", h.Headroom, rem.Round(time.Second))
	}
	g.report(h)
	return h, nil
}

func (g *Guard) remaining() time.Duration {
	if g.SnapshotRemaining == nil {
		return -1
	}
	return g.SnapshotRemaining()
}

func (g *Guard) report(h Headroom) {
	now := time.Now()
	switch {
	case h.Warning != "" && (!g.warned || now.Sub(g.lastWarn) >= g.cfg.Repeat):
		g.log.Warn(h.Warning+"; if capture falls further behind, recovery needs `replicator resync --all`",
			"headroom", h.Headroom, "position", h.Position, "oldest_oplog_entry", h.Oldest)
		g.warned, g.lastWarn = true, now
	case h.Warning == "" && g.warned:
		g.log.Info("oplog headroom back above the warning threshold", "headroom", h.Headroom)
		g.warned = false
	}
}

// OldestEntry returns the cluster time of the oldest entry in the
// source's oplog (local.oplog.rs, first in natural order).
func OldestEntry(ctx context.Context, client *mongo.Client) (transform.ClusterTime, error) {
	var e struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err := client.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&e)
	if err != nil {
		return transform.ClusterTime{}, fmt.Errorf("oplog headroom: read the oldest oplog entry: %w", err)
	}
	return transform.ClusterTime{T: e.TS.T, I: e.TS.I}, nil
}
