package replicator

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/mongopg/replicator/replicator/redact"
)

// NewLogger returns a slog logger writing level and format ("text" or
// "json") to w. Its records pass through redact.Handler: no credential of
// a URL or connection error reaches the log.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(redact.Handler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(redact.Handler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
