package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/transform"
)

// statusFixture writes a config whose buffer is a stream of its own on a
// test NATS and whose target is a migrated test database, and returns the
// config file, the opened buffer and the capture source name.
func statusFixture(t *testing.T) (cfgPath string, buf *buffer.Buffer, source, target string) {
	t.Helper()
	t.Setenv(config.EnvSourceURI, "")
	t.Setenv(config.EnvTargetURL, "")
	t.Setenv(config.EnvBufferNATSURL, "")
	target = testenv.PostgresURL(t)
	if code, _, errs := run(t, "migrate", "--target", target); code != 0 {
		t.Fatal(errs)
	}
	srv := testenv.NATS(t)
	buf, bcfg := testStream(t, srv.URL, "STATUS")
	cfgPath = filepath.Join(t.TempDir(), "r.yaml")
	body := fmt.Sprintf("target:\n  url: %q\nbuffer:\n  nats_url: %q\n  stream: %s\n  subject_prefix: %s\n"+
		"collections: [{source: shop.items, table: shop.items}, {source: shop.orders, table: shop.orders}]\n",
		target, srv.URL, bcfg.Stream, bcfg.SubjectPrefix)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return cfgPath, buf, cfg.ForCapture().Source, target
}

// TestStatusJSON: `status --format json` prints one document in the
// documented shape (replicator.Status): the capture position, the buffer,
// held collections and each collection's apply position; exit 0 when
// healthy, 3 when a collection is held.
func TestStatusJSON(t *testing.T) {
	ctx := context.Background()
	cfgPath, buf, source, target := statusFixture(t)
	saved := time.Now().Add(-5 * time.Second)
	ct := transform.ClusterTime{T: uint32(time.Now().Add(-2 * time.Second).Unix()), I: 3}
	if err := buf.Positions().Save(ctx, source, buffer.Position{Token: "82ABC", ClusterTime: ct, SavedAt: saved}); err != nil {
		t.Fatal(err)
	}
	pool := testenv.Pool(t, target)
	if _, err := checkpoints.Set(ctx, pool, "shop.items", 0, checkpoints.SetOptions{AllowForward: true}); err != nil {
		t.Fatal(err)
	}

	code, out, errs := run(t, "status", "--config", cfgPath, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var st replicator.Status
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document:\n%s", out)
	}
	p := st.Capture.Position
	if st.Capture.Source != source || p == nil || p.Token != "82ABC" || p.ClusterTime != ct ||
		!p.SavedAt.Equal(saved.UTC().Truncate(time.Nanosecond)) || p.AgeSeconds < 4 || p.AgeSeconds > 60 {
		t.Errorf("capture: %+v %+v", st.Capture, p)
	}
	if p != nil && (p.SavedAt.Location() != time.UTC || p.Time.Location() != time.UTC) {
		t.Errorf("times not in UTC: %s", out)
	}
	if !st.Buffer.Reachable || st.Buffer.Stream != buf.Config().Stream || !strings.HasPrefix(st.Buffer.URL, "nats://") {
		t.Errorf("buffer: %+v", st.Buffer)
	}
	if !st.Target.Configured || !st.Target.Reachable {
		t.Errorf("target: %+v", st.Target)
	}
	if len(st.Collections) != 2 || st.Collections[0].Collection != "shop.items" || st.Collections[0].AppliedSeq == nil ||
		st.Collections[0].CommittedAt == nil || st.Collections[1].AppliedSeq != nil {
		t.Errorf("collections: %s", out)
	}
	if !st.Healthy || len(st.Problems) != 0 || len(st.Holds) != 0 || st.Version.Version == "" {
		t.Errorf("health: %s", out)
	}
	if !strings.Contains(out, `"saved_at": "`) || !strings.Contains(out, `"age_seconds": `) {
		t.Errorf("field names: %s", out)
	}

	// A held collection makes status unhealthy: exit 3, in both formats.
	since := time.Now().Add(-time.Minute)
	if err := buf.Holds().Put(ctx, source, buffer.Hold{Collection: "shop.orders", Reason: "collection dropped",
		Recovery: "replicator resync --collection shop.orders", ClusterTime: ct, Since: since}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, "status", "--config", cfgPath, "--format", "json")
	if code != 3 {
		t.Fatalf("held: exit %d, want 3\n%s%s", code, out, errs)
	}
	st = replicator.Status{}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Healthy || len(st.Holds) != 1 || st.Holds[0].Collection != "shop.orders" || st.Holds[0].Released ||
		st.Holds[0].Reason != "collection dropped" || !st.Holds[0].Since.Equal(since.UTC().Truncate(time.Nanosecond)) ||
		len(st.Problems) == 0 || !st.Collections[1].Held {
		t.Errorf("held: %s", out)
	}
	if !strings.Contains(errs, "shop.orders") {
		t.Errorf("stderr does not name the held collection: %s", errs)
	}
	code, out, errs = run(t, "status", "--config", cfgPath)
	if code != 3 || !strings.Contains(out, "capture held shop.orders") {
		t.Errorf("held, text: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := run(t, "status", "--config", cfgPath, "--format", "yaml"); code != 2 {
		t.Errorf("--format yaml: exit %d, want 2", code)
	}
}

// TestStatusMaxLag: --max-lag makes a collection whose apply lag is above
// it unhealthy.
func TestStatusMaxLag(t *testing.T) {
	ctx := context.Background()
	cfgPath, buf, source, target := statusFixture(t)
	if err := buf.Positions().Save(ctx, source, buffer.Position{Token: "82ABC", ClusterTime: transform.ClusterTime{T: uint32(time.Now().Unix())}, SavedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	pool := testenv.Pool(t, target)
	if _, err := pool.Exec(ctx, `INSERT INTO replicator.apply_checkpoints (collection, stream_seq, source_wall_time)
VALUES ('shop.items', 0, now() - interval '10 minutes')`); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "status", "--config", cfgPath, "--max-lag", "1h"); code != 0 {
		t.Fatalf("--max-lag 1h: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := run(t, "status", "--config", cfgPath); code != 0 {
		t.Fatalf("no --max-lag: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := run(t, "status", "--config", cfgPath, "--max-lag", "1m")
	if code != 3 || !strings.Contains(errs, "shop.items") || !strings.Contains(errs, "lag") {
		t.Fatalf("--max-lag 1m: exit %d, want 3\n%s%s", code, out, errs)
	}
}

// TestStatusTimeout: a NATS that accepts connections but never answers
// makes `status --timeout` fail within the timeout, naming NATS.
func TestStatusTimeout(t *testing.T) {
	t.Setenv(config.EnvSourceURI, "")
	t.Setenv(config.EnvTargetURL, "")
	t.Setenv(config.EnvBufferNATSURL, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent: never sends INFO
		}
	}()
	cfgPath := filepath.Join(t.TempDir(), "r.yaml")
	body := fmt.Sprintf("buffer:\n  nats_url: nats://%s\ncollections: [{source: shop.items, table: shop.items}]\n", ln.Addr())
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		code, out, errs := run(t, "status", "--config", cfgPath, "--timeout", "1s")
		done <- result{code, out, errs}
	}()
	select {
	case r := <-done:
		if el := time.Since(start); el > 1200*time.Millisecond {
			t.Errorf("returned after %s, want about 1s", el)
		}
		if r.code != 3 || !strings.Contains(r.err, "NATS") || !strings.Contains(r.err, "did not answer") {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("status --timeout 1s still running after 15s")
	}
}
