package specrunner

import "testing"

func TestParseKnownGaps(t *testing.T) {
	doc := []byte(`# Known gaps

Some prose.

| File | Test | Missing emulator feature |
|------|------|--------------------------|
| ` + "`change-streams.json`" + ` | Test consecutive resume | getMore after closeConnection |
| change-streams-errors.json | a \| b | code 280 |
`)
	gaps, err := ParseKnownGaps(doc)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := gaps.Lookup("change-streams.json", "Test consecutive resume"); !ok || g.Feature != "getMore after closeConnection" {
		t.Fatalf("lookup = %+v, %v", g, ok)
	}
	if _, ok := gaps.Lookup("change-streams-errors.json", "a | b"); !ok {
		t.Fatal("escaped pipe not handled")
	}
	if n := len(gaps.All()); n != 2 {
		t.Fatalf("got %d gaps, want 2", n)
	}
	if _, err := ParseKnownGaps([]byte("| f | t |  |\n")); err == nil {
		t.Fatal("row without a feature accepted")
	}
	if _, err := ParseKnownGaps([]byte("| f | t | x |\n| f | t | y |\n")); err == nil {
		t.Fatal("duplicate row accepted")
	}
}
