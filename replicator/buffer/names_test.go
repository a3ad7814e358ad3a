package buffer

import (
	"regexp"
	"testing"
)

// TestMsgID: the id of an event is short, header-safe, the same every time
// and different for different tokens, including tokens that differ only
// at the end (two events of one transaction).
func TestMsgID(t *testing.T) {
	token := "8267461A5C000000012B042C0100296E5A1004B5C6D7E8F90A4B1C8D2E3F405162738446645F69640064674615BC2E1F0B0A1C2D3E4F0004"
	id := MsgID(token)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(id) {
		t.Fatalf("MsgID = %q, want 22 URL-safe base64 characters", id)
	}
	if again := MsgID(token); again != id {
		t.Fatalf("MsgID changed: %q then %q", id, again)
	}
	seen := map[string]string{}
	for _, tok := range []string{token, token[:len(token)-1] + "1", token + ":vuln.advisories", token + ":vex.statements", "", "82"} {
		id := MsgID(tok)
		if prev, dup := seen[id]; dup {
			t.Fatalf("tokens %q and %q share the id %q", prev, tok, id)
		}
		seen[id] = tok
	}
}
