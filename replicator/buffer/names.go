package buffer

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

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

// BatchMsgID is the deduplication id of a batch message (capture's groups):
// MsgID of its first and last event's tokens. A subject's batches hold
// disjoint runs of its events, so the pair names the run. A capture that
// re-publishes after a restart may cut its batches elsewhere; those get
// other ids, and the applier's version guard skips the events applied
// before (ARCHITECTURE.md, guarantee 2).
func BatchMsgID(first, last string) string {
	return MsgID(first + "\x00" + last)
}

// maxStreamName is the longest JetStream stream name NATS accepts.
const maxStreamName = 255

// CheckStream reports whether name can be a JetStream stream name: at most
// 255 bytes of printable ASCII without whitespace, ".", "*", ">", "/" or
// "\" (NATS puts stream names into subjects and file paths).
func CheckStream(name string) error {
	if name == "" || len(name) > maxStreamName {
		return fmt.Errorf("stream name %q must be 1 to %d bytes", name, maxStreamName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`.*>/\`, c) >= 0 {
			return fmt.Errorf("stream name %q: %q is not allowed (printable ASCII without spaces, '.', '*', '>', '/' or '\\')", name, c)
		}
	}
	return nil
}
