// Package logging builds the process's slog.Logger: the celery-style
// level names (-l/LOG_LEVEL), text or JSON output (--log-format), and
// MaskAttr, the last line of defence that passes every string and error
// of a record through mask.Text. Standard library and internal/mask only.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/omicsomics/omics-worker/internal/mask"
)

// ParseLevel maps a celery log level name (debug, info, warning, error,
// critical; "" is info) to a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warning", "warn":
		return slog.LevelWarn, nil
	case "error", "critical", "fatal":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (debug, info, warning, error, critical)", s)
}

// MaskAttr is a slog.HandlerOptions.ReplaceAttr: every string and error
// value (the message included) goes through mask.Text, so a URL that
// reached a log call unmasked (inside a library's error text, say) is
// masked all the same.
func MaskAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		if s := v.String(); strings.Contains(s, "://") || strings.Contains(s, "assword") {
			a.Value = slog.StringValue(mask.Text(s))
		}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			if s := err.Error(); s != mask.Text(s) {
				a.Value = slog.StringValue(mask.Text(s))
			}
		}
	}
	return a
}

// New returns a logger writing to w at level (see ParseLevel) in format
// "text" (or "") or "json", with MaskAttr applied to every record.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	lv, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: MaskAttr}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (text, json)", format)
}
