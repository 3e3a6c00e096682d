package amqptransport

import (
	"crypto/tls"
	"log/slog"
	"time"
)

// Config configures a Broker. Zero values mean the defaults (Celery's).
type Config struct {
	// Prefetch is basic.qos prefetch_count: concurrency × multiplier.
	// 0 means unlimited (Celery's worker_prefetch_multiplier=0). It is
	// applied with global=true as Celery does on RabbitMQ ≥ 3.3 (kombu
	// qos_semantics_matches_spec is false there), and raised by one for
	// every ETA message held, as Celery's qos.increment_eventually.
	Prefetch int
	// MaxPriority is task_queue_max_priority: x-max-priority of the task
	// queues this worker declares; 0 = none (no argument at all).
	MaxPriority int
	// QueueType is Celery 5.5's task_default_queue_type: "classic" (the
	// default, no argument) or "quorum" (x-queue-type=quorum).
	QueueType string
	// PassiveDeclare makes task queue declarations passive (the queue must
	// exist, with whatever arguments). By default the worker declares them
	// as Celery does and falls back to a passive declaration when the
	// server answers PRECONDITION_FAILED (queue exists with other
	// arguments), logging the difference.
	PassiveDeclare bool
	// ETAParkAfter is the consumer-timeout guard (docs/amqp.md): a task
	// whose ETA is further away than this is not held unacked but parked
	// in a TTL queue "<queue>.eta-wait.<N>s" that dead-letters it back
	// after ETAParkAfter. Default 15 min (RabbitMQ's consumer_timeout is
	// 30 min); negative disables parking (Celery's behaviour).
	ETAParkAfter time.Duration
	// NodeName is the worker's node name (celery@host): connection name
	// and consumer tags.
	NodeName string
	// ControlQueueTTL and ControlQueueExpires are control_queue_ttl (300 s)
	// and control_queue_expires (10 s): x-message-ttl and x-expires of the
	// pidbox and reply queues.
	ControlQueueTTL, ControlQueueExpires time.Duration
	// Heartbeat is the AMQP heartbeat (broker_heartbeat, 120 s default in
	// Celery; amqp091's default is 10 s).
	Heartbeat time.Duration
	// ConnectTimeout bounds one dial (broker_connection_timeout, 4 s).
	ConnectTimeout time.Duration
	// TLSConfig is used for amqps:// (nil: system roots, server name from
	// the URL).
	TLSConfig *tls.Config
	// Logger receives reconnects and declaration fallbacks.
	Logger *slog.Logger
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c Config) parkAfter() time.Duration {
	if c.ETAParkAfter == 0 {
		return 15 * time.Minute
	}
	return c.ETAParkAfter
}

// positiveOr is d, or def when d is zero or negative.
func positiveOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (c Config) controlTTL() time.Duration { return positiveOr(c.ControlQueueTTL, 300*time.Second) }

func (c Config) controlExpires() time.Duration {
	return positiveOr(c.ControlQueueExpires, 10*time.Second)
}

func (c Config) heartbeat() time.Duration { return positiveOr(c.Heartbeat, 60*time.Second) }

func (c Config) connectTimeout() time.Duration { return positiveOr(c.ConnectTimeout, 4*time.Second) }

// backoff is the reconnect pause after n failures: 0.2 s doubling to 5 s.
func backoff(n int) time.Duration {
	d := 200 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}
