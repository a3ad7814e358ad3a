package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/internal/workload"
)

// TestRestartsOfNATSAndPostgres: NATS restarts and PostgreSQL crashes in
// mid-stream; the pipeline recovers by itself with nothing lost.
func TestRestartsOfNATSAndPostgres(t *testing.T) {
	pg := testenv.NewPostgresServer(t)
	h := newHarness(t, harnessOptions{pgURL: pg.Database()})
	h.start()
	time.Sleep(500 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g := h.generator(4, workload.Options{})
	var wg sync.WaitGroup
	var genErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		genErr = g.Run(ctx, 800, 9000)
	}()

	time.Sleep(2 * time.Second)
	t.Log("restarting NATS")
	h.nats.Restart()
	time.Sleep(2 * time.Second)
	t.Log("killing PostgreSQL")
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	t.Log("NATS down for 2s")
	h.nats.Shutdown()
	time.Sleep(2 * time.Second)
	h.nats.Start()
	wg.Wait()
	if genErr != nil {
		t.Fatal(genErr)
	}
	h.pool.Reset()
	r := h.waitEqual(90 * time.Second)
	t.Logf("equal after restarts: %s (%d events)", totalRows(r), g.Stats().Events)
	if n := deadLetters(t, h.pool); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}
