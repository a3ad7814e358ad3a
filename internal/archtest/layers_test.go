package archtest

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The layers of docs/ARCHITECTURE.md, top to bottom. Paths are relative to
// the module root. A non-test file may import a module package only in a
// strictly lower layer (a higher number); packages in one layer never
// import each other. Keep this table and the one in docs/ARCHITECTURE.md
// the same.
var productLayers = []layer{
	1:  {"binaries and end-to-end tests", []string{"cmd/replicator", "cmd/demo", "cmd/mongoemu", "replicator/e2e"}},
	2:  {"process wiring", []string{"replicator"}},
	3:  {"configuration file and verification", []string{"replicator/config", "replicator/verify"}},
	4:  {"snapshot and resync", []string{"replicator/snapshot"}},
	5:  {"capture and oplog window", []string{"replicator/capture", "replicator/capture/oplogwindow"}},
	6:  {"buffer", []string{"replicator/buffer"}},
	7:  {"sink and catalog", []string{"sink", "sink/catalog"}},
	8:  {"apply checkpoints", []string{"checkpoints"}},
	9:  {"metadata schema and envelope", []string{"schemas", "schemas/envelope"}},
	10: {"transform", []string{"transform"}},
	11: {"redaction", []string{"replicator/redact"}},
}

// Test support under internal/, top to bottom. It may import any product
// package below the binaries; among itself it follows the same rule.
var supportLayers = []layer{
	1: {"test harnesses", []string{"internal/archtest", "internal/mongotest", "internal/specrunner", "internal/testenv", "internal/workload"}},
	2: {"test servers", []string{"internal/mongoemu", "internal/pgserver"}},
}

// The product packages that may import internal/: the demo and the
// emulator's binary, which exist to run test support.
var mayImportInternal = map[string]bool{
	"cmd/demo":     true,
	"cmd/mongoemu": true,
}

type layer struct {
	name     string
	packages []string
}

// place is where the table puts one package.
type place struct {
	support bool // under internal/ (test support), else product
	layer   int
	name    string
}

func (p place) String() string {
	if p.support {
		return fmt.Sprintf("test-support layer T%d (%s)", p.layer, p.name)
	}
	return fmt.Sprintf("layer %d (%s)", p.layer, p.name)
}

// places indexes the table by package; it reports a package listed twice.
func places() (map[string]place, error) {
	out := map[string]place{}
	add := func(support bool, ls []layer) error {
		for i, l := range ls {
			for _, p := range l.packages {
				if _, dup := out[p]; dup {
					return fmt.Errorf("layer table lists %s twice", p)
				}
				if strings.HasPrefix(p, "internal/") != support {
					return fmt.Errorf("layer table: %s belongs in the %s table", p, map[bool]string{true: "product", false: "test-support"}[support])
				}
				out[p] = place{support: support, layer: i, name: l.name}
			}
		}
		return nil
	}
	if err := add(false, productLayers); err != nil {
		return nil, err
	}
	if err := add(true, supportLayers); err != nil {
		return nil, err
	}
	return out, nil
}

// edge is one import of a module package by a non-test file.
type edge struct {
	file string // relative to the module root
	from string // importing package, relative to the module root
	to   string // imported package, relative to the module root
}

// check returns one message per rule broken by pkgs (every package of the
// module) and edges.
func check(table map[string]place, pkgs []string, edges []edge) []string {
	var out []string
	exists := map[string]bool{}
	for _, p := range pkgs {
		exists[p] = true
		if _, ok := table[p]; !ok {
			out = append(out, fmt.Sprintf("%s: package has no layer: place it in the layer table of internal/archtest/layers_test.go and of docs/ARCHITECTURE.md", p))
		}
	}
	for p := range table {
		if !exists[p] {
			out = append(out, fmt.Sprintf("%s: the layer table lists it, but the module has no such package: remove it from the table", p))
		}
	}
	for _, e := range edges {
		if msg := checkEdge(table, e); msg != "" {
			out = append(out, fmt.Sprintf("%s: imports %s: %s", e.file, e.to, msg))
		}
	}
	sort.Strings(out)
	return out
}

