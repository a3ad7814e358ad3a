package capture

import (
	"encoding/json"
	"testing"

	"github.com/mongopg/replicator/schemas/envelope"
)

// TestOversizedDeadLetterNamesItsEvent: the dead letter of an event too
// large for the buffer keeps its resume token beside its document key, so
// two such events of one document, in one transaction (same cluster time,
// same size, same error), are two dead letters for the applier, which
// records an event's dead letter once (sink, insertEventDeadLetter).
func TestOversizedDeadLetterNamesItsEvent(t *testing.T) {
	raw := func(token string) string {
		env := &envelope.Envelope{Kind: envelope.KindChange, Token: token, DocumentKey: `{"_id": "a"}`, Ordinal: 3}
		deadLetter(env, nil, "event of 2000000 bytes exceeds the buffer's max payload of 1048576 bytes", "")
		if env.Kind != envelope.KindDeadLetter || env.Ordinal != 0 {
			t.Fatalf("envelope kind %q ordinal %d, want a dead letter without ordinal", env.Kind, env.Ordinal)
		}
		var ev struct {
			ID struct {
				Data string `json:"_data"`
			} `json:"_id"`
			DocumentKey map[string]string `json:"documentKey"`
		}
		if err := json.Unmarshal(env.DeadLetter.RawEvent, &ev); err != nil {
			t.Fatalf("raw event %s: %v", env.DeadLetter.RawEvent, err)
		}
		if ev.ID.Data != token || ev.DocumentKey["_id"] != "a" {
			t.Fatalf("raw event %s, want token %s and key a", env.DeadLetter.RawEvent, token)
		}
		return string(env.DeadLetter.RawEvent)
	}
	if a, b := raw("8266A1"), raw("8266A2"); a == b {
		t.Errorf("two events' dead letters are identical: %s", a)
	}
}
