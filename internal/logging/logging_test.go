package logging

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
)

func TestParseLevel(t *testing.T) {
	for _, c := range []struct {
		in   string
		want slog.Level
		ok   bool
	}{
		{"debug", slog.LevelDebug, true},
		{"", slog.LevelInfo, true},
		{" INFO ", slog.LevelInfo, true},
		{"warning", slog.LevelWarn, true},
		{"warn", slog.LevelWarn, true},
		{"error", slog.LevelError, true},
		{"critical", slog.LevelError, true},
		{"fatal", slog.LevelError, true},
		{"loud", 0, false},
	} {
		got, err := ParseLevel(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestNewFormats(t *testing.T) {
	for _, c := range []struct {
		format, want string
		ok           bool
	}{
		{"", "level=INFO msg=hello", true},
		{"text", "level=INFO msg=hello", true},
		{"JSON", `"msg":"hello"`, true},
		{"xml", "", false},
	} {
		var out bytes.Buffer
		l, err := New(&out, "info", c.format)
		if (err == nil) != c.ok {
			t.Fatalf("New(%q): err %v, want ok %v", c.format, err, c.ok)
		}
		if !c.ok {
			continue
		}
		l.Debug("hidden")
		l.Info("hello")
		if s := out.String(); !strings.Contains(s, c.want) || strings.Contains(s, "hidden") {
			t.Errorf("format %q wrote %q, want %q and no debug line", c.format, s, c.want)
		}
	}
	if _, err := New(io.Discard, "loud", "text"); err == nil {
		t.Error("New accepted a bad level")
	}
}

// TestMaskAttr: a password in the message, a string attribute or an
// error's text never reaches the output, in either format.
func TestMaskAttr(t *testing.T) {
	url := "redis://u:" + masktest.Password + "@h:6379/0"
	for _, format := range []string{"text", "json"} {
		var out bytes.Buffer
		l, err := New(&out, "debug", format)
		if err != nil {
			t.Fatal(err)
		}
		l.Info("connect "+url, "url", url, "err", errors.New("dial "+url+": refused"),
			"dsn", "host=db password="+masktest.Password)
		masktest.Check(t, format+" log", out.String())
		if !strings.Contains(out.String(), "u:**@h:6379") {
			t.Errorf("%s log lacks the masked URL: %s", format, out.String())
		}
	}
}
