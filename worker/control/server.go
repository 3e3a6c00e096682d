// Package control is the worker's remote-control ("pidbox") server: it
// receives the broadcast requests of `celery inspect`, `celery control`,
// `celery status`, Flower and Python workers (mingle), runs the command
// handlers against the worker runtime and replies the way a Python worker
// does (spec §4). It also sends the mingle `hello` at start-up (§4.7).
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

// Mailbox is the pub/sub and list I/O the server needs (implemented over
// protocol/transport/redistransport by *redistransport.Broker itself).
type Mailbox interface {
	// SubscribePayloads PSUBSCRIBEs pattern and delivers the raw payloads until
	// ctx is done (then the channel is closed); reconnects on its own.
	SubscribePayloads(ctx context.Context, pattern string) (<-chan []byte, error)
	// PublishFanout PUBLISHes payload on channel.
	PublishFanout(ctx context.Context, channel string, payload []byte) error
	// Reply routes envelope through the direct exchange to the queues
	// bound with routingKey (dropped when none).
	Reply(ctx context.Context, exchange, routingKey string, envelope []byte) error
	// AddBinding / RemoveBinding SADD / SREM a _kombu.binding member.
	AddBinding(ctx context.Context, exchange, member string) error
	RemoveBinding(ctx context.Context, exchange, member string) error
	// PopReply waits up to timeout for one message of the plain list
	// queue (BRPOP); nil on timeout.
	PopReply(ctx context.Context, queue string, timeout time.Duration) ([]byte, error)
	// DeleteQueue deletes a reply queue's lists.
	DeleteQueue(ctx context.Context, queue string) error
}

// Worker is what the handlers need from the runtime (*worker.Worker).
type Worker interface {
	Hostname() string
	Clock() *worker.Clock
	Revoked() *worker.RevokedSet
	Revoke(ids []string, terminate bool, signum int) []string
	RevokeStamps(stamps []worker.Stamp, terminate bool, signum int) []worker.Stamp
	Requests() (active, reserved, scheduled []worker.RequestInfo)
	Stats() worker.Stats
	Tasks() []worker.TaskInfo
	Queues() []string
	AddQueue(ctx context.Context, queue string) error
	CancelQueue(queue string) bool
	SetRateLimit(task string, value any) (bool, error)
	SetTimeLimits(task string, soft, hard time.Duration) error
	PoolGrow(n int) error
	PoolShrink(n int) error
}

// Events is the event dispatcher's control surface (worker/events).
type Events interface {
	// EnableTaskEvents adds the "task" group; false if already enabled.
	EnableTaskEvents() bool
	// DisableTaskEvents removes it; false if already disabled.
	DisableTaskEvents() bool
	// HeartbeatNow sends a worker-heartbeat with freq 5 and sw_* only.
	HeartbeatNow()
}

// Config configures a Server. Zero values mean the defaults.
type Config struct {
	// Names are the broker's key/channel names (db, prefixes).
	Names protocol.Names
	// BrokerInfo is the "broker" object of `inspect stats` (kombu
	// Connection.info(), without password).
	BrokerInfo map[string]any
	// Conf is the reply of `inspect conf` (non-default settings in
	// Celery's names, secrets already masked).
	Conf map[string]any
	// Report is the text of `inspect report`.
	Report string
	// Shutdown starts a warm shutdown (remote `shutdown`).
	Shutdown func()
	// OnRevoke runs after ids were added to the revoked set (statedb save).
	OnRevoke func()
	// MingleTimeout is how long the start-up hello waits for the next
	// reply. Default 1 s.
	MingleTimeout time.Duration
	// Logger; nil drops logs.
	Logger *slog.Logger
}

// Server answers remote-control requests for one worker node.
type Server struct {
	cfg    Config
	w      Worker
	mb     Mailbox
	ev     Events
	node   string
	log    *slog.Logger
	member string
}

// NewServer builds a server; ev may be nil (event commands then reply as
// if events were unavailable).
func NewServer(cfg Config, w Worker, mb Mailbox, ev Events) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MingleTimeout <= 0 {
		cfg.MingleTimeout = time.Second
	}
	node := w.Hostname()
	return &Server{cfg: cfg, w: w, mb: mb, ev: ev, node: node, log: cfg.Logger,
		member: cfg.Names.BindingMember("", "", protocol.PidboxQueue(node))}
}