// checkEdge names the rule e breaks, or returns "".
func checkEdge(table map[string]place, e edge) string {
	from, okFrom := table[e.from]
	to, okTo := table[e.to]
	switch {
	case !okFrom:
		return "" // reported as a package without a layer
	case !okTo:
		return fmt.Sprintf("%s has no layer, so no package may import it yet", e.to)
	case !from.support && to.support:
		if mayImportInternal[e.from] {
			return ""
		}
		return fmt.Sprintf("product packages never import internal/ (only cmd/demo and cmd/mongoemu may); %s is in %s", e.from, from)
	case from.support && !to.support:
		if to.layer >= 2 {
			return ""
		}
		return fmt.Sprintf("test support may import product packages below the binaries only; %s is in %s", e.to, to)
	case to.layer <= from.layer:
		rule := "imports point to a strictly lower layer"
		if to.layer == from.layer {
			rule = "packages in one layer never import each other"
		}
		return fmt.Sprintf("%s: %s is in %s, %s is in %s", rule, e.from, from, e.to, to)
	}
	return ""
}

// load lists the packages of the module rooted at root (module path mod)
// and the imports of module packages by their non-test files. A package is
// a directory holding a .go file; testdata, vendor, directories starting
// with "." or "_" and nested modules are not part of the module. Build
// constraints are ignored: every file counts.
func load(root, mod string) (pkgs []string, edges []edge, err error) {
	fset := token.NewFileSet()
	seen := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == root {
				return nil
			}
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		if !seen[pkg] {
			seen[pkg] = true
			pkgs = append(pkgs, pkg)
		}
		if strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			if to, ok := strings.CutPrefix(p, mod+"/"); ok {
				edges = append(edges, edge{file: rel, from: pkg, to: to})
			} else if p == mod {
				edges = append(edges, edge{file: rel, from: pkg, to: "."})
			}
		}
		return nil
	})
	sort.Strings(pkgs)
	return pkgs, edges, err
}

// moduleRoot finds the go.mod above the working directory and returns its
// directory and module path.
func moduleRoot(t *testing.T) (root, mod string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			s := bufio.NewScanner(f)
			for s.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(m), `"`)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

