package redact

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"nats://user:secret@host:4222", "nats://user:xxxxx@host:4222"},
		{"nats://user:secret@h1:4222,nats://u2:secret2@h2:4222,nats://h3:4222",
			"nats://user:xxxxx@h1:4222,nats://u2:xxxxx@h2:4222,nats://h3:4222"},
		{"nats://s3cretToken@host:4222", "nats://xxxxx@host:4222"},
		{"tls://s3cretToken@host:4222", "tls://xxxxx@host:4222"},
		{"nats://host:4222", "nats://host:4222"},
		{"mongodb://app:secret@m1:27017,m2:27017/?replicaSet=rs0", "mongodb://app:xxxxx@m1:27017,m2:27017/?replicaSet=rs0"},
		{"mongodb+srv://app:secret@cluster0.example.net/db", "mongodb+srv://app:xxxxx@cluster0.example.net/db"},
		{"mongodb://app:se@cret@m1/db", "mongodb://app:xxxxx@m1/db"},
		{"mongodb://app@m1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:secret",
			"mongodb://app@m1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:xxxxx"},
		{"postgres://postgres@127.0.0.1:5432/demo", "postgres://postgres@127.0.0.1:5432/demo"},
		{"postgres://app:secret@db:5432/x?sslmode=require", "postgres://app:xxxxx@db:5432/x?sslmode=require"},
		{"postgres://app@db/x?password=secret&sslmode=require", "postgres://app@db/x?password=xxxxx&sslmode=require"},
		{"host=db user=app password=secret dbname=x", "host=db user=app password=xxxxx dbname=x"},
		{"host=db password='sec ret' sslpassword=secret dbname=x", "host=db password=xxxxx sslpassword=xxxxx dbname=x"},
		{"buffer: connect nats://u:secret@h:4222: nats: no servers available for connection",
			"buffer: connect nats://u:xxxxx@h:4222: nats: no servers available for connection"},
		{`parse "mongodb://u:secret@h:bad": invalid port`, `parse "mongodb://u:xxxxx@h:bad": invalid port`},
		{"write to admin@example.com", "write to admin@example.com"},
		{"", ""},
	}
	for _, c := range cases {
		got := String(c.in)
		if got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "sec ret") {
			t.Errorf("String(%q) = %q keeps the secret", c.in, got)
		}
	}
}

func TestError(t *testing.T) {
	base := io.ErrUnexpectedEOF
	err := Error(&wrapped{"connect nats://u:secret@h:4222", base})
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "nats://u:xxxxx@h:4222") {
		t.Errorf("Error text %q", err)
	}
	if !errors.Is(err, base) {
		t.Error("the redacted error no longer wraps the original")
	}
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestHandler(t *testing.T) {
	for _, json := range []bool{false, true} {
		var buf bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&buf, nil)
		if json {
			h = slog.NewJSONHandler(&buf, nil)
		}
		log := slog.New(Handler(h)).With("url", "nats://u:secret1@h:4222")
		log.WithGroup("g").Info("connect postgres://a:secret2@db/x failed",
			"err", errors.New("dial mongodb://a:secret3@m1/db"),
			slog.Group("target", "dsn", "host=db password=secret4"),
			"n", 3)
		out := buf.String()
		if strings.Contains(out, "secret") {
			t.Errorf("json=%v: log keeps a secret: %s", json, out)
		}
		for _, want := range []string{"nats://u:xxxxx@h:4222", "postgres://a:xxxxx@db/x", "mongodb://a:xxxxx@m1/db", "password=xxxxx", "3"} {
			if !strings.Contains(out, want) {
				t.Errorf("json=%v: log lacks %q: %s", json, want, out)
			}
		}
	}
}
