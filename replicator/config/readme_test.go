package config

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeDefaults: the README's configuration table states each default
// the binary runs with. A file that sets every key to the README's value
// must load exactly like a file that sets none, so a default changed in a
// component (its exported constant) without the README, or the other way
// round, fails here.
func TestReadmeDefaults(t *testing.T) {
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z_]+)\\.([a-z_]+)` \\| `([^`]*)`")
	sections := map[string][]string{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		section, key, val := m[1], m[2], m[3]
		if val == `""` {
			val = ""
		}
		if _, ok := sections[section]; !ok {
			order = append(order, section)
		}
		sections[section] = append(sections[section], key+": "+quote(val))
	}
	if len(order) < 6 {
		t.Fatalf("found defaults for sections %v only; is the README's table still there?", order)
	}
	var b strings.Builder
	for _, s := range order {
		b.WriteString(s + ":\n")
		for _, kv := range sections[s] {
			b.WriteString("  " + kv + "\n")
		}
	}
	const colls = "collections: [{source: a.b, table: a.b}]\n"
	stated, err := Parse([]byte(b.String()+colls), "README.md")
	if err != nil {
		t.Fatalf("the README's defaults do not load: %v\n%s", err, b.String())
	}
	defaults, err := Parse([]byte(colls), "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Config{stated, defaults} {
		c.File, c.root = "", nil
	}
	if !reflect.DeepEqual(stated, defaults) {
		t.Fatalf("the README's defaults differ from the binary's:\nREADME:   %+v\ndefaults: %+v", *stated, *defaults)
	}
}

func quote(v string) string {
	if v == "" || strings.ContainsAny(v, ":{}[]#") {
		return `"` + v + `"`
	}
	return v
}