func mustPlaces(t *testing.T) map[string]place {
	t.Helper()
	table, err := places()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestLayers: every package of the module has a layer, and every import
// of a module package by a non-test file follows the rules of
// docs/ARCHITECTURE.md, "Packages and import rules".
func TestLayers(t *testing.T) {
	root, mod := moduleRoot(t)
	pkgs, edges, err := load(root, mod)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 || len(edges) < 10 {
		t.Fatalf("found %d packages and %d imports under %s: the walk is broken", len(pkgs), len(edges), root)
	}
	for _, msg := range check(mustPlaces(t), pkgs, edges) {
		t.Error(msg)
	}
}

// TestArchitectureDocListsEveryPackage: docs/ARCHITECTURE.md names every
// package of the layer table, so the two tables cannot drift apart
// unnoticed.
func TestArchitectureDocListsEveryPackage(t *testing.T) {
	root, _ := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	for p := range mustPlaces(t) {
		if !strings.Contains(string(doc), "`"+p+"`") {
			t.Errorf("docs/ARCHITECTURE.md does not name `%s`: add it to the package table", p)
		}
	}
}

// TestCheckerCatchesForbiddenEdges runs the checker on synthetic edges
// against the real table: each forbidden edge gives one message naming the
// file, the import and the rule; allowed edges give none.
func TestCheckerCatchesForbiddenEdges(t *testing.T) {
	table := mustPlaces(t)
	var pkgs []string
	for p := range table {
		pkgs = append(pkgs, p)
	}
	if got := check(table, pkgs, nil); len(got) != 0 {
		t.Fatalf("the table alone gives messages: %q", got)
	}

	allowed := []edge{
		{"cmd/replicator/main.go", "cmd/replicator", "replicator"},
		{"replicator/snapshot/load.go", "replicator/snapshot", "sink"},
		{"replicator/capture/reset.go", "replicator/capture", "checkpoints"},
		{"sink/plan.go", "sink", "schemas/envelope"},
		{"cmd/demo/main.go", "cmd/demo", "internal/workload"},
		{"cmd/mongoemu/main.go", "cmd/mongoemu", "internal/mongoemu"},
		{"internal/workload/compare.go", "internal/workload", "transform"},
		{"internal/testenv/postgres.go", "internal/testenv", "internal/pgserver"},
	}
	if got := check(table, pkgs, allowed); len(got) != 0 {
		t.Errorf("allowed edges give messages: %q", got)
	}

	forbidden := []struct {
		e    edge
		rule string
	}{
		{edge{"sink/apply.go", "sink", "replicator/capture"}, "strictly lower layer"},
		{edge{"transform/mapping.go", "transform", "schemas"}, "strictly lower layer"},
		{edge{"replicator/buffer/stream.go", "replicator/buffer", "replicator/config"}, "strictly lower layer"},
		{edge{"sink/catalog/compare.go", "sink/catalog", "sink"}, "packages in one layer never import each other"},
		{edge{"replicator/capture/oplogwindow/guard.go", "replicator/capture/oplogwindow", "replicator/capture"}, "packages in one layer never import each other"},
		{edge{"schemas/envelope/envelope.go", "schemas/envelope", "schemas"}, "packages in one layer never import each other"},
		{edge{"transform/convert.go", "transform", "internal/testenv"}, "product packages never import internal/"},
		{edge{"cmd/replicator/main.go", "cmd/replicator", "internal/pgserver"}, "product packages never import internal/"},
		{edge{"internal/pgserver/pgserver.go", "internal/pgserver", "internal/testenv"}, "strictly lower layer"},
		{edge{"internal/workload/ops.go", "internal/workload", "replicator/e2e"}, "below the binaries"},
		{edge{"sink/apply.go", "sink", "sink/newpkg"}, "has no layer"},
	}
	for _, f := range forbidden {
		got := check(table, pkgs, []edge{f.e})
		if len(got) != 1 {
			t.Errorf("%s → %s: want one message, got %q", f.e.from, f.e.to, got)
			continue
		}
		for _, want := range []string{f.e.file, "imports " + f.e.to, f.rule} {
			if !strings.Contains(got[0], want) {
				t.Errorf("%s → %s: message %q does not contain %q", f.e.from, f.e.to, got[0], want)
			}
		}
	}

	// A package the table does not place fails, and so does a table
	// entry that is no longer a package.
	got := check(table, append(append([]string(nil), pkgs...), "sink/newpkg"), nil)
	if len(got) != 1 || !strings.Contains(got[0], "sink/newpkg: package has no layer") {
		t.Errorf("unplaced package: got %q", got)
	}
	got = check(table, pkgs[1:], nil)
	if len(got) != 1 || !strings.Contains(got[0], "no such package") {
		t.Errorf("stale table entry: got %q", got)
	}
}

// TestLoad runs the loader on a small module written to a temporary
// directory: test files and testdata do not count as imports, every
// directory with a .go file is a package, nested modules are not.
func TestLoad(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.mod":              "module example.com/m\n",
		"a/a.go":              "package a\n\nimport (\n\t\"fmt\"\n\t\"example.com/m/b\"\n)\n",
		"a/a_test.go":         "package a\n\nimport _ \"example.com/m/c\"\n",
		"b/b.go":              "package b\n",
		"c/c_test.go":         "package c\n\nimport _ \"example.com/m/a\"\n",
		"b/testdata/x.go":     "package x\n\nimport _ \"example.com/m/a\"\n",
		"nested/go.mod":       "module example.com/nested\n",
		"nested/n.go":         "package n\n\nimport _ \"example.com/m/a\"\n",
		".hidden/h.go":        "package h\n\nimport _ \"example.com/m/a\"\n",
		"a/internal/i/i.go":   "package i\n",
		"a/internal/i/README": "not Go\n",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkgs, edges, err := load(root, "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a/internal/i", "b", "c"}; fmt.Sprint(pkgs) != fmt.Sprint(want) {
		t.Errorf("packages %q, want %q", pkgs, want)
	}
	if want := []edge{{"a/a.go", "a", "b"}}; fmt.Sprint(edges) != fmt.Sprint(want) {
		t.Errorf("edges %v, want %v", edges, want)
	}

	// The same module with a forbidden edge: the checker names the file.
	table := map[string]place{
		"a":            {layer: 1, name: "top"},
		"a/internal/i": {layer: 1, name: "top"},
		"b":            {layer: 2, name: "bottom"},
		"c":            {layer: 2, name: "bottom"},
	}
	if got := check(table, pkgs, edges); len(got) != 0 {
		t.Errorf("allowed module gives messages: %q", got)
	}
	if err := os.WriteFile(filepath.Join(root, "b", "up.go"), []byte("package b\n\nimport _ \"example.com/m/a\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgs, edges, err = load(root, "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	got := check(table, pkgs, edges)
	if len(got) != 1 || !strings.HasPrefix(got[0], "b/up.go: imports a: imports point to a strictly lower layer") {
		t.Errorf("upward edge: got %q", got)
	}
}
