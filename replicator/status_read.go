package replicator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/sink"
)

// StatusSources is what ReadStatus reads: the buffer and the target as
// the caller opened them, or the errors that kept it from opening them.
type StatusSources struct {
	// Buffer is nil when BufferErr says why it could not be opened;
	// BufferURL and BufferStream then name the buffer in the report.
	Buffer       *buffer.Buffer
	BufferErr    error
	BufferURL    string
	BufferStream string
	// Target is nil when there is none (TargetErr nil) or when TargetErr
	// says why it could not be reached.
	Target    *pgxpool.Pool
	TargetErr error
	// Source names the capture position; Collections are the configured
	// source namespaces, in config order.
	Source      string
	Collections []string
}

// ReadStatus gathers the Status of one replicator from its buffer and
// target: the one data path of `replicator status` (both formats) and of
// /status. It reads and never changes anything. What cannot be read is
// recorded in the document (an error field, a null value), never
// returned: Assess turns it into problems. ctx bounds every read.
func ReadStatus(ctx context.Context, in StatusSources) Status {
	now := time.Now()
	st := Status{
		Version:  Build(),
		Time:     now.UTC(),
		Holds:    []HoldStatus{},
		Problems: []string{},
		Capture:  CaptureStatus{Source: in.Source},
		Buffer:   BufferStatus{URL: redact.String(in.BufferURL), Stream: in.BufferStream},
		Target:   TargetStatus{Configured: in.Target != nil || in.TargetErr != nil},
	}
	held := map[string]bool{}
	if in.Buffer == nil {
		msg := "not opened"
		if in.BufferErr != nil {
			msg = redact.Error(in.BufferErr).Error()
		}
		st.Buffer.Error, st.Capture.Error = msg, "buffer unreachable"
	} else {
		readBuffer(ctx, in, now, &st, held)
	}
	cps := map[string]checkpoints.Checkpoint{}
	switch {
	case in.TargetErr != nil:
		st.Target.Error = redact.Error(in.TargetErr).Error()
	case in.Target != nil:
		list, err := checkpoints.List(ctx, in.Target)
		if err != nil {
			st.Target.Error = noAnswer("PostgreSQL", err)
		} else {
			st.Target.Reachable = true
		}
		for _, c := range list {
			cps[c.Collection] = c
		}
	}
	var stream jetstream.Stream // the buffer stream, nil when unreachable
	if in.Buffer != nil && st.Buffer.Reachable {
		stream, _ = in.Buffer.JetStream().Stream(ctx, in.Buffer.Config().Stream)
	}
	st.Collections = make([]CollectionStatus, 0, len(in.Collections))
	for _, ns := range in.Collections {
		col, _ := envelope.ParseUnit(ns)
		cs := CollectionStatus{Collection: ns, Held: held[col]}
		if stream != nil {
			if c, err := sink.UnitConsumer(ctx, stream, ns); err == nil {
				info := c.CachedInfo() // read by UnitConsumer just now
				n := info.NumPending + uint64(info.NumAckPending)
				cs.Pending = &n
			}
		}
		if c, ok := cps[ns]; ok {
			cp := NewCheckpointStatus(c, now)
			cs.AppliedSeq, cs.ClusterTime, cs.SourceTime, cs.LagSeconds = &cp.AppliedSeq, cp.ClusterTime, cp.SourceTime, cp.LagSeconds
			cs.CommittedAt, cs.CommittedAgeSeconds = &cp.CommittedAt, &cp.CommittedAgeSeconds
		}
		st.Collections = append(st.Collections, cs)
	}
	return st
}

// readBuffer fills the capture position, the holds and the stream's state
// from an open buffer, and marks the held collections in held.
func readBuffer(ctx context.Context, in StatusSources, now time.Time, st *Status, held map[string]bool) {
	b := in.Buffer
	st.Buffer.URL = redact.String(b.URL())
	st.Buffer.Stream = b.Config().Stream
	s, err := b.JetStream().Stream(ctx, b.Config().Stream)
	if err != nil {
		st.Buffer.Error = noAnswer("NATS", in.Buffer.Cause(err))
	} else {
		state := s.CachedInfo().State
		st.Buffer.Reachable = true
		st.Buffer.Messages, st.Buffer.Bytes, st.Buffer.FirstSeq, st.Buffer.LastSeq = state.Msgs, state.Bytes, state.FirstSeq, state.LastSeq
	}
	pos, err := b.Positions().Load(ctx, in.Source)
	switch {
	case errors.Is(err, buffer.ErrNoPosition):
	case err != nil:
		st.Capture.Error = noAnswer("NATS", in.Buffer.Cause(err))
	default:
		ct := time.Unix(int64(pos.ClusterTime.T), 0).UTC()
		st.Capture.Position = &PositionStatus{
			ClusterTime: pos.ClusterTime, Time: ct, LagSeconds: seconds(now.Sub(ct)),
			Token: pos.Token, SavedAt: pos.SavedAt.UTC(), AgeSeconds: seconds(now.Sub(pos.SavedAt)),
		}
	}
	holds, err := b.Holds().List(ctx, in.Source)
	if err != nil {
		st.Capture.Error = noAnswer("NATS", in.Buffer.Cause(err))
	}
	for _, h := range holds {
		hs := HoldStatus{Collection: h.Collection, Reason: h.Reason, Recovery: h.Recovery, ClusterTime: h.ClusterTime,
			Since: h.Since.UTC(), Released: h.Released(), ReleaseRequested: h.ReleaseRequested}
		if h.Released() {
			at := h.ReleasedAt
			hs.ReleasedAt = &at
		} else {
			held[h.Collection] = true
		}
		st.Holds = append(st.Holds, hs)
	}
}

// noAnswer is err as the report shows it: a deadline names the server
// that did not answer.
func noAnswer(server string, err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("%s did not answer in time (%v)", server, redact.Error(err))
	}
	return redact.Error(err).Error()
}
