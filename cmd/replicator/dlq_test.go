package main

import (
	"context"
	"strings"
	"testing"

	"github.com/mongopg/replicator/internal/testenv"
)

func TestDLQCommand(t *testing.T) {
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
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"list", []string{"list"}, 0, "23514"},
		{"show", []string{"show", "1"}, 0, `"kind": "change"`},
		{"show unknown", []string{"show", "99"}, 1, ""},
		{"resolve", []string{"resolve", "1", "--note", "fixed the data"}, 0, "resolved"},
		{"resolved are hidden", []string{"list"}, 0, "id  collection"},
		{"all shows resolved", []string{"list", "--all"}, 0, "shop.items"},
		{"bad id", []string{"show", "x"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"dlq"}, tc.args...)
			args = append(args, "--target", url)
			code, out, errs := run(t, args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("code %d (want %d), stdout %q, stderr %q", code, tc.code, out, errs)
			}
			if tc.name == "resolved are hidden" && strings.Contains(out, "shop.items") {
				t.Errorf("a resolved dead letter is listed: %s", out)
			}
		})
	}
}
