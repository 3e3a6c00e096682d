package redistransport

import (
	"crypto/tls"
	"log/slog"
	"runtime"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// Config holds the kombu transport options and connection settings. The
// zero value means kombu's defaults everywhere; every participant sharing a
// Redis database must use the same values (spec §2.1).
type Config struct {
	// VisibilityTimeout is transport option visibility_timeout
	// (0 = 3600 s): RestoreVisible restores unacked messages older than it
	// when called with a zero timeout.
	VisibilityTimeout time.Duration
	// PrioritySteps is transport option priority_steps (nil = [0 3 6 9]).
	PrioritySteps []int
	// Sep is transport option sep ("" = "\x06\x16").
	Sep string
	// GlobalKeyPrefix is transport option global_keyprefix, prepended to
	// every broker key and channel (not to result keys).
	GlobalKeyPrefix string
	// FanoutPrefix is transport option fanout_prefix given as a string
	// ("" = "/<db>."); NoFanoutPrefix is fanout_prefix=False.
	FanoutPrefix   string
	NoFanoutPrefix bool
	// NoFanoutPatterns is fanout_patterns=False (kombu default is True).
	NoFanoutPatterns bool
	// UnackedKey, UnackedIndexKey, UnackedMutexKey are the transport
	// options unacked_key, unacked_index_key, unacked_mutex_key ("" =
	// kombu's names).
	UnackedKey, UnackedIndexKey, UnackedMutexKey string
	// UnackedMutexExpire is unacked_mutex_expire (0 = 300 s). The Go
	// worker's own holds are shorter (see mutexLease): a SIGKILLed Go
	// worker blocks restores for at most mutexLease, not 5 minutes.
	UnackedMutexExpire time.Duration
	// RestoreLimit is unacked_restore_limit (0 = no limit).
	RestoreLimit int
	// PollTimeout is the BRPOP timeout Fetch uses when called with a zero
	// timeout (0 = 1 s, kombu's brpop_timeout).
	PollTimeout time.Duration

	// ResultExpires is result_expires (0 = 86400 s, negative = never:
	// SET without EX).
	ResultExpires time.Duration
	// ResultKeyPrefix is result_backend_transport_options.global_keyprefix
	// (celery 5.3+; an "_" is appended unless it ends with one of ":_-.").
	ResultKeyPrefix string

	// MasterName is transport option master_name: the group the
	// sentinels of a sentinel:// URL are asked for (required there).
	MasterName string
	// SentinelUsername and SentinelPassword are transport option
	// sentinel_kwargs {username, password}: the credentials of the
	// sentinels themselves (the URL's password is the master's).
	SentinelUsername, SentinelPassword string

	// MaxIdle and MaxActive size the command pool (0 = 16 idle, no limit).
	MaxIdle, MaxActive int
	// DialTimeout (0 = 5 s), ReadTimeout and WriteTimeout (0 = 30 s) apply
	// to every connection; blocking commands extend the read deadline. A
	// negative ReadTimeout means none for connections made by Dial.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// ReplySpin is how long the group-commit writer (the result writes of
	// a backend attached to a same-server broker, see writer) polls its
	// socket for a reply before the reading goroutine parks (0 = 100 µs
	// when the machine has two or more CPUs, none with one: there a poll
	// would take the CPU from a Redis on the same machine; negative =
	// never polls; see spin.go).
	ReplySpin time.Duration
	// TLSConfig is the base TLS configuration for rediss:// URLs.
	TLSConfig *tls.Config
	// ClientName is sent with CLIENT SETNAME ("" = none).
	ClientName string
	// Logger receives warnings (reconnects, unroutable restores); nil
	// discards them.
	Logger *slog.Logger
}

func (c Config) visibilityTimeout() time.Duration {
	return durDefault(c.VisibilityTimeout, time.Hour)
}

func (c Config) mutexExpire() time.Duration {
	return durDefault(c.UnackedMutexExpire, 300*time.Second)
}

// maxMutexLease bounds how long one acquisition of the unacked_mutex by
// this process lives without a refresh.
const maxMutexLease = 15 * time.Second

// mutexLease is the PX of this process's unacked_mutex holds: kombu's
// unacked_mutex_expire, at most maxMutexLease. RestoreVisible refreshes
// it while it works, so a long restore keeps the lock and a killed
// holder frees it within the lease. Each restore is atomic on its own
// (restoreScript), so the mutex only keeps kombu peers from scanning at
// the same time.
func (c Config) mutexLease() time.Duration {
	return min(c.mutexExpire(), maxMutexLease)
}

func (c Config) pollTimeout() time.Duration { return durDefault(c.PollTimeout, time.Second) }

func (c Config) dialTimeout() time.Duration { return durDefault(c.DialTimeout, 5*time.Second) }

func (c Config) replySpin() time.Duration {
	switch {
	case c.ReplySpin < 0:
		return 0
	case c.ReplySpin == 0:
		if runtime.NumCPU() < 2 {
			return 0
		}
		return replySpin
	}
	return c.ReplySpin
}

func (c Config) readTimeout() time.Duration { return durDefault(c.ReadTimeout, 30*time.Second) }

func (c Config) writeTimeout() time.Duration { return durDefault(c.WriteTimeout, 30*time.Second) }

// resultExpiresSeconds is the SETEX argument, 0 meaning plain SET.
func (c Config) resultExpiresSeconds() int64 {
	switch {
	case c.ResultExpires < 0:
		return 0
	case c.ResultExpires == 0:
		return 86400
	default:
		s := int64(c.ResultExpires / time.Second)
		if s < 1 {
			s = 1
		}
		return s
	}
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Names returns the key/channel naming for a broker on database db.
func (c Config) Names(db int) protocol.Names {
	n := protocol.DefaultNames(db)
	n.Sep = c.Sep
	n.PrioritySteps = c.PrioritySteps
	n.GlobalKeyPrefix = c.GlobalKeyPrefix
	n.FanoutPrefix = c.FanoutPrefix
	n.NoFanoutPrefix = c.NoFanoutPrefix
	n.FanoutPatterns = !c.NoFanoutPatterns
	n.ResultKeyPrefix = c.ResultKeyPrefix
	n.Unacked = c.UnackedKey
	n.UnackedIndex = c.UnackedIndexKey
	n.UnackedMutex = c.UnackedMutexKey
	return n
}

func durDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
