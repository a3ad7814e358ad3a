package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/mongopg/replicator/replicator"
)

// TestVersion: `replicator version` and `replicator --version` print the
// build on stdout, and the metrics registry carries replicator_build_info.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errOut bytes.Buffer
		if code := runMain(context.Background(), args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		if got := out.String(); !strings.HasPrefix(got, "replicator ") || !strings.Contains(got, runtime.Version()) {
			t.Fatalf("%v printed %q", args, got)
		}
	}
	mfs, err := replicator.NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "replicator_build_info" && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge().GetValue() == 1 {
			return
		}
	}
	t.Fatal("no replicator_build_info in the registry")
}
