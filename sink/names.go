package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Durable returns the durable consumer name of the applier for one
// namespace. Consumer names may not contain dots, spaces or wildcards, so the
// readable part is sanitised and a short hash of the exact namespace keeps
// distinct namespaces distinct.
func Durable(namespace string) string {
	var b strings.Builder
	b.WriteString("apply_")
	for _, r := range namespace {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(namespace))
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(sum[:4]))
	return b.String()
}
