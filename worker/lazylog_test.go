package worker

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestLazyWith: a lazily bound logger writes exactly what logger.With
// writes, through With and WithGroup too, and respects the level.
func TestLazyWith(t *testing.T) {
	for _, tc := range []struct {
		name string
		use  func(l *slog.Logger)
	}{
		{"info", func(l *slog.Logger) { l.Info("hello", "k", 1) }},
		{"debug-dropped", func(l *slog.Logger) { l.Debug("hidden") }},
		{"with", func(l *slog.Logger) { l.With("x", "y").Warn("w") }},
		{"group", func(l *slog.Logger) { l.WithGroup("g").Error("e", "k", true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want, got bytes.Buffer
			opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}
			tc.use(slog.New(slog.NewTextHandler(&want, opts)).With("task", "diag.noop", "task_id", "abc"))
			tc.use(lazyWith(slog.New(slog.NewTextHandler(&got, opts)), "task", "diag.noop", "task_id", "abc"))
			if got.String() != want.String() {
				t.Fatalf("lazy:\n%s\nwant:\n%s", got.String(), want.String())
			}
		})
	}
}
