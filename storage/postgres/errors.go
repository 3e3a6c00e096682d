package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotProcessed is returned by FindProcessed when the raw row links no
// existing processed row. The errors of the file-row contract are the
// storage package's (storage.ErrNotFound, storage.ErrAlreadyProcessed,
// storage.ErrObjectSettled).
var ErrNotProcessed = errors.New("raw file not processed")

// transientSQLStates are server error codes worth retrying with backoff.
var transientSQLStates = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"55P03": true, // lock_not_available
	"57P01": true, // admin_shutdown
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now (starting up / recovering)
	"53300": true, // too_many_connections
	"53400": true, // configuration_limit_exceeded
	"58000": true, // system_error
	"58030": true, // io_error
}

// IsTransient reports whether err is a database error that may succeed on
// retry: connection failures (refused, reset, closed), server shutdown or
// start-up, serialization failures and deadlocks, too many connections.
// Constraint violations, bad SQL, storage.ErrNotFound and context cancellation are
// not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLStates[pgErr.Code] || (len(pgErr.Code) == 5 && pgErr.Code[:2] == "08")
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
