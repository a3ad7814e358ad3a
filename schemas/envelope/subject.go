package envelope

import (
	"fmt"
	"strings"
)

// Subject returns the JetStream subject that carries one source collection's
// envelopes: prefix, a dot, and the namespace encoded by EncodeNamespace.
// Capture publishes to it and the applier's consumer filters on it, so it
// is part of the wire contract (envelope.md). Common namespaces keep their
// readable form: Subject("replicator", "vuln.advisories") is
// "replicator.vuln.advisories".
func Subject(prefix, namespace string) string {
	return prefix + "." + EncodeNamespace(namespace)
}

// EncodeNamespace encodes a namespace as one or more NATS subject tokens.
// Bytes A-Z, a-z, 0-9, "_" and "-" are kept; a "." is kept when it
// separates two non-empty tokens (not the first or last byte, not right
// after a kept "."); every other byte, "~" included, becomes "~" and its
// two upper-case hexadecimal digits. The empty namespace is "~".
//
// Invariants: the result is non-empty, holds only A-Z a-z 0-9 _ - ~ and
// dots between non-empty tokens, so it is a valid subject part without
// whitespace or wildcards ("*", ">"); and the encoding is injective: it
// is decoded by reading "~XX" as the byte 0xXX and any other byte as
// itself, so two different namespaces never share a subject.
func EncodeNamespace(ns string) string {
	if ns == "" {
		return "~"
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(ns))
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b = append(b, c)
		case c == '.' && len(b) > 0 && b[len(b)-1] != '.' && i < len(ns)-1:
			b = append(b, c)
		default:
			b = append(b, '~', hex[c>>4], hex[c&0xf])
		}
	}
	return string(b)
}

// CheckPrefix reports whether prefix can start every subject: one or more
// non-empty tokens separated by dots, each of printable ASCII without
// "*" or ">" (NATS's wildcards) and without whitespace.
func CheckPrefix(prefix string) error {
	for _, tok := range strings.Split(prefix, ".") {
		if tok == "" {
			return fmt.Errorf("subject prefix %q has an empty token (a leading, trailing or doubled dot)", prefix)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				return fmt.Errorf("subject prefix %q: %q is not allowed in a subject token (printable ASCII without spaces, * or >)", prefix, c)
			}
		}
	}
	return nil
}
