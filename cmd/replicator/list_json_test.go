package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/internal/testenv"
)

// decodeStrict decodes out, which must be exactly one JSON document with
// only the fields of v.
func decodeStrict(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document:\n%s", out)
	}
}

// TestCheckpointsListJSON: `checkpoints list --format json` prints one
// document {"checkpoints": [...]} with the documented fields.
func TestCheckpointsListJSON(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	if code, _, errs := run(t, "migrate", "--target", url); code != 0 {
		t.Fatal(errs)
	}
	pool := testenv.Pool(t, url)
	if _, err := checkpoints.Set(ctx, pool, "shop.items", 0, checkpoints.SetOptions{AllowForward: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO replicator.apply_checkpoints (collection, stream_seq, cluster_ts, cluster_inc, source_wall_time)
VALUES ('shop.orders', 42, 1700000000, 7, now() - interval '30 seconds')`); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "checkpoints", "list", "--target", url, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var doc struct {
		Checkpoints []struct {
			Collection  string `json:"collection"`
			AppliedSeq  uint64 `json:"applied_seq"`
			ClusterTime *struct {
				T uint32 `json:"t"`
				I uint32 `json:"i"`
			} `json:"cluster_time"`
			SourceTime          *time.Time `json:"source_time"`
			LagSeconds          *float64   `json:"lag_seconds"`
			CommittedAt         time.Time  `json:"committed_at"`
			CommittedAgeSeconds float64    `json:"committed_age_seconds"`
			Epoch               int64      `json:"epoch"`
		} `json:"checkpoints"`
	}
	decodeStrict(t, out, &doc)
	if len(doc.Checkpoints) != 2 {
		t.Fatalf("%s", out)
	}
	items, orders := doc.Checkpoints[0], doc.Checkpoints[1]
	if items.Collection != "shop.items" || items.ClusterTime != nil || items.SourceTime != nil || items.LagSeconds != nil {
		t.Errorf("items: %s", out)
	}
	if orders.Collection != "shop.orders" || orders.AppliedSeq != 42 || orders.ClusterTime == nil || orders.ClusterTime.I != 7 ||
		orders.LagSeconds == nil || *orders.LagSeconds < 29 || orders.SourceTime.Location() != time.UTC || orders.CommittedAt.IsZero() {
		t.Errorf("orders: %s", out)
	}
}

// TestDLQListJSON: `dlq list --format json` prints one document
// {"dead_letters": [...]} with the documented fields.
func TestDLQListJSON(t *testing.T) {
	url := testenv.PostgresURL(t)
	if code, _, errs := run(t, "migrate", "--target", url); code != 0 {
		t.Fatal(errs)
	}
	pool := testenv.Pool(t, url)
	if _, err := pool.Exec(context.Background(), `INSERT INTO replicator.dead_letters
(collection, stage, reason, error, field_path, sqlstate, document_key, raw_event, stream_seq)
VALUES ('shop.items', 'apply', 'constraint', 'new row violates check constraint "items_qty_check"', 'app.items.qty', '23514', '{"_id": "d"}', '{"kind": "change"}', 4)`); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "dlq", "list", "--target", url, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var doc struct {
		DeadLetters []struct {
			ID          int64      `json:"id"`
			Collection  string     `json:"collection"`
			Stage       string     `json:"stage"`
			Reason      string     `json:"reason"`
			Error       string     `json:"error"`
			FieldPath   string     `json:"field_path"`
			SQLState    string     `json:"sqlstate"`
			DocumentKey string     `json:"document_key"`
			Seq         uint64     `json:"seq"`
			CreatedAt   time.Time  `json:"created_at"`
			ResolvedAt  *time.Time `json:"resolved_at"`
			Note        string     `json:"note"`
		} `json:"dead_letters"`
	}
	decodeStrict(t, out, &doc)
	if len(doc.DeadLetters) != 1 {
		t.Fatalf("%s", out)
	}
	d := doc.DeadLetters[0]
	if d.ID != 1 || d.Collection != "shop.items" || d.Stage != "apply" || d.SQLState != "23514" || d.Seq != 4 ||
		d.FieldPath != "app.items.qty" || !strings.Contains(d.Error, "items_qty_check") || d.ResolvedAt != nil ||
		d.CreatedAt.Location() != time.UTC {
		t.Errorf("%s", out)
	}
	if code, out, _ := run(t, "dlq", "list", "--target", url, "--format", "json", "--collection", "none.here"); code != 0 || !strings.Contains(out, `"dead_letters": []`) {
		t.Errorf("empty list: exit %d %s", code, out)
	}
}

// TestHelpOnStdout: --help, -h and help print on standard output and exit
// 0 for every command and subcommand; a usage error prints on standard
// error and exits 2.
func TestHelpOnStdout(t *testing.T) {
	cases := [][]string{{"--help"}, {"-h"}, {"help"}}
	for _, c := range commands() {
		cases = append(cases, []string{c.name, "--help"}, []string{c.name, "-h"})
	}
	for _, sub := range [][]string{{"checkpoints", "list"}, {"checkpoints", "set"}, {"dlq", "list"}, {"dlq", "show"}, {"dlq", "resolve"}, {"buffer", "show"}} {
		cases = append(cases, append(sub, "--help"))
	}
	cases = append(cases, []string{"checkpoints", "help"}, []string{"dlq", "help"}, []string{"buffer", "help"})
	for _, args := range cases {
		code, out, errs := run(t, args...)
		if code != 0 || out == "" || errs != "" {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, len(out), errs)
		}
	}
	for _, args := range [][]string{{}, {"nope"}, {"status", "--nope"}, {"dlq", "list", "--nope"}, {"checkpoints"}, {"status", "extra"}} {
		code, out, errs := run(t, args...)
		if code != 2 || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2, nothing, a message", args, code, out, errs)
		}
	}
	if _, out, _ := run(t, "--help"); !strings.Contains(out, "Exit codes") {
		t.Errorf("replicator --help does not document the exit codes:\n%s", out)
	}
}
