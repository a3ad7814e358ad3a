package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
)

// outputFormat is the --format flag of the commands that print a report:
// text (for people, the default) or json (one JSON document, for
// scripts; its fields are documented in the README).
type outputFormat string

const (
	formatText outputFormat = "text"
	formatJSON outputFormat = "json"
)

// registerFormat adds --format to fs.
func registerFormat(fs *flag.FlagSet) *outputFormat {
	f := formatText
	fs.Func("format", "output `format`: text or json (one JSON document) (default text)", func(s string) error {
		switch outputFormat(s) {
		case formatText, formatJSON:
			f = outputFormat(s)
			return nil
		}
		return fmt.Errorf("want text or json, not %q", s)
	})
	return &f
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
