package transport

import "sync/atomic"

// ErrorHook holds a transport's OnMailboxError function (the metrics'
// broker error counter): set at any time, called with the operation's
// name whenever a mailbox operation fails. The zero value calls nothing.
type ErrorHook struct {
	fn atomic.Pointer[func(op string)]
}

// Set installs fn (nil removes it).
func (h *ErrorHook) Set(fn func(op string)) { h.fn.Store(&fn) }

// Fail reports err, if not nil, to the installed function and returns it.
func (h *ErrorHook) Fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if fn := h.fn.Load(); fn != nil && *fn != nil {
		(*fn)(op)
	}
	return err
}
