package worker

import (
	"context"
	"log/slog"
	"sync"
)

// lazyWith is logger.With(args...) whose attributes are only bound (for
// the text/JSON handlers: pre-formatted) when a record is actually
// handled, so a per-message logger costs nothing at levels that log
// nothing for the message.
func lazyWith(l *slog.Logger, args ...any) *slog.Logger {
	return slog.New(&lazyHandler{inner: l.Handler(), args: args})
}

type lazyHandler struct {
	inner slog.Handler
	args  []any
	once  sync.Once
	h     slog.Handler
}

func (l *lazyHandler) bound() slog.Handler {
	l.once.Do(func() { l.h = slog.New(l.inner).With(l.args...).Handler() })
	return l.h
}

func (l *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.inner.Enabled(ctx, level)
}

func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.bound().Handle(ctx, r)
}

func (l *lazyHandler) WithAttrs(as []slog.Attr) slog.Handler { return l.bound().WithAttrs(as) }

func (l *lazyHandler) WithGroup(name string) slog.Handler { return l.bound().WithGroup(name) }
