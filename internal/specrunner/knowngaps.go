package specrunner

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// KnownGap is one test that is known to fail on the emulator.
type KnownGap struct {
	File, Test string
	// Feature is the missing or wrong emulator behaviour.
	Feature string
}

// KnownGaps indexes gaps by file and test description.
type KnownGaps map[string]map[string]KnownGap

// LoadKnownGaps reads the Markdown table of a KNOWN_GAPS.md file: every
// table row "| file | test description | missing feature |" after the
// header row. A missing file is an empty list.
func LoadKnownGaps(path string) (KnownGaps, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return KnownGaps{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known gaps: %w", err)
	}
	return ParseKnownGaps(data)
}

// ParseKnownGaps parses the table rows of a known-gaps Markdown document.
// Cells may wrap names in backticks; a literal "|" is written "\|".
func ParseKnownGaps(data []byte) (KnownGaps, error) {
	gaps := KnownGaps{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(text, "|") {
			continue
		}
		cells := splitRow(text)
		if len(cells) < 3 {
			return nil, fmt.Errorf("known gaps line %d: want | file | test | feature |", line)
		}
		if isSeparator(cells) || strings.EqualFold(cells[0], "file") {
			continue
		}
		g := KnownGap{File: unquote(cells[0]), Test: unquote(cells[1]), Feature: cells[2]}
		if g.File == "" || g.Test == "" || g.Feature == "" {
			return nil, fmt.Errorf("known gaps line %d: file, test and feature must all be given", line)
		}
		if gaps[g.File] == nil {
			gaps[g.File] = map[string]KnownGap{}
		}
		if _, dup := gaps[g.File][g.Test]; dup {
			return nil, fmt.Errorf("known gaps line %d: %s / %s listed twice", line, g.File, g.Test)
		}
		gaps[g.File][g.Test] = g
	}
	return gaps, sc.Err()
}

// Lookup returns the gap recorded for a test.
func (k KnownGaps) Lookup(file, test string) (KnownGap, bool) {
	g, ok := k[file][test]
	return g, ok
}

// All returns every gap.
func (k KnownGaps) All() []KnownGap {
	var out []KnownGap
	for _, tests := range k {
		for _, g := range tests {
			out = append(out, g)
		}
	}
	return out
}

func splitRow(row string) []string {
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

func isSeparator(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(c, ":- ") != "" {
			return false
		}
	}
	return true
}

func unquote(s string) string {
	return strings.TrimSpace(strings.Trim(s, "`"))
}
