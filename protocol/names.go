package protocol

import (
	"strconv"
	"strings"
)

// Well-known exchange names (spec §0.1, §4.1, §5.1).
const (
	// PidboxExchange is the fanout exchange of remote-control broadcasts.
	PidboxExchange = "celery.pidbox"
	// ReplyExchange is the direct exchange remote-control replies go to.
	ReplyExchange = "reply.celery.pidbox"
	// EventExchange is the event exchange (fanout on Redis).
	EventExchange = "celeryev"
	// DefaultSep is kombu's default separator between a queue name and its
	// priority step, and between the parts of a binding member.
	DefaultSep = "\x06\x16"
	// DefaultQueue is Celery's default task queue (and exchange, routing key).
	DefaultQueue = "celery"
	// BindingPrefix is the key prefix of kombu's binding sets.
	BindingPrefix = "_kombu.binding."
	// ResultKeyBase is the key prefix of task results.
	ResultKeyBase = "celery-task-meta-"
	// GroupResultKeyBase is the key prefix of saved group results.
	GroupResultKeyBase = "celery-taskset-meta-"
)

// DefaultPrioritySteps are kombu's default priority steps (spec §2.2).
var DefaultPrioritySteps = []int{0, 3, 6, 9}

// Names computes every Redis key, list and channel name kombu and Celery use
// (spec §0.1, §2.2, §2.4, §2.5, §2.9, §3.1, §3.9). Every method returns the
// exact Redis key or channel, GlobalKeyPrefix included; StripPrefix removes
// it from keys and channels received from Redis.
//
// The zero value means the kombu defaults for every field except
// FanoutPatterns (kombu's default is true, a Go bool defaults to false):
// build a Names with DefaultNames and override fields from there.
type Names struct {
	// Sep is transport option "sep"; "" means DefaultSep.
	Sep string
	// PrioritySteps is transport option "priority_steps"; nil means
	// DefaultPrioritySteps. Must be sorted ascending.
	PrioritySteps []int
	// GlobalKeyPrefix is transport option "global_keyprefix", prepended
	// verbatim to every broker key and channel (not to result keys).
	GlobalKeyPrefix string
	// DB is the broker's Redis database number (used by the fanout prefix).
	DB int
	// FanoutPrefix is transport option "fanout_prefix" when given as a
	// string; "" means the default "/<DB>." (unless NoFanoutPrefix).
	FanoutPrefix string
	// NoFanoutPrefix is fanout_prefix=False: channels carry no prefix.
	NoFanoutPrefix bool
	// FanoutPatterns is transport option "fanout_patterns" (kombu default
	// true): fanout channels get "/<routing key>" appended.
	FanoutPatterns bool
	// ResultKeyPrefix is result_backend_transport_options.global_keyprefix
	// (celery 5.3+). If it does not end with one of ":_-." an "_" is added.
	ResultKeyPrefix string
	// Unacked, UnackedIndex and UnackedMutex are the transport options
	// unacked_key, unacked_index_key and unacked_mutex_key; "" means
	// "unacked", "unacked_index", "unacked_mutex".
	Unacked, UnackedIndex, UnackedMutex string
}

// DefaultNames returns the kombu defaults for a broker on Redis database db.
func DefaultNames(db int) Names {
	return Names{DB: db, FanoutPatterns: true}
}

func (n Names) sep() string {
	if n.Sep == "" {
		return DefaultSep
	}
	return n.Sep
}

func (n Names) steps() []int {
	if len(n.PrioritySteps) == 0 {
		return DefaultPrioritySteps
	}
	return n.PrioritySteps
}

// PriorityStep maps a message priority to its priority step: the priority
// is clamped to 0..9 and the largest step <= it is returned (kombu
// Channel.priority). As in Python, a priority below every step yields the
// last step.
func (n Names) PriorityStep(p int) int {
	p = min(max(p, 0), 9)
	steps := n.steps()
	i := 0
	for i < len(steps) && steps[i] <= p {
		i++
	}
	if i == 0 {
		return steps[len(steps)-1] // Python steps[-1]
	}
	return steps[i-1]
}

func (n Names) queueStepKey(queue string, step int) string {
	if step == 0 {
		return n.GlobalKeyPrefix + queue
	}
	return n.GlobalKeyPrefix + queue + n.sep() + strconv.Itoa(step)
}

// QueueKey is the list a message of the given priority is pushed to.
func (n Names) QueueKey(queue string, priority int) string {
	return n.queueStepKey(queue, n.PriorityStep(priority))
}

// QueueKeys lists all sub-lists of queue in step order (highest priority,
// step 0, first): the keys LLEN/DEL'd by purge and summed for its length.
func (n Names) QueueKeys(queue string) []string {
	steps := n.steps()
	keys := make([]string, 0, len(steps))
	for _, s := range steps {
		keys = append(keys, n.queueStepKey(queue, s))
	}
	return keys
}

// ConsumeKeys returns the BRPOP key arguments for queues (spec §2.3): the
// outer loop is the priority step, the inner loop the queue.
func (n Names) ConsumeKeys(queues []string) []string {
	steps := n.steps()
	keys := make([]string, 0, len(steps)*len(queues))
	for _, s := range steps {
		for _, q := range queues {
			keys = append(keys, n.queueStepKey(q, s))
		}
	}
	return keys
}

