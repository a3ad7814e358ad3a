package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/capture/oplogwindow"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/transform"
)

// onHistoryLostResync is the source.on_history_lost value that resyncs
// automatically (the default, stop, stops capture with the recovery
// command).
const onHistoryLostResync = "resync"

// sidecars are what runs beside capture: the snapshot coordinator (when
// Options.Snapshot is set) and the oplog-window guard, on a source client
// of their own.
type sidecars struct {
	client *mongo.Client
	uri    string                // source.uri, to name the cause of its errors
	co     *snapshot.Coordinator // nil without Options.Snapshot
	// newGuard creates the guard (registering its gauge) once the oplog
	// proves readable.
	newGuard func() *oplogwindow.Guard
	log      *slog.Logger
}

// newSidecars connects to the source and wires the coordinator's hooks
// into c: OnFirstStart always, OnHistoryLost only with
// source.on_history_lost: resync. The guard is the one owner of
// replicator_capture_oplog_headroom_seconds and the headroom warning; it
// also warns when the headroom is shorter than the running snapshot's
// estimated remaining time.
func newSidecars(cfg *config.Config, withSnapshot bool, c *capture.Capture, buf *buffer.Buffer, pool *pgxpool.Pool,
	mappings []*transform.Mapping, reg prometheus.Registerer, log *slog.Logger) (*sidecars, error) {
	client, err := OpenSource(cfg.Source.URI, "replicator-snapshot")
	if err != nil {
		return nil, err
	}
	s := &sidecars{client: client, uri: cfg.Source.URI, log: log}
	source := cfg.ForCapture().Source
	s.newGuard = func() *oplogwindow.Guard {
		g := oplogwindow.New(client, oplogwindow.FromPositions(buf.Positions(), source),
			cfg.ForGuard(), reg, log.With("component", "oplogwindow"))
		if s.co != nil {
			g.SnapshotRemaining = s.co.Remaining
		}
		return g
	}
	if withSnapshot {
		s.co = snapshot.NewCoordinator(snapshot.Deps{Source: client, Target: pool, Mappings: mappings,
			Metrics: snapshot.NewMetrics(reg), Logger: log.With("component", "snapshot")},
			cfg.ForSnapshot())
		c.OnFirstStart = s.co.OnFirstStart
		if cfg.Source.OnHistoryLost == onHistoryLostResync {
			c.OnHistoryLost = s.co.OnHistoryLost
		}
	}
	if pool != nil {
		c.Checkpoints = pool
	}
	return s, nil
}

// start runs the guard, and the coordinator once capture holds its lease
// and has settled its start position (capture.Started): a standby process
// copies nothing, and on a first start the coordinator finds the run
// OnFirstStart recorded instead of racing it. A coordinator error stops the
// process like a capture stop; the next start resumes the unfinished runs.
func (s *sidecars) start(ctx context.Context, g *errgroup.Group, c *capture.Capture, h *health) {
	g.Go(func() error { return s.runGuard(ctx) })
	if s.co == nil {
		return
	}
	g.Go(func() error {
		select {
		case <-c.Started():
		case <-ctx.Done():
			return nil
		}
		if err := s.co.Run(ctx); err != nil {
			err = fmt.Errorf("%w (a restart resumes it)", err)
			h.fail(err)
			return err
		}
		return nil
	})
}

// runGuard runs the oplog-window guard, unless the source's oplog cannot
// be read at all (a mongos, or no privilege on local.oplog.rs): then the
// headroom is not measured, said once, and the gauge is not registered
// rather than reading a misleading 0.
func (s *sidecars) runGuard(ctx context.Context) error {
	_, err := oplogwindow.OldestEntry(ctx, s.client)
	if err != nil && ctx.Err() == nil && oplogUnreadable(err) {
		s.log.Info("the source's oplog cannot be read (mongos, or no privilege on local.oplog.rs): oplog headroom not measured", "err", capture.SourceError(s.uri, err))
		return nil
	}
	return s.newGuard().Run(ctx)
}

// oplogUnreadable reports whether err is the server refusing or lacking
// the oplog, rather than a passing failure to reach it. A refused login
// is the whole source's problem, which capture reports, not the oplog's;
// and an error without a server's code (a cleared connection pool, say)
// says nothing about the oplog.
func oplogUnreadable(err error) bool {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return true
	}
	var se mongo.ServerError
	if !errors.As(err, &se) || mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return false
	}
	var ce mongo.CommandError
	return !errors.As(err, &ce) || (ce.Code != 0 && ce.Code != codeAuthenticationFailed)
}

// codeAuthenticationFailed is MongoDB's AuthenticationFailed.
const codeAuthenticationFailed = 18

func (s *sidecars) close() {
	CloseSource(s.client)
}
