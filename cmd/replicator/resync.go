package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/replicator/snapshot"
	"github.com/mongopg/replicator/transform"
)

func resyncCommand() command {
	return command{
		name:    "resync",
		summary: "re-copy collections and remove rows whose documents are gone (recovery)",
		run:     runResync,
	}
}

func runResync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Re-copy collections in place while the others keep streaming: every document\n" +
		"is loaded at a new T0 under the version guard, then rows (and child rows) the\n" +
		"copy did not see and nothing has written since T0 are removed. Readers never\n" +
		"see a table empty. Resumable like snapshot.\n\n" +
		"--all is the recovery from a lost resume token (ChangeStreamHistoryLost) and\n" +
		"from a mapping change: it also moves the capture position to T0 and drops the\n" +
		"older buffered events, so capture must be stopped; start it again afterwards\n" +
		"(or while the resync copies)."
	fs := newFlagSet("resync", "resync --config FILE (--collection DB.COLL,... | --all)", summary, stderr)
	o := addSnapshotFlags(fs)
	all := fs.Bool("all", false, "resync every configured collection and reset the capture position")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *all == (*o.collections != "") {
		return fmt.Errorf("%w: give either --collection or --all", errUsage)
	}
	env, err := o.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer env.close()
	return interrupted(ctx, "resync", capture.SourceError(env.cfg.Source.URI, resync(ctx, env, *all)))
}

// resync runs an opened resync: of every collection (all) or of the
// --collection ones, whose capture holds it releases first.
func resync(ctx context.Context, env *snapshotEnv, all bool) error {
	if all {
		// Capture restarts at the resync's T0: an interrupted resync --all
		// resumes only if its T0 is still in the oplog.
		floor, err := snapshot.OplogFloor(ctx, env.deps.Source)
		if err != nil {
			return err
		}
		env.scfg.Collections, env.scfg.NotBefore = nil, floor
		env.scfg.OnT0 = func(ctx context.Context, t0 transform.ClusterTime) error {
			buf, err := buffer.Open(ctx, env.cfg.ForBuffer(), env.log)
			if err != nil {
				return err
			}
			defer buf.Close()
			source := env.cfg.ForCapture().Source
			if err := capture.ResetCapture(ctx, buf, env.deps.Target, source, config.Units(env.deps.Mappings), t0); err != nil {
				return err
			}
			env.log.Info("capture position reset for resync --all", "source", source, "t0", fmt.Sprintf("%d.%d", t0.T, t0.I))
			return nil
		}
	}
	if !all {
		// A held collection (dropped, renamed, or halted by on_error:
		// halt) is released first: capture publishes its events after the
		// release, and the resync starts there.
		t0, err := releaseHolds(ctx, env)
		if err != nil {
			return err
		}
		if !t0.IsZero() {
			env.scfg.T0 = t0
		}
	}
	return snapshot.Resync(ctx, env.deps, env.scfg)
}

// releaseHolds releases the capture holds of the collections to resync and
// returns the cluster time the resync must start from (zero when none is
// held).
func releaseHolds(ctx context.Context, env *snapshotEnv) (transform.ClusterTime, error) {
	buf, err := buffer.Open(ctx, env.cfg.ForBuffer(), env.log)
	if err != nil {
		return transform.ClusterTime{}, err
	}
	defer buf.Close()
	t0, err := capture.ReleaseHolds(ctx, buf, env.cfg.ForCapture().Source, env.scfg.Collections,
		func(ctx context.Context) (transform.ClusterTime, error) {
			return capture.ClusterTime(ctx, env.deps.Source)
		})
	if err != nil {
		return t0, err
	}
	if !t0.IsZero() {
		env.log.Info("capture holds released; the resync starts at their release", "collections", env.scfg.Collections,
			"t0", fmt.Sprintf("%d.%d", t0.T, t0.I))
	}
	return t0, nil
}
