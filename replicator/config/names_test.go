package config

import (
	"strings"
	"testing"
)

// TestHostileNames: names that MongoDB, PostgreSQL or NATS cannot take,
// or that would carry SQL or a wildcard, are refused by Parse (and so by
// check and run) at their file position; unusual names MongoDB accepts
// are kept.
func TestHostileNames(t *testing.T) {
	coll := func(source string) string {
		return "collections:\n  - source: " + source + "\n    table: a.b\n"
	}
	long := strings.Repeat("d", 64)
	tests := []struct{ name, src, want string }{
		{"newline injects SQL", coll(`"app.users\nCREATE TABLE public.pwned (x int);"`), `bad.yaml:2:13: collections[0].source: `},
		{"tab", coll(`"app.us\ters"`), `bad.yaml:2:13: collections[0].source: `},
		{"carriage return", coll(`"app.users\rDROP TABLE x;"`), `bad.yaml:2:13: collections[0].source: `},
		{"NUL", coll(`"app.us\0ers"`), `bad.yaml:2:13: collections[0].source: `},
		{"C1 control character", coll(`"app.us\x85ers"`), `bad.yaml:2:13: collections[0].source: `},
		{"no collection", coll(`app`), `bad.yaml:2:13: collections[0].source: `},
		{"empty database", coll(`.users`), `bad.yaml:2:13: collections[0].source: `},
		{"space in database", coll(`"my app.users"`), `bad.yaml:2:13: collections[0].source: `},
		{"star in database", coll(`"*.users"`), `bad.yaml:2:13: collections[0].source: `},
		{"database too long", coll(long + ".users"), `bad.yaml:2:13: collections[0].source: `},
		{"dollar in collection", coll(`"app.$cmd"`), `bad.yaml:2:13: collections[0].source: `},
		{"system collection", coll(`app.system.users`), `bad.yaml:2:13: collections[0].source: `},
		{"namespace too long", coll("app." + strings.Repeat("c", 252)), `bad.yaml:2:13: collections[0].source: `},
		{"subject prefix with a space", "buffer: {subject_prefix: \"a b\"}\n" + coll("app.users"), `bad.yaml:1:26: buffer.subject_prefix: `},
		{"subject prefix wildcard", "buffer: {subject_prefix: \"a.*\"}\n" + coll("app.users"), `bad.yaml:1:26: buffer.subject_prefix: `},
		{"subject prefix empty token", "buffer: {subject_prefix: \"a..b\"}\n" + coll("app.users"), `bad.yaml:1:26: buffer.subject_prefix: `},
		{"subject prefix trailing dot", "buffer: {subject_prefix: \"a.\"}\n" + coll("app.users"), `bad.yaml:1:26: buffer.subject_prefix: `},
		{"stream with a dot", "buffer: {stream: A.B}\n" + coll("app.users"), `bad.yaml:1:18: buffer.stream: `},
		{"stream with a slash", "buffer: {stream: A/B}\n" + coll("app.users"), `bad.yaml:1:18: buffer.stream: `},
		{"stream with a space", "buffer: {stream: \"A B\"}\n" + coll("app.users"), `bad.yaml:1:18: buffer.stream: `},
		{"stream wildcard", "buffer: {stream: \">\"}\n" + coll("app.users"), `bad.yaml:1:18: buffer.stream: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "bad.yaml")
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.src)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a problem at %q, got:\n%v", tt.want, err)
			}
		})
	}
}

// TestUnusualNamesAccepted: MongoDB allows spaces, "*", ">", "~" and dots
// in collection names, so the config accepts them (their subjects are
// encoded, see envelope.Subject).
func TestUnusualNamesAccepted(t *testing.T) {
	src := "collections:\n"
	for i, s := range []string{"app.my coll", "app.*", "app.>", "app.a~2A", "app.a..b.", "app.é", "a-b_c.x"} {
		src += "  - source: \"" + s + "\"\n    table: t.t" + string(rune('a'+i)) + "\n"
	}
	if _, err := Parse([]byte(src), "ok.yaml"); err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
}
