package envelope

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// trickyNamespaces are namespaces MongoDB accepts (or nearly) whose naive
// subjects would be invalid, wildcards, or equal to another's.
var trickyNamespaces = []string{
	"vuln.advisories", "a.b", "a.b.c", "a.b_c", "a.b-c", "a.b c", "a.b  c", "a.b\tc",
	"a.*", "a.>", "a.b.*", "a.b.>", "a.~", "a.~2A", "a.~7E", "a.~2E", "a.~20",
	"a..b", "a.~2Eb", "a.b.", "a.b..", "a..", "a...", ".a", "a.b~", "a.é", "a.\xff",
	"a.b%c", "a.b/c", "a.B", "A.b", "a.b\x00", "a.\n", "x.y", "x-y.z", "x.y-z",
}

// TestSubjectKeepsCommonNames: namespaces of letters, digits, "_", "-" and
// dots between non-empty parts keep today's subjects.
func TestSubjectKeepsCommonNames(t *testing.T) {
	for ns, want := range map[string]string{
		"vuln.advisories":   "replicator.vuln.advisories",
		"vex.statements":    "replicator.vex.statements",
		"app.orders.v2":     "replicator.app.orders.v2",
		"my-db.user_events": "replicator.my-db.user_events",
		"A1.B2":             "replicator.A1.B2",
	} {
		if got := Subject("replicator", ns); got != want {
			t.Errorf("Subject(%q) = %q, want %q", ns, got, want)
		}
	}
}

// TestSubjectEncodes spells out the encoding of the unusual cases.
func TestSubjectEncodes(t *testing.T) {
	for ns, want := range map[string]string{
		"a.b c":  "p.a.b~20c",
		"a.*":    "p.a.~2A",
		"a.>":    "p.a.~3E",
		"a.~":    "p.a.~7E",
		"a..b":   "p.a.~2Eb",
		"a.b.":   "p.a.b~2E",
		".a":     "p.~2Ea",
		"a.é":    "p.a.~C3~A9",
		"a.\xff": "p.a.~FF",
		// The examples of envelope.md.
		"app.my coll": "p.app.my~20coll",
		"app.a..b.":   "p.app.a.~2Eb~2E",
	} {
		if got := Subject("p", ns); got != want {
			t.Errorf("Subject(%q) = %q, want %q", ns, got, want)
		}
	}
}

// TestSubjectInjective: every tricky namespace gets a valid subject with
// no wildcard, and no two share one.
func TestSubjectInjective(t *testing.T) {
	seen := map[string]string{}
	for _, ns := range trickyNamespaces {
		s := Subject("replicator", ns)
		if err := validSubject(s); err != nil {
			t.Errorf("Subject(%q) = %q: %v", ns, s, err)
		}
		if prev, dup := seen[s]; dup {
			t.Errorf("Subject(%q) = Subject(%q) = %q", ns, prev, s)
		}
		seen[s] = ns
		if back, err := decodeSubject("replicator", s); err != nil || back != ns {
			t.Errorf("decode(Subject(%q)) = %q, %v", ns, back, err)
		}
	}
}

// FuzzSubject: for any namespaces a and b, their subjects are valid NATS
// subjects without wildcards, decode back to them, and differ when they do.
func FuzzSubject(f *testing.F) {
	for i, ns := range trickyNamespaces {
		f.Add(ns, trickyNamespaces[(i+1)%len(trickyNamespaces)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, sb := Subject("replicator.x", a), Subject("replicator.x", b)
		for _, c := range []struct{ ns, s string }{{a, sa}, {b, sb}} {
			if err := validSubject(c.s); err != nil {
				t.Fatalf("Subject(%q) = %q: %v", c.ns, c.s, err)
			}
			if back, err := decodeSubject("replicator.x", c.s); err != nil || back != c.ns {
				t.Fatalf("decode(Subject(%q)) = %q, %v", c.ns, back, err)
			}
		}
		if (a == b) != (sa == sb) {
			t.Fatalf("Subject(%q) = %q, Subject(%q) = %q", a, sa, b, sb)
		}
	})
}

// validSubject checks NATS's rules for a published subject: non-empty
// tokens separated by dots, no whitespace, no wildcard "*" or ">". It also
// requires printable ASCII, which the encoding guarantees.
func validSubject(s string) error {
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return fmt.Errorf("empty token")
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				return fmt.Errorf("byte %q in token %q", c, tok)
			}
		}
	}
	return nil
}

// decodeSubject inverts Subject: it proves the encoding injective.
func decodeSubject(prefix, s string) (string, error) {
	rest, ok := strings.CutPrefix(s, prefix+".")
	if !ok {
		return "", fmt.Errorf("%q lacks the prefix", s)
	}
	if rest == "~" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] != '~' {
			b.WriteByte(rest[i])
			continue
		}
		if i+2 >= len(rest) {
			return "", fmt.Errorf("short escape in %q", s)
		}
		n, err := strconv.ParseUint(rest[i+1:i+3], 16, 8)
		if err != nil || strings.ToUpper(rest[i+1:i+3]) != rest[i+1:i+3] {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), nil
}
