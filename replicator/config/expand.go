package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// References to environment variables in the file.
//
// Rules (README, Configuration reference):
//
//   - In every scalar value (not in mapping keys), ${NAME} is replaced by
//     the environment variable NAME; NAME is a letter or "_" followed by
//     letters, digits and "_".
//   - An unset variable is a Problem at the scalar's file:line:col naming
//     the variable; a variable set to "" expands to "".
//   - $${ is a literal "${"; any other "$" is kept as written.
//   - "${" without a closing "}" or with an invalid name is a Problem.
//   - Expansion works on the parsed node tree, never on the text: a value
//     is replaced inside its own scalar, so it cannot add keys, items or
//     comments, and problem positions stay those of the file. A plain
//     (unquoted, untagged) scalar takes the type of its expanded text, as
//     if that text had been written there (max_conns: ${N} is a number);
//     a quoted one stays a string.
var refRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces the references of every scalar value under root,
// looking names up with lookup; it returns one Problem per unset variable
// or malformed reference.
func (c *Config) expandEnv(root *yaml.Node, lookup func(string) (string, bool)) Problems {
	var ps Problems
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case yaml.DocumentNode:
			for _, ch := range n.Content {
				walk(ch, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, ch := range n.Content {
				walk(ch, path+"["+strconv.Itoa(i)+"]")
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "$") {
				return
			}
			v, errs := expandString(n.Value, lookup)
			for _, msg := range errs {
				ps = append(ps, Problem{File: c.File, Line: n.Line, Column: n.Column, Key: path, Msg: msg})
			}
			if len(errs) > 0 {
				v = "" // decoded as empty: no second problem for the same value
			}
			if v != n.Value {
				n.Value = v
				if n.Style == 0 {
					n.Tag = "" // resolved again from the new text when decoded
				}
			}
		}
	}
	walk(root, "")
	return ps
}

// expandString expands the references of s and returns the problems of
// its malformed or unset ones.
func expandString(s string, lookup func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var errs []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), errs
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				errs = append(errs, fmt.Sprintf("%q has no closing \"}\" (write $${ for a literal ${)", s))
				return "", errs
			}
			name := s[2:end]
			s = s[end+1:]
			if !refRE.MatchString(name) {
				errs = append(errs, fmt.Sprintf("${%s}: invalid environment variable name (letters, digits and _; write $${ for a literal ${)", name))
				continue
			}
			v, ok := lookup(name)
			if !ok {
				errs = append(errs, fmt.Sprintf("environment variable %s is not set (referenced as ${%s})", name, name))
				continue
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
}
