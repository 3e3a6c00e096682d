package worker

// Automatic retries of transient errors (Celery's autoretry_for +
// retry_backoff + retry_jitter): a handler marks an error as transient with
// Transient (or a task classifies errors with AutoRetry.IsTransient) and the
// runtime turns it into a Retry whose countdown grows exponentially, with
// full jitter, until TaskOptions.MaxRetries (default 3) is spent; then the
// task fails with the last error.

import (
	"errors"
	"math/rand/v2"
	"time"
)

// TransientError marks an error as transient: worth retrying the task
// later (a database or object store outage, a dropped connection). Build
// it with Transient.
type TransientError struct {
	// Err is the underlying error; it is what RETRY and the final FAILURE
	// record (a *PyError chooses the Python exception).
	Err error
}

// Transient marks err as transient; nil stays nil. A handler returning
// Transient(err) has its task retried automatically (see AutoRetry).
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

func (e *TransientError) Error() string { return "transient: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err (or an error it wraps) was marked with
// Transient.
func IsTransient(err error) bool {
	var te *TransientError
	return errors.As(err, &te)
}

// AutoRetry configures the automatic retry of transient errors for one
// task (TaskOptions.AutoRetry). The zero value retries errors marked with
// Transient with Celery's retry_backoff=True, retry_backoff_max=600 and
// retry_jitter=True: retry n (n = 0, 1, 2, ...) waits a random time in
// [0, min(Max, Base×2^n)], Base 1 s. The number of retries is bounded by
// TaskOptions.MaxRetries (default 3); after the last one the task fails
// with the last error.
type AutoRetry struct {
	// Disabled turns automatic retries off: a Transient error then fails
	// the task at once (with the underlying error).
	Disabled bool
	// IsTransient, if set, also classifies errors that are not marked with
	// Transient (e.g. postgres.IsTransient for database outages).
	IsTransient func(error) bool
	// Base is the first backoff step (default 1 s).
	Base time.Duration
	// Max caps one backoff (default 600 s, Celery's retry_backoff_max).
	Max time.Duration
	// NoJitter waits exactly min(Max, Base×2^n) (retry_jitter=False).
	NoJitter bool
}

// Backoff returns the countdown of retry n (0-based) under a.
func (a AutoRetry) Backoff(n int) time.Duration {
	base, ceil := a.Base, a.Max
	if base <= 0 {
		base = time.Second
	}
	if ceil <= 0 {
		ceil = 600 * time.Second
	}
	d := ceil
	if n < 40 && base<<uint(n) > 0 && base<<uint(n) < ceil {
		d = base << uint(n)
	}
	if !a.NoJitter {
		d = time.Duration(rand.Int64N(int64(d) + 1))
	}
	// A zero countdown would mean "the task's default retry delay".
	return max(d, time.Millisecond)
}

// transient reports whether err is retried automatically under a.
func (a AutoRetry) transient(err error) bool {
	if a.Disabled || err == nil {
		return false
	}
	if IsTransient(err) {
		return true
	}
	return a.IsTransient != nil && a.IsTransient(err)
}

// autoRetry turns a transient handler error into a Retry outcome with an
// exponential, jittered countdown. Panics, explicit retries and other
// errors pass through unchanged; so does a marked error when automatic
// retries are disabled (it is unwrapped so the FAILURE shows the cause).
func (w *Worker) autoRetry(j *job, o outcome) outcome {
	if o.err == nil || o.panicked || j.def == nil {
		return o
	}
	var rerr *RetryError
	if errors.As(o.err, &rerr) {
		return o
	}
	ar := j.def.opts.AutoRetry
	if !ar.transient(o.err) {
		var te *TransientError
		if errors.As(o.err, &te) && o.err == error(te) { //nolint:errorlint // unwrap only when it is the outermost error
			o.err = te.Err
		}
		return o
	}
	cause := o.err
	var te *TransientError
	if errors.As(o.err, &te) && o.err == error(te) { //nolint:errorlint // unwrap only when it is the outermost error
		cause = te.Err
	}
	retries := 0
	if j.msg != nil {
		retries = j.msg.Retries
	}
	o.err = &RetryError{Err: cause, Countdown: ar.Backoff(retries)}
	return o
}

// storePause is the pause before attempt n (n ≥ 1) of a result write:
// RetryPause/10 doubling per attempt, at most 5 s (100 ms, 200 ms, ... with
// the default RetryPause of 1 s).
func (w *Worker) storePause(n int) time.Duration {
	d := w.cfg.RetryPause / 10
	if d <= 0 {
		d = time.Millisecond
	}
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}