// Start subscribes to the pidbox channel and registers the node's binding
// (like a Python worker's Control step); requests are then handled in
// order by a goroutine until ctx is done. The returned func waits for that
// goroutine and removes the binding.
func (s *Server) Start(ctx context.Context) (wait func(), err error) {
	msgs, err := s.mb.SubscribePayloads(ctx, s.cfg.Names.PidboxChannel())
	if err != nil {
		return nil, fmt.Errorf("control: subscribe %s: %w", s.cfg.Names.PidboxChannel(), err)
	}
	if err := s.mb.AddBinding(ctx, protocol.PidboxExchange, s.member); err != nil {
		s.log.Warn("control: adding the pidbox binding failed", "err", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for raw := range msgs {
			s.HandleRaw(ctx, raw)
		}
	}()
	return func() {
		<-done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.mb.RemoveBinding(rctx, protocol.PidboxExchange, s.member); err != nil {
			s.log.Warn("control: removing the pidbox binding failed", "err", err)
		}
	}, nil
}

// HandleRaw handles one payload received on the pidbox channel: decode,
// address check, clock, handler, reply. Undecodable payloads are logged
// and dropped (kombu does the same).
func (s *Server) HandleRaw(ctx context.Context, raw []byte) {
	env, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		s.log.Warn("control: undecodable pidbox message dropped", "err", err, "size", len(raw))
		return
	}
	req, err := protocol.DecodeControlRequest(env)
	if err != nil {
		s.log.Warn("control: invalid pidbox request dropped", "err", err)
		return
	}
	if !req.AddressedTo(s.node) {
		return
	}
	clock := s.w.Clock()
	clock.Adjust(req.Clock)
	value, reply := s.Handle(ctx, req)
	if !reply || !req.WantsReply() {
		return
	}
	envb, err := protocol.EncodeControlReply(s.node, req.Ticket, *req.ReplyTo, value, clock.Forward())
	if err != nil {
		s.log.Error("control: encoding reply failed", "method", req.Method, "err", err)
		envb, _ = protocol.EncodeControlReply(s.node, req.Ticket, *req.ReplyTo,
			map[string]any{"error": fmt.Sprintf("EncodeError(%s)", protocol.PyRepr(err.Error()))}, clock.Forward())
	}
	if err := s.mb.Reply(ctx, req.ReplyTo.Exchange, req.ReplyTo.RoutingKey, envb); err != nil {
		s.log.Warn("control: reply failed", "method", req.Method, "err", err)
	}
}

// Handle runs the handler of req.Method and returns its reply value;
// reply is false for commands that never answer (shutdown). Handler
// failures become {"error": "<Python repr of the exception>"}, as kombu's
// Node.dispatch does; a panic is recovered the same way.
func (s *Server) Handle(ctx context.Context, req *protocol.ControlRequest) (value any, reply bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("control: handler panicked", "method", req.Method, "panic", r)
			value, reply = nok(fmt.Sprintf("Exception(%s)", protocol.PyRepr(fmt.Sprint(r)))), true
		}
	}()
	h, ok := handlers[req.Method]
	if !ok {
		s.log.Error("control: unknown command", "method", req.Method)
		return nok(fmt.Sprintf("KeyError(%s)", protocol.PyRepr(req.Method))), true
	}
	args := req.Arguments
	if args == nil {
		args = map[string]any{}
	}
	if err := h.check(req.Method, args); err != nil {
		return nok(err.Error()), true
	}
	s.log.Debug("control: command", "method", req.Method, "arguments", args)
	v, err := h.fn(ctx, s, args)
	if errors.Is(err, errNoReply) {
		return nil, false
	}
	if err != nil {
		var pe *pyExc
		if errors.As(err, &pe) {
			return nok(pe.repr()), true
		}
		return nok(fmt.Sprintf("Exception(%s)", protocol.PyRepr(err.Error()))), true
	}
	return v, true
}

func ok(v any) map[string]any  { return map[string]any{"ok": v} }
func nok(v any) map[string]any { return map[string]any{"error": v} }

// errNoReply: the handler must not be answered (shutdown).
var errNoReply = errors.New("control: no reply")

// pyExc is a Python exception raised by a handler.
type pyExc struct{ typ, msg string }

func (e *pyExc) Error() string { return e.typ + ": " + e.msg }
func (e *pyExc) repr() string  { return e.typ + "(" + protocol.PyRepr(e.msg) + ")" }
