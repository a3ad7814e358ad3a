package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Environment variables that override the file. A non-empty value wins
// over the file's key, so secrets can stay out of the file.
const (
	EnvSourceURI     = "REPLICATOR_SOURCE_URI"
	EnvTargetURL     = "REPLICATOR_TARGET_URL"
	EnvBufferNATSURL = "REPLICATOR_BUFFER_NATS_URL"
)

// Load reads the file at path, expands its ${NAME} references from the
// environment (expand.go), applies the environment overrides, the
// defaults and Validate. An invalid file, or a reference to an unset
// variable, yields Problems.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	c, err := decode(data, path, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if v := os.Getenv(EnvSourceURI); v != "" {
		c.Source.URI = v
	}
	if v := os.Getenv(EnvTargetURL); v != "" {
		c.Target.URL = v
	}
	if v := os.Getenv(EnvBufferNATSURL); v != "" {
		c.Buffer.NATSURL = v
	}
	return c, c.finish()
}

// Parse reads a config from data (name is used in problem positions),
// applies the defaults and Validate. It does not read the environment: a
// ${NAME} reference in data is a Problem, as for an unset variable.
func Parse(data []byte, name string) (*Config, error) {
	c, err := decode(data, name, noEnv)
	if err != nil {
		return nil, err
	}
	return c, c.finish()
}

func (c *Config) finish() error {
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	return nil
}

var (
	lineRE     = regexp.MustCompile(`^line (\d+)(?::(\d+))?: (.*)$`)
	backtickRE = regexp.MustCompile("`([^`]*)`")
)

// noEnv is the lookup of Parse: no variable is set.
func noEnv(string) (string, bool) { return "", false }

// decode parses YAML into a Config, expands the ${NAME} references of its
// scalar values with lookup, and reports reference problems, unknown keys
// and type errors together.
func decode(data []byte, name string, lookup func(string) (string, bool)) (*Config, error) {
	c := &Config{File: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{syntaxProblem(name, err)}
	}
	c.root = &root
	if root.Kind == 0 {
		return c, nil // empty file: Validate reports what is missing
	}
	if doc := root.Content[0]; doc.Kind != yaml.MappingNode {
		return nil, Problems{{File: name, Line: doc.Line, Column: doc.Column, Msg: "the config must be a mapping of sections (source, target, collections, ...)"}}
	}
	ps := c.expandEnv(&root, lookup)
	ps = append(ps, c.unknownKeys(root.Content[0], reflect.TypeOf(Config{}), "")...)
	if err := root.Decode(c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, append(ps, c.lineProblem(err.Error()))
		}
		// Type errors leave the rest decoded: validate it too, so every
		// problem is reported at once.
		for _, msg := range te.Errors {
			ps = append(ps, c.lineProblem(msg))
		}
		c.applyDefaults()
		if err := c.Validate(); err != nil {
			ps = append(ps, err.(Problems)...)
		}
	}
	if len(ps) > 0 {
		ps.sort()
		return nil, ps
	}
	return c, nil
}

func syntaxProblem(name string, err error) Problem {
	c := &Config{File: name}
	return c.lineProblem(strings.TrimPrefix(err.Error(), "yaml: "))
}

// lineProblem turns "line N[:C]: msg" into a positioned Problem. Without a
// column, it finds the scalar on that line the message quotes in
// backticks, which also gives the key path.
func (c *Config) lineProblem(msg string) Problem {
	p := Problem{File: c.File, Msg: msg}
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return p
	}
	p.Line, _ = strconv.Atoi(m[1])
	p.Column, _ = strconv.Atoi(m[2])
	p.Msg = m[3]
	want := ""
	if q := backtickRE.FindStringSubmatch(p.Msg); q != nil {
		want = q[1]
	}
	if key, n := findOnLine(c.root, "", p.Line, p.Column, want); n != nil {
		p.Key, p.Column = key, n.Column
	}
	if p.Column == 0 {
		p.Column = 1
	}
	return p
}

// findOnLine finds the value node on line (at col, if col > 0; else whose
// value starts like want) and its key path.
func findOnLine(n *yaml.Node, path string, line, col int, want string) (string, *yaml.Node) {
	if n == nil {
		return "", nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, ch := range n.Content {
			if k, f := findOnLine(ch, path, line, col, want); f != nil {
				return k, f
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, f := findOnLine(n.Content[i+1], join(path, n.Content[i].Value), line, col, want); f != nil {
				return k, f
			}
		}
	case yaml.SequenceNode:
		for i, ch := range n.Content {
			if k, f := findOnLine(ch, path+"["+strconv.Itoa(i)+"]", line, col, want); f != nil {
				return k, f
			}
		}
	}
	if n.Line == line && (col > 0 && n.Column == col || col == 0 && want != "" && strings.HasPrefix(n.Value, strings.TrimSuffix(want, "..."))) {
		return path, n
	}
	return "", nil
}

// RequireSource reports a missing source URI (commands that read MongoDB).
func (c *Config) RequireSource() error {
	if c.Source.URI == "" {
		return Problems{c.problem("source.uri", "source.uri is required (or set %s)", EnvSourceURI)}
	}
	return nil
}

// RequireTarget reports a missing target URL (commands that write
// PostgreSQL).
func (c *Config) RequireTarget() error {
	if c.Target.URL == "" {
		return Problems{c.problem("target.url", "target.url is required (or set %s)", EnvTargetURL)}
	}
	return nil
}
