package buffer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Subject returns the JetStream subject that carries one source collection's
// envelopes: "<prefix>.<db>.<collection>". Collection names may contain dots;
// the subject then has more tokens, which is harmless because subjects are
// only ever matched exactly.
func Subject(prefix, namespace string) string {
	return prefix + "." + namespace
}

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

// MsgID returns the Nats-Msg-Id of the message that carries the event with
// resume token _data token: the first 128 bits of the token's SHA-256, in
// 22 URL-safe base64 characters. The same event always gets the same id,
// so a re-publish after a restart is deduplicated. The stream stores the
// id with every message and keeps the ids of its duplicate window in the
// server's memory, and a resume token is 80 to 200 hexadecimal digits
// (more for long document keys), so the digest saves most of that; a
// collision of two events inside the window is as likely as one of two
// random 128-bit numbers.
func MsgID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
