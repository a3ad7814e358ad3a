package specrunner

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mongopg/replicator/internal/mongotest"
)

// specDir finds MongoDB's change-stream specification tests (see
// findSpecDir) or fails the test: CI always provides them, so their absence
// is an error, never a pass.
func specDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := findSpecDir(wd)
	if err != nil {
		t.Fatalf("specrunner: %v", err)
	}
	return dir
}

// findSpecDir walks up from start to the project root (the directory with
// go.mod) and returns ../shared/mongodb-spec/change-streams beside it. The
// spec files are read in place, never copied into the project.
func findSpecDir(start string) (string, error) {
	root := start
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("no go.mod above %s; cannot locate ../shared/mongodb-spec", start)
		}
		root = parent
	}
	spec := filepath.Join(root, "..", "shared", "mongodb-spec", "change-streams")
	if st, err := os.Stat(spec); err != nil || !st.IsDir() {
		return "", fmt.Errorf("MongoDB's change-stream specification tests are missing: %s does not exist "+
			"(they belong in ../shared/mongodb-spec beside the project root %s; CI always provides them)", spec, root)
	}
	return spec, nil
}

func TestFindSpecDir(t *testing.T) {
	base := t.TempDir()
	project := filepath.Join(base, "main")
	pkg := filepath.Join(project, "internal", "x")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "go.mod"), []byte("module m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := findSpecDir(pkg); err == nil {
		t.Fatal("missing spec directory not reported")
	}
	want := filepath.Join(base, "shared", "mongodb-spec", "change-streams")
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := findSpecDir(pkg)
	if err != nil || filepath.Clean(got) != want {
		t.Fatalf("findSpecDir = %q, %v; want %q", got, err, want)
	}
}

// TestChangeStreamSpec runs every change-stream spec file against the
// backend mongotest picks (the emulator by default, a real MongoDB with
// REPLICATOR_TEST_MONGO_URI), one subtest per file and per test. A file
// fails when fewer than 90% of its applicable tests pass. Tests listed in
// KNOWN_GAPS.md are expected failures on the emulator only; a listed test
// that passes, or is skipped, fails so the list stays true.
func TestChangeStreamSpec(t *testing.T) {
	dir := specDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("specrunner: no *.json test files in %s", dir)
	}
	gaps, err := LoadKnownGaps("KNOWN_GAPS.md")
	if err != nil {
		t.Fatal(err)
	}
	files := make([]*File, 0, len(paths))
	for _, p := range paths {
		f, err := LoadFile(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		files = append(files, f)
	}
	checkGapsExist(t, gaps, files)
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) { runSpecFile(t, f, gaps) })
	}
}

// checkGapsExist fails for KNOWN_GAPS.md rows that name no test.
func checkGapsExist(t *testing.T, gaps KnownGaps, files []*File) {
	t.Helper()
	exists := map[string]map[string]bool{}
	for _, f := range files {
		exists[f.Name] = map[string]bool{}
		for _, test := range f.Tests {
			exists[f.Name][test.Description] = true
		}
	}
	for _, g := range gaps.All() {
		if !exists[g.File][g.Test] {
			t.Errorf("KNOWN_GAPS.md lists %s / %q, which is no test in the spec files; remove the row", g.File, g.Test)
		}
	}
}

func runSpecFile(t *testing.T, f *File, gaps KnownGaps) {
	// Registered before mongotest.New so that it runs after the backend's
	// own cleanup (which closes the emulator and ends pending disconnects).
	var r *Runner
	t.Cleanup(func() {
		if r != nil {
			r.Close()
		}
	})
	env := mongotest.New(t)
	ctx := t.Context()
	info, err := DiscoverServer(ctx, env.Client)
	if err != nil {
		t.Fatalf("discover server: %v", err)
	}
	r, err = NewRunner(Config{URI: env.URI, Internal: env.Client, Server: info})
	if err != nil {
		t.Fatal(err)
	}
	backend := "external server"
	if env.Emulator != nil {
		backend = "emulator"
	} else {
		// The list records emulator gaps only.
		gaps = nil
	}
	t.Logf("%s: server %s, topology %s (%s)", f.Name, info.Version, info.Topology, backend)

	fileSkip, fileReason, fileErr := r.CheckFile(ctx, f)
	var passed, failed, skipped int
	for i := range f.Tests {
		test := &f.Tests[i]
		t.Run(test.Description, func(t *testing.T) {
			gap, listed := gaps.Lookup(f.Name, test.Description)
			var res Result
			switch {
			case fileErr != nil:
				res = Result{Status: Failed, Reason: fileErr.Error()}
			case fileSkip:
				res = Result{Status: Skipped, Reason: fileReason}
			default:
				res = r.RunTest(ctx, f, i)
			}
			switch res.Status {
			case Skipped:
				skipped++
				if listed {
					t.Errorf("listed in KNOWN_GAPS.md (%s) but skipped on this server (%s); remove the row", gap.Feature, res.Reason)
					return
				}
				t.Skip(res.Reason)
			case Passed:
				passed++
				if listed {
					t.Errorf("listed in KNOWN_GAPS.md (%s) but passed; remove the row so the list stays true", gap.Feature)
				}
			case Failed:
				failed++
				if listed {
					t.Logf("expected failure, KNOWN_GAPS.md: %s\n%s", gap.Feature, res.Reason)
					return
				}
				t.Error(res.Reason)
			}
		})
	}
	fmt.Printf("%s: %d passed, %d failed, %d skipped\n", f.Name, passed, failed, skipped)
	if applicable := passed + failed; passed*10 < applicable*9 {
		t.Errorf("%s: %d of %d applicable tests passed, below the required 90%%", f.Name, passed, applicable)
	}
}
