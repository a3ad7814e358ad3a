package transform

import (
	"strings"
	"testing"
)

// TestCheckNamespace follows MongoDB's rules; names MongoDB accepts but
// NATS or SQL would misread (spaces, wildcards) are accepted here and
// encoded where they are used.
func TestCheckNamespace(t *testing.T) {
	for _, ok := range []string{
		"vuln.advisories", "a.b.c", "a.my coll", "a.*", "a.>", "a.~", "a.b..", "a.é",
		strings.Repeat("d", 63) + ".c", "a." + strings.Repeat("c", 253),
	} {
		if err := CheckNamespace(ok); err != nil {
			t.Errorf("CheckNamespace(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "a", ".b", "a.", "a.\nb", "a.b\r", "a.b\t", "a.b\x00", "a.\xff", "a.\u0085",
		"a b.c", "a*.c", "a>.c", "a/b.c", `a\b.c`, `a"b.c`, "a$.c", "a:b.c", "a|b.c", "a?b.c", "a<b.c",
		strings.Repeat("d", 64) + ".c", "a." + strings.Repeat("c", 254),
		"a.$cmd", "a.b$c", "a.system.users", "a..b",
	} {
		if err := CheckNamespace(bad); err == nil {
			t.Errorf("CheckNamespace(%q) accepted it", bad)
		}
	}
}
