package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongopg/replicator/internal/workload"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/sink"
)

// applyProc is one apply process of BenchmarkApplyProcesses, run in this
// process with its own metrics (replicator.Run with Apply only).
type applyProc struct {
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

func startApplyProc(h *harness) *applyProc {
	ctx, cancel := context.WithCancel(context.Background())
	p := &applyProc{cancel: cancel, done: make(chan error, 1), reg: prometheus.NewRegistry()}
	opts := replicator.Options{Apply: true, Registerer: p.reg, Gatherer: p.reg, DisableHTTP: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	go func() { p.done <- replicator.Run(ctx, h.cfg, opts) }()
	return p
}

func (p *applyProc) stop(b *testing.B) {
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		b.Fatal("apply process did not stop within 60s")
	}
}

// BenchmarkApplyProcesses drains one buffered backlog with 1, 2 and 4
// apply processes sharing the collections' partitions through their
// claims (ARCHITECTURE.md, Scale-out). The three collections have 4
// partitions each (12 units). Capture publishes SCALE_EVENTS (default
// 200,000) inserts once; for each process count the target is emptied,
// the processes start together, and the rate is measured from their start
// until every insert is applied, the claims evening out included (each
// process holding ⌈12/k⌉ units at most; the time that took is reported
// too). The processes run in this benchmark's process,
// on this machine's cores, beside PostgreSQL, NATS and the emulator.
// SCALE_PROCESSES=1,2,4 chooses the process counts.
func BenchmarkApplyProcesses(b *testing.B) {
	events := int64(200_000)
	if n := os.Getenv("SCALE_EVENTS"); n != "" {
		events, _ = strconv.ParseInt(n, 10, 64)
	}
	h := newHarness(b, harnessOptions{})
	for _, ns := range []string{h.ns.Advisories, h.ns.Statements, h.ns.Runs} {
		h.setPartitions(ns, 4)
	}
	const units = 12
	replicator.TuneGC(h.cfg)
	ctx := context.Background()
	h.start() // the target tables and capture's start position
	time.Sleep(time.Second)
	if err := h.stop(); err != nil {
		b.Fatal(err)
	}
	h.launch(replicator.Options{Capture: true})
	time.Sleep(time.Second)
	g := workload.New(h.mongo.Client, h.ns, workload.Options{Seed: 9, InsertOnly: true, InsertBatch: 1000})
	if err := g.Run(ctx, 0, events); err != nil {
		b.Fatal(err)
	}
	waitCounter(b, h, "replicator_capture_events_total", "insert", events, 10*time.Minute)
	time.Sleep(2 * time.Second) // the last publishes are acknowledged
	if err := h.stop(); err != nil {
		b.Fatal(err)
	}
	counts := []int{1, 2, 4}
	if v := os.Getenv("SCALE_PROCESSES"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			k, err := strconv.Atoi(f)
			if err != nil || k < 1 {
				b.Fatalf("SCALE_PROCESSES=%q: want process counts like 1,2,4", v)
			}
			counts = append(counts, k)
		}
	}
	// Every unit's last message: the drain is done when every checkpoint
	// reached it. The insert counters only show progress: each process
	// counts the batches it saw commit, and a unit handed back while its
	// COMMIT was under way may have committed without seeing the answer.
	lastSeq := map[string]uint64{}
	{
		buf, stream := h.openBuffer()
		for _, m := range h.mappings {
			for _, unit := range config.UnitsOf(m) {
				msg, err := stream.GetLastMsgForSubject(ctx, buf.UnitSubject(unit))
				if err != nil {
					b.Fatalf("%s: last message: %v", unit, err)
				}
				lastSeq[unit] = msg.Sequence
			}
		}
		buf.Close()
	}
	drained := func() (bool, uint64) {
		rows, err := h.pool.Query(ctx, `SELECT collection, stream_seq FROM replicator.apply_checkpoints`)
		if err != nil {
			b.Fatal(err)
		}
		done, sum := 0, uint64(0)
		for rows.Next() {
			var unit string
			var seq int64
			if err := rows.Scan(&unit, &seq); err != nil {
				b.Fatal(err)
			}
			if last, ok := lastSeq[unit]; ok && uint64(seq) >= last {
				done++
			}
			sum += uint64(seq)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		return done == len(lastSeq), sum
	}
	b.ResetTimer()
	for _, k := range counts {
		b.Run(fmt.Sprintf("processes=%d", k), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				for _, q := range []string{
					"TRUNCATE vuln.advisories, vex.statements, scheduler.runs CASCADE",
					"DELETE FROM replicator.apply_checkpoints",
					"VACUUM ANALYZE", "CHECKPOINT",
				} {
					if _, err := h.pool.Exec(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
				procs := make([]*applyProc, k)
				for i := range procs {
					procs[i] = startApplyProc(h)
				}
				stopped := false
				defer func() { // a failed round must not leave appliers behind for the next
					if !stopped {
						for _, p := range procs {
							p.cancel()
							<-p.done
						}
					}
				}()
				b.StartTimer()
				began := time.Now()
				var even time.Duration
				share := (units + k - 1) / k
				deadline := began.Add(10 * time.Minute)
				progress, progressed := uint64(0), began
				for i := 0; ; i++ {
					held, most, applied := 0, 0, 0.0
					for _, p := range procs {
						n := 0
						for _, v := range gauges(b, p.reg, "replicator_apply_claimed") {
							n += int(v)
						}
						held += n
						most = max(most, n)
						applied += counterByLabel(b, p.reg, "replicator_apply_events_total", "operation")["insert"]
					}
					if even == 0 && held == units && most <= share {
						even = time.Since(began)
					}
					done, sum := false, progress
					if i%10 == 0 || applied >= float64(events) {
						done, sum = drained()
					}
					if done {
						took := time.Since(began)
						b.StopTimer()
						rate := float64(events) / took.Seconds()
						b.ReportMetric(rate, "docs/s")
						b.ReportMetric(even.Seconds(), "even-after-s")
						b.Logf("%d apply process(es): %d inserts in %s, %.0f docs/s from their start; claims even after %s",
							k, events, took.Round(time.Millisecond), rate, even.Round(time.Millisecond))
						break
					}
					if sum > progress {
						progress, progressed = sum, time.Now()
					}
					if time.Now().After(deadline) || time.Since(progressed) > time.Minute {
						for i, p := range procs {
							b.Logf("process %d: claimed %v, inserts %v", i, gauges(b, p.reg, "replicator_apply_claimed"),
								counterByLabel(b, p.reg, "replicator_apply_events_total", "collection"))
						}
						logUnits(b, h)
						b.Fatalf("not drained after %s (%.0f of %d inserts counted), no checkpoint moved in the last %s",
							time.Since(began).Round(time.Second), applied, events, time.Since(progressed).Round(time.Second))
					}
					time.Sleep(5 * time.Millisecond)
				}
				stopped = true
				for _, p := range procs {
					p.stop(b)
				}
			}
		})
	}
}

// logUnits logs each apply unit's checkpoint, its subject's last message
// and its consumer's state: where a stalled drain stands.
func logUnits(b *testing.B, h *harness) {
	ctx := context.Background()
	buf, stream := h.openBuffer()
	defer buf.Close()
	for _, m := range h.mappings {
		for _, unit := range config.UnitsOf(m) {
			var cp int64
			_ = h.pool.QueryRow(ctx, `SELECT stream_seq FROM replicator.apply_checkpoints WHERE collection = $1`, unit).Scan(&cp)
			last := uint64(0)
			if msg, err := stream.GetLastMsgForSubject(ctx, buf.UnitSubject(unit)); err == nil {
				last = msg.Sequence
			}
			state := ""
			if cons, err := sink.UnitConsumer(ctx, stream, unit); err != nil {
				state = err.Error()
			} else if info, err := cons.Info(ctx); err != nil {
				state = err.Error()
			} else {
				state = fmt.Sprintf("delivered %d, ack floor %d, ack pending %d, pending %d, waiting %d",
					info.Delivered.Stream, info.AckFloor.Stream, info.NumAckPending, info.NumPending, info.NumWaiting)
			}
			b.Logf("%s: checkpoint %d, last message %d; consumer %s", unit, cp, last, state)
		}
	}
}
