package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// load writes body to a file and loads it (with the environment).
func load(t *testing.T, body string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func TestBufferNATSURLFromEnv(t *testing.T) {
	t.Setenv(EnvSourceURI, "")
	t.Setenv(EnvTargetURL, "")
	t.Setenv(EnvBufferNATSURL, "nats://user:secret@env:4222")
	c, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Buffer.NATSURL != "nats://user:secret@env:4222" || c.ForBuffer().URL != "nats://user:secret@env:4222" {
		t.Fatalf("buffer.nats_url %q, buffer URL %q", c.Buffer.NATSURL, c.ForBuffer().URL)
	}
	t.Setenv(EnvBufferNATSURL, "")
	c, err = load(t, "buffer: {nats_url: nats://file:4222}\ncollections: [{source: a.b, table: a.b}]\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Buffer.NATSURL != "nats://file:4222" {
		t.Fatalf("an empty %s replaced the file's URL: %q", EnvBufferNATSURL, c.Buffer.NATSURL)
	}
}

func TestEnvReferences(t *testing.T) {
	t.Setenv(EnvSourceURI, "")
	t.Setenv(EnvTargetURL, "")
	t.Setenv(EnvBufferNATSURL, "")
	t.Setenv("RT_PG_PASSWORD", "p@ss word")
	t.Setenv("RT_NATS", "nats://u:secret@h:4222")
	t.Setenv("RT_CONNS", "12")
	t.Setenv("RT_EMPTY", "")
	c, err := load(t, `source:
  uri: mongodb://m:27017/?replicaSet=rs0
target:
  url: "postgres://app:${RT_PG_PASSWORD}@db/x"
  max_conns: ${RT_CONNS}
buffer:
  nats_url: ${RT_NATS}
  stream: 'S$${RT_NATS}$X${RT_EMPTY}'
collections: [{source: a.b, table: a.b}]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Target.URL != "postgres://app:p@ss word@db/x" {
		t.Errorf("target.url %q", c.Target.URL)
	}
	if c.Target.MaxConns != 12 {
		t.Errorf("target.max_conns %d: an unquoted reference takes the type of its value", c.Target.MaxConns)
	}
	if c.Buffer.NATSURL != "nats://u:secret@h:4222" {
		t.Errorf("buffer.nats_url %q", c.Buffer.NATSURL)
	}
	if c.Buffer.Stream != "S${RT_NATS}$X" {
		t.Errorf("buffer.stream %q: $${ is a literal ${ and a lone $ stays", c.Buffer.Stream)
	}
}

func TestEnvReferenceUnset(t *testing.T) {
	os.Unsetenv("RT_UNSET_SECRET")
	t.Setenv("RT_SET", "x")
	_, err := load(t, `source:
  uri: mongodb://m:27017/
target:
  url: postgres://app:${RT_UNSET_SECRET}@db/x
  max_conns: ${RT_UNSET_SECRET}
buffer:
  stream: "${RT_SET}${not-a-name}"
  subject_prefix: "a${RT_SET"
collections: [{source: a.b, table: a.b}]
`)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		"r.yaml:4:8: target.url: environment variable RT_UNSET_SECRET is not set",
		"r.yaml:5:14: target.max_conns: environment variable RT_UNSET_SECRET is not set",
		"r.yaml:7:11: buffer.stream: ${not-a-name}: invalid environment variable name",
		"r.yaml:8:19: buffer.subject_prefix: \"${RT_SET\" has no closing",
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for i, w := range want {
		if got := ps[i].String(); !strings.Contains(got, w) {
			t.Errorf("problem %d: %q does not contain %q", i, got, w)
		}
	}
	// Parse reads no environment: a reference is a problem there too.
	t.Setenv("RT_SET", "x")
	if _, err := Parse([]byte("target: {url: \"${RT_SET}\"}\n"), "p.yaml"); err == nil || !strings.Contains(err.Error(), "p.yaml:1:15: target.url: environment variable RT_SET is not set") {
		t.Errorf("Parse with a reference: %v", err)
	}
}

// TestEnvReferenceCannotInjectYAML: a variable's value is one scalar's
// text, whatever it holds; it never adds keys, items or documents.
func TestEnvReferenceCannotInjectYAML(t *testing.T) {
	t.Setenv(EnvSourceURI, "")
	t.Setenv(EnvTargetURL, "")
	t.Setenv(EnvBufferNATSURL, "")
	evil := "x\nmax_conns: 99\ncollections: [{source: evil.c, table: evil.c}]\n---\n"
	t.Setenv("RT_EVIL", evil)
	for _, body := range []string{
		"target:\n  url: ${RT_EVIL}\ncollections: [{source: a.b, table: a.b}]\n",
		"target:\n  url: \"${RT_EVIL}\"\ncollections: [{source: a.b, table: a.b}]\n",
	} {
		c, err := load(t, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.Target.URL != evil {
			t.Errorf("target.url %q, want the variable's value as one string", c.Target.URL)
		}
		if c.Target.MaxConns != DefaultMaxConns || len(c.Collections) != 1 || c.Collections[0].Source != "a.b" {
			t.Errorf("the value injected YAML: max_conns %d, collections %+v", c.Target.MaxConns, c.Collections)
		}
	}
}
