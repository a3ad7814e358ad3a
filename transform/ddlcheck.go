package transform

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckDDL verifies that ddl has the shape DDL writes and nothing else:
// "--" comments of graphic characters, and statements
//
//	CREATE SCHEMA IF NOT EXISTS "s";
//	CREATE TABLE IF NOT EXISTS "s"."t" (element, ...);
//
// whose elements are a column ("name" type [NOT NULL], the type canonical
// or a quoted identifier), PRIMARY KEY ("a", ...), UNIQUE ("a", ...) or
// FOREIGN KEY ("a", ...)
// REFERENCES "s"."t" ("a", ...) ON DELETE CASCADE. Every identifier is
// quoted; there are no string literals, no other statements and no
// whitespace but spaces and newlines. run checks the DDL before executing
// it, so that even a Mapping not built by Compile cannot run other SQL.
func CheckDDL(ddl string) error {
	toks, err := lexDDL(ddl)
	if err != nil {
		return err
	}
	p := &ddlParser{src: ddl, toks: toks}
	for !p.done() {
		if err := p.statement(); err != nil {
			return err
		}
	}
	return nil
}

type ddlToken struct {
	kind byte // 'q' quoted identifier, 'w' word, 'n' number, else the punctuation byte
	text string
	pos  int
}

func lexDDL(s string) ([]ddlToken, error) {
	var toks []ddlToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\n':
			i++
		case strings.HasPrefix(s[i:], "--"):
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				end = len(s) - i
			}
			text := s[i+2 : i+end]
			if !utf8.ValidString(text) || strings.IndexFunc(text, func(r rune) bool { return !unicode.IsGraphic(r) }) >= 0 {
				return nil, fmt.Errorf("ddl: offset %d: comment %q holds a character that is not graphic", i, text)
			}
			i += end
		case c == '"':
			j := i + 1
			for {
				k := strings.IndexByte(s[j:], '"')
				if k < 0 {
					return nil, fmt.Errorf("ddl: offset %d: unterminated quoted identifier", i)
				}
				j += k + 1
				if j < len(s) && s[j] == '"' {
					j++
					continue
				}
				break
			}
			// An empty "" is a syntax error in PostgreSQL, harmless here.
			if strings.IndexByte(s[i:j], 0) >= 0 {
				return nil, fmt.Errorf("ddl: offset %d: NUL byte in an identifier", i)
			}
			toks = append(toks, ddlToken{'q', s[i:j], i})
			i = j
		case isWordByte(c) && !isDigit(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, ddlToken{'w', s[i:j], i})
			i = j
		case isDigit(c):
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			toks = append(toks, ddlToken{'n', s[i:j], i})
			i = j
		case strings.IndexByte("(),;.[]", c) >= 0:
			toks = append(toks, ddlToken{c, s[i : i+1], i})
			i++
		default:
			return nil, fmt.Errorf("ddl: offset %d: unexpected %q", i, c)
		}
	}
	return toks, nil
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isWordByte(c byte) bool { return c == '_' || isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }

type ddlParser struct {
	src  string
	toks []ddlToken
	i    int
}

var errDDLEnd = errors.New("ddl: unexpected end")

func (p *ddlParser) done() bool { return p.i >= len(p.toks) }

func (p *ddlParser) peek() ddlToken {
	if p.done() {
		return ddlToken{}
	}
	return p.toks[p.i]
}

// expect consumes the given words or punctuation, in order.
func (p *ddlParser) expect(want ...string) error {
	for _, w := range want {
		if p.done() {
			return errDDLEnd
		}
		t := p.toks[p.i]
		if t.kind == 'q' || t.text != w {
			return fmt.Errorf("ddl: offset %d: got %q, want %q", t.pos, t.text, w)
		}
		p.i++
	}
	return nil
}

func (p *ddlParser) accept(w string) bool {
	if t := p.peek(); t.kind != 'q' && t.kind != 0 && t.text == w {
		p.i++
		return true
	}
	return false
}

func (p *ddlParser) ident() error {
	if p.done() {
		return errDDLEnd
	}
	if t := p.toks[p.i]; t.kind != 'q' {
		return fmt.Errorf("ddl: offset %d: %q is not a quoted identifier", t.pos, t.text)
	}
	p.i++
	return nil
}

// table: "schema"."table" or "table".
func (p *ddlParser) table() error {
	if err := p.ident(); err != nil {
		return err
	}
	if p.accept(".") {
		return p.ident()
	}
	return nil
}

// identList: ( "a", "b", ... ).
func (p *ddlParser) identList() error {
	if err := p.expect("("); err != nil {
		return err
	}
	for {
		if err := p.ident(); err != nil {
			return err
		}
		if !p.accept(",") {
			return p.expect(")")
		}
	}
}

func (p *ddlParser) statement() error {
	if err := p.expect("CREATE"); err != nil {
		return err
	}
	if p.accept("SCHEMA") {
		if err := p.expect("IF", "NOT", "EXISTS"); err != nil {
			return err
		}
		if err := p.ident(); err != nil {
			return err
		}
		return p.expect(";")
	}
	if err := p.expect("TABLE", "IF", "NOT", "EXISTS"); err != nil {
		return err
	}
	if err := p.table(); err != nil {
		return err
	}
	if err := p.expect("("); err != nil {
		return err
	}
	for {
		if err := p.element(); err != nil {
			return err
		}
		if !p.accept(",") {
			break
		}
	}
	return p.expect(")", ";")
}

func (p *ddlParser) element() error {
	switch {
	case p.accept("PRIMARY"):
		if err := p.expect("KEY"); err != nil {
			return err
		}
		return p.identList()
	case p.accept("UNIQUE"):
		return p.identList()
	case p.accept("FOREIGN"):
		if err := p.expect("KEY"); err != nil {
			return err
		}
		if err := p.identList(); err != nil {
			return err
		}
		if err := p.expect("REFERENCES"); err != nil {
			return err
		}
		if err := p.table(); err != nil {
			return err
		}
		if err := p.identList(); err != nil {
			return err
		}
		return p.expect("ON", "DELETE", "CASCADE")
	}
	if err := p.ident(); err != nil {
		return err
	}
	if err := p.columnType(); err != nil {
		return err
	}
	if p.accept("NOT") {
		return p.expect("NULL")
	}
	return nil
}

// columnType: a quoted identifier, or the tokens up to NOT, "," or the
// closing ")" spelling a canonical type.
func (p *ddlParser) columnType() error {
	if t := p.peek(); t.kind == 'q' {
		p.i++
		return nil
	}
	start, depth := p.i, 0
	for ; !p.done(); p.i++ {
		t := p.toks[p.i]
		if depth == 0 && (t.text == "NOT" || t.kind == ',' || t.kind == ')') || t.kind == 'q' || t.kind == ';' {
			break
		}
		switch t.kind {
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	if p.i == start {
		return fmt.Errorf("ddl: column without a type")
	}
	first, last := p.toks[start], p.toks[p.i-1]
	typ := p.src[first.pos : last.pos+len(last.text)]
	if c, err := CanonicalType(typ); err != nil || c != typ {
		return fmt.Errorf("ddl: offset %d: %q is not a canonical column type", first.pos, typ)
	}
	return nil
}
