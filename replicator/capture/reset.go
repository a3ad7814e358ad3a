package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/transform"
)

// LeaseWait bounds how long ResetCapture waits for the capture lease.
const LeaseWait = 30 * time.Second

// ResetCapture moves a stopped capture's position to t0, purges the
// buffered events of namespaces and forgets their holds. It is the OnT0 step of resync --all: the
// resync copies every document as of T0 or later, so the buffered events
// (all older than T0, captured before the history was lost) are superseded,
// and dropping them keeps a stale event of a document deleted in the lost
// window from bringing its row back after the sweep. capture then restarts
// its change stream at T0.
//
// It holds the capture lease while it works, so it fails (after LeaseWait)
// instead of racing a capture process that is still running.
func ResetCapture(ctx context.Context, buf *buffer.Buffer, target checkpoints.Querier, source string, namespaces []string, t0 transform.ClusterTime) error {
	lctx, cancel := context.WithTimeout(ctx, LeaseWait)
	lease, err := buf.AcquireLease(lctx, source, LeaseWait)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("reset capture position: capture of source %q still holds its lease; stop it first", source)
	}
	if err != nil {
		return fmt.Errorf("reset capture position: %w", err)
	}
	defer lease.Release(context.WithoutCancel(ctx))
	if err := PurgeBuffered(ctx, buf, target, namespaces); err != nil {
		return fmt.Errorf("reset capture position: %w", err)
	}
	if err := buf.Positions().Save(ctx, source, buffer.Position{ClusterTime: t0}); err != nil {
		return fmt.Errorf("reset capture position: %w", err)
	}
	if err := clearHolds(ctx, buf.Holds(), source, namespaces); err != nil { // units: a partition's hold is its collection's
		return fmt.Errorf("reset capture position: %w", err)
	}
	return nil
}

// clearHolds forgets the holds of namespaces once capture restarts at a
// resync's T0 that covers them all: the events that held them are before
// T0 and are never read again.
func clearHolds(ctx context.Context, holds *buffer.Holds, source string, namespaces []string) error {
	for _, unit := range namespaces {
		ns, _ := envelope.ParseUnit(unit)
		if err := holds.Delete(ctx, source, ns); err != nil {
			return err
		}
	}
	return nil
}

// layoutSubjects adds to subjects ns's subjects of every partition layout
// holding messages (the unpartitioned subject, and ".~p<i>of<n>" ones):
// events buffered before the partitions changed are as superseded as the
// rest, and left there they would keep capture from accepting the new
// layout (layout.go).
func layoutSubjects(ctx context.Context, stream jetstream.Stream, buf *buffer.Buffer, ns string, subjects map[string]bool) error {
	base := buf.Subject(ns)
	subjects[base] = true
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(base+".*"))
	if err != nil {
		return fmt.Errorf("purge buffer: %s: %w", ns, err)
	}
	for s := range info.State.Subjects {
		if tok, ok := strings.CutPrefix(s, base+"."); ok {
			if _, ok := envelope.ParseToken(tok); ok {
				subjects[s] = true
			}
		}
	}
	return nil
}

// PurgeBuffered drops every buffered event of namespaces, which lists apply
// units (a partitioned collection's partitions, config.Units). A running capture
// that handles a lost history itself (Coordinator.OnHistoryLost) calls it
// before reopening its stream at T0, under the lease it already holds; no
// event is published while it runs.
//
// The purge is deliberate, so it must not look like loss to the applier:
// every namespace's apply checkpoint is moved forward to the stream's last
// sequence at purge time (bumping its epoch, so a running applier restarts
// its consumer there). Otherwise the applier would find sequences missing
// below the stream's first one and report them as removed by retention.
// target may be nil only when no apply checkpoints exist yet.
func PurgeBuffered(ctx context.Context, buf *buffer.Buffer, target checkpoints.Querier, namespaces []string) error {
	stream, last, err := bufferStream(ctx, buf)
	if err != nil {
		return fmt.Errorf("purge buffer: %w", err)
	}
	if stream == nil {
		return nil
	}
	// Each subject once: the units' own, and every layout's of their
	// namespaces.
	subjects, seen := map[string]bool{}, map[string]bool{}
	for _, unit := range namespaces {
		subjects[buf.UnitSubject(unit)] = true
		if ns, _ := envelope.ParseUnit(unit); !seen[ns] {
			seen[ns] = true
			if err := layoutSubjects(ctx, stream, buf, ns, subjects); err != nil {
				return err
			}
		}
	}
	for s := range subjects {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(s)); err != nil {
			return fmt.Errorf("purge buffer: %s: %w", s, err)
		}
	}
	if target == nil || last == 0 {
		return nil
	}
	for _, ns := range namespaces {
		cp, err := checkpoints.Get(ctx, target, ns)
		if err != nil && !errors.Is(err, checkpoints.ErrNotFound) {
			return fmt.Errorf("purge buffer: %w", err)
		}
		if cp.Seq >= last {
			continue
		}
		if _, err := checkpoints.Set(ctx, target, ns, last, checkpoints.SetOptions{AllowForward: true}); err != nil {
			return fmt.Errorf("purge buffer: %w", err)
		}
	}
	return nil
}