// QueueFromKey returns the queue name of a list key returned by BRPOP: the
// global key prefix is stripped and so is any SEP<step> suffix (split at the
// last separator, as kombu does).
func (n Names) QueueFromKey(key string) string {
	key = n.StripPrefix(key)
	if i := strings.LastIndex(key, n.sep()); i >= 0 {
		return key[:i]
	}
	return key
}

// BindingKey is the Redis set holding the bindings of exchange.
func (n Names) BindingKey(exchange string) string {
	return n.GlobalKeyPrefix + BindingPrefix + exchange
}

// BindingMember is one member of a binding set:
// routing key SEP pattern SEP queue.
func (n Names) BindingMember(routingKey, pattern, queue string) string {
	s := n.sep()
	return routingKey + s + pattern + s + queue
}

// ParseBindingMember splits a binding member; ok is false unless it has
// exactly three parts (kombu fails on such members too).
func (n Names) ParseBindingMember(m string) (routingKey, pattern, queue string, ok bool) {
	parts := strings.Split(m, n.sep())
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// UnackedKey is the hash of delivered-but-unacknowledged messages.
func (n Names) UnackedKey() string { return n.GlobalKeyPrefix + def(n.Unacked, "unacked") }

// UnackedIndexKey is the sorted set of delivery times by delivery tag.
func (n Names) UnackedIndexKey() string {
	return n.GlobalKeyPrefix + def(n.UnackedIndex, "unacked_index")
}

// UnackedMutexKey is the lock guarding restore_visible.
func (n Names) UnackedMutexKey() string {
	return n.GlobalKeyPrefix + def(n.UnackedMutex, "unacked_mutex")
}

func def(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// fanoutPrefix is kombu's keyprefix_fanout.
func (n Names) fanoutPrefix() string {
	switch {
	case n.NoFanoutPrefix:
		return ""
	case n.FanoutPrefix != "":
		return n.FanoutPrefix
	default:
		return "/" + strconv.Itoa(n.DB) + "."
	}
}

// FanoutChannel is the channel a message for a fanout exchange is PUBLISHed
// on (spec §2.5).
func (n Names) FanoutChannel(exchange, routingKey string) string {
	ch := n.GlobalKeyPrefix + n.fanoutPrefix() + exchange
	if routingKey != "" && n.FanoutPatterns {
		ch += "/" + routingKey
	}
	return ch
}

// FanoutPattern is the PSUBSCRIBE pattern of a queue bound to a fanout
// exchange with routingKey: the publish channel with every "#" replaced by
// "*" (worker gossip "worker.#" -> "/0.celeryev/worker.*").
func (n Names) FanoutPattern(exchange, routingKey string) string {
	return n.FanoutChannel(exchange, strings.ReplaceAll(routingKey, "#", "*"))
}

// ParseFanoutChannel returns the exchange and routing key of a channel a
// pub/sub message arrived on (global key prefix and fanout prefix removed).
// kombu strips the "/<db>." prefix by cutting up to the first "." when the
// channel starts with "/"; the exchange is the part before the first "/".
func (n Names) ParseFanoutChannel(channel string) (exchange, routingKey string) {
	channel = n.StripPrefix(channel)
	if p := n.fanoutPrefix(); p != "" && strings.HasPrefix(channel, p) {
		channel = channel[len(p):]
	} else if strings.HasPrefix(channel, "/") {
		if i := strings.IndexByte(channel, '.'); i >= 0 {
			channel = channel[i+1:]
		}
	}
	exchange, routingKey, _ = strings.Cut(channel, "/")
	return exchange, routingKey
}

// PidboxChannel is the remote-control broadcast channel ("/0.celery.pidbox"),
// both for PUBLISH and PSUBSCRIBE.
func (n Names) PidboxChannel() string { return n.FanoutChannel(PidboxExchange, "") }

// PidboxQueue is the name of a worker's mailbox queue ("<node>.celery.pidbox").
func PidboxQueue(node string) string { return node + "." + PidboxExchange }

// ReplyQueue is the name of a control client's reply queue
// ("<oid>.reply.celery.pidbox").
func ReplyQueue(oid string) string { return oid + "." + ReplyExchange }

// EventChannel is the channel an event of the given type is published on
// (task-succeeded -> "/0.celeryev/task.succeeded").
func (n Names) EventChannel(eventType string) string {
	return n.FanoutChannel(EventExchange, EventRoutingKey(eventType))
}

// EventRoutingKey is the routing key of an event type: "-" replaced by ".".
func EventRoutingKey(eventType string) string {
	return strings.ReplaceAll(eventType, "-", ".")
}

func (n Names) resultPrefix() string {
	p := n.ResultKeyPrefix
	if p != "" && !strings.ContainsAny(p[len(p)-1:], ":_-.") {
		p += "_"
	}
	return p
}

// ResultKey is the result key, and PUBLISH channel, of a task id.
func (n Names) ResultKey(taskID string) string {
	return n.resultPrefix() + ResultKeyBase + taskID
}

// GroupResultKey is the key of a saved group result (chord helpers append
// ".j", ".t", ".s").
func (n Names) GroupResultKey(groupID string) string {
	return n.resultPrefix() + GroupResultKeyBase + groupID
}

// StripPrefix removes GlobalKeyPrefix from a key or channel received from
// Redis; keys without the prefix are returned unchanged.
func (n Names) StripPrefix(key string) string {
	return strings.TrimPrefix(key, n.GlobalKeyPrefix)
}
