package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/replicator/redact"
	"github.com/mongopg/replicator/transform"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	File         string
	Line, Column int
	// Key is the YAML key path, e.g. "collections[0].columns.cvss.type".
	Key string
	Msg string
}

// String is "file:line:col: key: message", with any credential a message
// quotes (a value in a type error, say) removed by redact.String.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(redact.String(p.Msg))
	return b.String()
}

// Problems is every problem found, in file order. It is the error Load,
// Parse and Mappings return for invalid configs.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}

// Position returns "file:line:col" of the YAML key path key (the deepest
// existing node along it), or the file name alone if unknown.
func (c *Config) Position(key string) string {
	if key == "" {
		return c.File
	}
	n := findNode(c.root, key)
	if n == nil {
		return c.File
	}
	return fmt.Sprintf("%s:%d:%d", c.File, n.Line, n.Column)
}

// problem builds a Problem positioned at key.
func (c *Config) problem(key, format string, args ...any) Problem {
	p := Problem{File: c.File, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n := findNode(c.root, key); n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p
}

// problemsFrom turns transform.Compile's joined ConfigErrors for
// collection i into positioned Problems.
func (c *Config) problemsFrom(i int, err error) Problems {
	var ps Problems
	prefix := fmt.Sprintf("collections[%d]", i)
	for _, e := range flatten(err) {
		var ce *transform.ConfigError
		if errors.As(e, &ce) {
			ps = append(ps, c.problem(prefix+"."+ce.Field, "%v", ce.Err))
		} else {
			ps = append(ps, c.problem(prefix, "%v", e))
		}
	}
	ps.sort()
	return ps
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// findNode follows a key path ("a.b[2].c") from the document root and
// returns the deepest node found: the value of the last key that exists.
func findNode(root *yaml.Node, key string) *yaml.Node {
	if root == nil {
		return nil
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, seg := range splitKey(key) {
		n = resolveAlias(n)
		next := childNode(n, seg)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func childNode(n *yaml.Node, seg string) *yaml.Node {
	if i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]")); err == nil && strings.HasPrefix(seg, "[") {
		if n.Kind == yaml.SequenceNode && i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == seg {
			return n.Content[j+1]
		}
	}
	return nil
}

// splitKey splits "collections[0].columns.id" into
// ["collections", "[0]", "columns", "id"].
func splitKey(key string) []string {
	var out []string
	for _, part := range strings.Split(key, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				out = append(out, part)
				part = ""
			case i > 0:
				out = append(out, part[:i])
				part = part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					out = append(out, part)
					part = ""
					break
				}
				out = append(out, part[:j+1])
				part = part[j+1:]
			}
		}
	}
	return out
}
