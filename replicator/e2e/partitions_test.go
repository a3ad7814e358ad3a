package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/capture"
	"github.com/mongopg/replicator/schemas/envelope"
)

// setPartitions sets the partitions of the collection ns in the harness's
// config and compiles the mappings again.
func (h *harness) setPartitions(ns string, n int) {
	h.t.Helper()
	for i := range h.cfg.Collections {
		if h.cfg.Collections[i].Source == ns {
			h.cfg.Collections[i].Partitions = n
		}
	}
	var err error
	if h.mappings, err = h.cfg.Mappings(); err != nil {
		h.t.Fatal(err)
	}
}

// partitionCheckpoints returns the apply checkpoints of ns and its
// partitions, by unit name.
func (h *harness) partitionCheckpoints(ns string) map[string]int64 {
	h.t.Helper()
	rows, err := h.pool.Query(context.Background(),
		`SELECT collection, stream_seq FROM replicator.apply_checkpoints WHERE collection = $1 OR starts_with(collection, $1 || '$')`, ns)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var c string
		var s int64
		if err := rows.Scan(&c, &s); err != nil {
			h.t.Fatal(err)
		}
		out[c] = s
	}
	return out
}

// documentSubjects reads every change message of ns in the buffer and
// returns, for each document key, the subjects its changes were on.
func documentSubjects(t *testing.T, stream jetstream.Stream, prefix, ns string) map[string]map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{envelope.Subject(prefix, ns), envelope.Subject(prefix, ns) + ".*"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for {
		msgs, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		var last uint64
		for m := range msgs.Messages() {
			n++
			md, _ := m.Metadata()
			last = md.Sequence.Stream
			envs, err := envelope.DecodeAll(m.Data())
			if err != nil {
				t.Fatalf("message %d on %s: %v", md.Sequence.Stream, m.Subject(), err)
			}
			for _, env := range envs {
				if env.Kind != envelope.KindChange {
					continue
				}
				if out[env.DocumentKey] == nil {
					out[env.DocumentKey] = map[string]bool{}
				}
				out[env.DocumentKey][m.Subject()] = true
			}
		}
		if n == 0 || last >= info.State.LastSeq {
			return out
		}
	}
}

// TestPartitionedCollection: a collection split into 4 partitions is
// published on 4 subjects, every document's changes on one of them, and
// applied through 4 consumers and checkpoints to the same state as
// MongoDB's; the cutover drain and verify's wait see the partitions. Then
// the partitions change: refused while the old layout has unapplied
// messages, accepted once it is applied, and the collection stays equal.
func TestPartitionedCollection(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	adv := h.ns.Advisories
	h.setPartitions(adv, 4)
	h.start()
	time.Sleep(time.Second)
	ctx := context.Background()
	g := h.generator(41, workload.Options{})
	if err := g.Run(ctx, 0, 3000); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(90 * time.Second)

	cps := h.partitionCheckpoints(adv)
	if len(cps) != 4 {
		t.Fatalf("checkpoints of %s: %v, want its 4 partitions", adv, cps)
	}
	for _, p := range envelope.Partitions(4) {
		if cps[p.Unit(adv)] == 0 {
			t.Errorf("partition %s applied nothing: %v", p.Unit(adv), cps)
		}
	}
	buf, stream := h.openBuffer()
	prefix := buf.Config().SubjectPrefix
	docs := documentSubjects(t, stream, prefix, adv)
	subjects := map[string]int{}
	for key, subs := range docs {
		if len(subs) != 1 {
			t.Errorf("document %s has changes on %d subjects: %v", key, len(subs), subs)
		}
		for s := range subs {
			subjects[s]++
		}
	}
	if len(subjects) != 4 {
		t.Errorf("documents of %s on subjects %v, want 4 partition subjects", adv, subjects)
	}
	for s := range subjects {
		if !strings.Contains(s, ".~p") {
			t.Errorf("a change of %s on the unpartitioned subject %s", adv, s)
		}
	}
	// Verify's wait for the applier covers each partition.
	ct, err := capture.ClusterTime(ctx, h.mongo.Client)
	if err != nil {
		t.Fatal(err)
	}
	wait := replicator.AppliedWaiter(buf, h.pool, h.cfg.ForCapture().Source, func(ns string) []string { return envelope.Units(ns, 4) })
	if err := wait(ctx, adv, ct, 30*time.Second); err != nil {
		t.Fatalf("applied wait: %v", err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	// Capture alone writes more: the 4-partition layout has unapplied
	// messages, so 2 partitions are refused.
	h.launch(replicator.Options{Capture: true})
	time.Sleep(time.Second)
	// Run counts events from the generator's start.
	if err := g.Run(ctx, 0, 3500); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // published
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.setPartitions(adv, 2)
	h.launch(replicator.Options{Capture: true, Apply: true})
	var stop *capture.StopError
	select {
	case err := <-h.done:
		h.done = nil
		if !errors.As(err, &stop) || !strings.Contains(stop.Reason, "partitions changed from 4 to 2") {
			t.Fatalf("start with changed partitions and unapplied messages: %v, want a capture stop naming the change", err)
		}
		t.Logf("refused: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("capture started with changed partitions while the old layout had unapplied messages")
	}

	// The documented way: back to 4, apply catches up, then 2.
	h.setPartitions(adv, 4)
	h.start()
	h.waitEqual(90 * time.Second)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.setPartitions(adv, 2)
	h.start()
	time.Sleep(time.Second)
	if err := g.Run(ctx, 0, 5000); err != nil {
		t.Fatal(err)
	}
	h.waitEqual(90 * time.Second)
	cps = h.partitionCheckpoints(adv)
	for _, p := range envelope.Partitions(2) {
		if cps[p.Unit(adv)] == 0 {
			t.Errorf("partition %s of the new layout applied nothing: %v", p.Unit(adv), cps)
		}
	}
	var dead int
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM replicator.dead_letters`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Errorf("%d dead letters", dead)
	}

	// resync --all's purge (capture.PurgeBuffered, given the configured
	// units) empties the subjects of every layout of the collection, the
	// old 4-partition one included, and of no other collection.
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	other, err := stream.Info(ctx, jetstream.WithSubjectFilter(envelope.Subject(prefix, h.ns.Runs)))
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.PurgeBuffered(ctx, buf, h.pool, []string{envelope.Partition{Index: 0, Count: 2}.Unit(adv), envelope.Partition{Index: 1, Count: 2}.Unit(adv)}); err != nil {
		t.Fatal(err)
	}
	left, err := stream.Info(ctx, jetstream.WithSubjectFilter(envelope.Subject(prefix, adv)+".>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left.State.Subjects) != 0 {
		t.Errorf("after the purge %s still has messages on %v", adv, left.State.Subjects)
	}
	kept, err := stream.Info(ctx, jetstream.WithSubjectFilter(envelope.Subject(prefix, h.ns.Runs)))
	if err != nil {
		t.Fatal(err)
	}
	runs := envelope.Subject(prefix, h.ns.Runs)
	if kept.State.Subjects[runs] == 0 || kept.State.Subjects[runs] != other.State.Subjects[runs] {
		t.Errorf("the purge of %s changed %s's messages: %d before, %d after", adv, h.ns.Runs, other.State.Subjects[runs], kept.State.Subjects[runs])
	}
}
