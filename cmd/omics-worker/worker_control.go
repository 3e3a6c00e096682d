// Remote control, events, mingle, statedb and the metrics endpoint of the
// worker subcommand (worker/control, worker/events, worker/metrics), wired
// over protocol/transport/redistransport. See docs/control.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/control"
	"github.com/omicsomics/omics-worker/worker/events"
	"github.com/omicsomics/omics-worker/worker/metrics"
)

// controlFlags are the worker flags of this file.
var controlFlags struct {
	metricsAddr       string
	statedb           string
	withoutMingle     bool
	withoutHeartbeat  bool
	withoutGossip     bool
	withoutControl    bool
	heartbeatInterval float64
}

func init() {
	addWorkerExtension(workerExtension{
		Name:  "control",
		Start: startControl,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&controlFlags.metricsAddr, "metrics-addr", "",
				"serve Prometheus /metrics, /healthz and /readyz on this address (e.g. :9808; env OMICS_WORKER_METRICS_ADDR)")
			fs.StringVar(&controlFlags.statedb, "statedb", "",
				"file keeping revoked task ids (and the logical clock) across restarts (like celery --statedb; env OMICS_WORKER_STATEDB)")
			fs.BoolVar(&controlFlags.withoutMingle, "without-mingle", false, "do not sync revoked ids and clock with other workers at start-up")
			fs.BoolVar(&controlFlags.withoutHeartbeat, "without-heartbeat", false, "send no worker heartbeats (worker events stay on with -E)")
			fs.BoolVar(&controlFlags.withoutGossip, "without-gossip", false, "accepted for compatibility (the Go worker does not listen to gossip)")
			fs.BoolVar(&controlFlags.withoutControl, "without-control", false, "do not answer remote-control commands (inspect/control/status)")
			fs.Float64Var(&controlFlags.heartbeatInterval, "heartbeat-interval", 2, "seconds between worker-heartbeat events (sent as freq)")
		},
	})
}

// controlRuntime is the running control/events/metrics side of a worker.
type controlRuntime struct {
	log        *slog.Logger
	w          *worker.Worker
	rv         *worker.RevokedSet
	statedb    string
	cancel     context.CancelFunc
	waitServer func()
	evDone     chan struct{}
	mingleDone chan struct{} // closed when the background mingle ended
	httpSrv    *http.Server
	pool       *redigo.Pool
	saveMu     sync.Mutex
}

// mailbox adapts *redistransport.Broker (+ a small redigo pool for plain list
// operations) to control.Mailbox, events.Publisher and metrics.Broker.
type mailbox struct {
	b     *redistransport.Broker
	pool  *redigo.Pool
	names protocol.Names
	errs  func(op string)
}

func (m *mailbox) fail(op string, err error) error {
	if err != nil && m.errs != nil {
		m.errs(op)
	}
	return err
}

func (m *mailbox) Subscribe(ctx context.Context, pattern string) (<-chan []byte, error) {
	in, err := m.b.Subscribe(ctx, pattern)
	if err != nil {
		return nil, m.fail("subscribe", err)
	}
	out := make(chan []byte, 64)
	go func() {
		defer close(out)
		for msg := range in {
			select {
			case out <- msg.Data:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (m *mailbox) PublishFanout(ctx context.Context, channel string, payload []byte) error {
	return m.fail("publish", m.b.PublishFanout(ctx, channel, payload))
}

func (m *mailbox) Reply(ctx context.Context, exchange, rk string, env []byte) error {
	return m.fail("reply", m.b.Reply(ctx, exchange, rk, env))
}

func (m *mailbox) AddBinding(ctx context.Context, exchange, member string) error {
	return m.fail("sadd", m.b.AddBinding(ctx, exchange, member))
}

func (m *mailbox) RemoveBinding(ctx context.Context, exchange, member string) error {
	return m.fail("srem", m.b.RemoveBinding(ctx, exchange, member))
}

func (m *mailbox) PopReply(ctx context.Context, queue string, timeout time.Duration) ([]byte, error) {
	rc, err := m.pool.GetContext(ctx)
	if err != nil {
		return nil, m.fail("brpop", err)
	}
	defer rc.Close()
	secs := max(int(timeout.Round(time.Second)/time.Second), 1)
	v, err := redigo.Values(redigo.DoWithTimeout(rc, timeout+5*time.Second, "BRPOP", m.names.QueueKey(queue, 0), secs))
	if errors.Is(err, redigo.ErrNil) {
		return nil, nil
	}
	if err != nil || len(v) != 2 {
		return nil, m.fail("brpop", fmt.Errorf("BRPOP %s: %w", queue, err))
	}
	b, _ := v[1].([]byte)
	return b, nil
}

func (m *mailbox) DeleteQueue(ctx context.Context, queue string) error {
	rc, err := m.pool.GetContext(ctx)
	if err != nil {
		return m.fail("del", err)
	}
	defer rc.Close()
	args := []any{}
	for _, k := range m.names.QueueKeys(queue) {
		args = append(args, k)
	}
	_, err = rc.Do("DEL", args...)
	return m.fail("del", err)
}

func (m *mailbox) QueueLengths(ctx context.Context, queue string) (map[int]int, error) {
	rc, err := m.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[int]int{}
	for _, p := range []int{0, 3, 6, 9} {
		n, err := redigo.Int(rc.Do("LLEN", m.names.QueueKey(queue, p)))
		if err != nil {
			return nil, err
		}
		out[m.names.PriorityStep(p)] += n
	}
	return out, nil
}

func (m *mailbox) UnackedCount(ctx context.Context) (int, error) { return m.b.UnackedCount(ctx) }
func (m *mailbox) Ping(ctx context.Context) error                { return m.b.Ping(ctx) }

// newListPool opens a small redigo pool on the broker's endpoint for the
// list operations protocol/transport/redistransport does not expose (BRPOP of a reply list,
// per-priority LLEN).
func newListPool(ep redistransport.Endpoint) (*redigo.Pool, error) {
	opts := []redigo.DialOption{redigo.DialDatabase(ep.DB), redigo.DialConnectTimeout(5 * time.Second)}
	if ep.Password != "" {
		opts = append(opts, redigo.DialPassword(ep.Password))
		if ep.Username != "" {
			opts = append(opts, redigo.DialUsername(ep.Username))
		}
	}
	if ep.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: ep.TLSSkipVerify} //nolint:gosec // ssl_cert_reqs=none
		if h, _, err := net.SplitHostPort(ep.Address); err == nil {
			tc.ServerName = h
		}
		if ep.TLSCAFile != "" {
			pem, err := os.ReadFile(ep.TLSCAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			tc.RootCAs.AppendCertsFromPEM(pem)
		}
		if ep.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(ep.TLSCertFile, ep.TLSKeyFile)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, redigo.DialUseTLS(true), redigo.DialTLSConfig(tc), redigo.DialTLSSkipVerify(ep.TLSSkipVerify))
	}
	return &redigo.Pool{
		MaxIdle: 2, IdleTimeout: time.Minute,
		DialContext: func(ctx context.Context) (redigo.Conn, error) {
			return redigo.DialContext(ctx, ep.Network, ep.Address, opts...)
		},
	}, nil
}

// brokerInfo is kombu's Connection.info() for the broker (no password).
func brokerInfo(ep redistransport.Endpoint, cfg worker.Config) map[string]any {
	host, port := ep.Address, 6379
	if ep.Network == "tcp" {
		if h, p, err := net.SplitHostPort(ep.Address); err == nil {
			host = h
			if n, err := strconv.Atoi(p); err == nil {
				port = n
			}
		}
	}
	var user any
	if ep.Username != "" {
		user = ep.Username
	}
	return map[string]any{
		"hostname": host, "userid": user, "virtual_host": fmt.Sprint(ep.DB), "port": port,
		"insist": false, "ssl": ep.TLS, "transport": "redis", "connect_timeout": 4.0,
		"transport_options": map[string]any{"visibility_timeout": cfg.VisibilityTimeout.Seconds()},
		"login_method":      nil, "uri_prefix": nil, "heartbeat": 120.0,
		"failover_strategy": "round-robin", "alternates": []any{},
	}
}

// confReply is `inspect conf`: the settings of this worker that differ
// from Celery's defaults, in Celery's names.
func confReply(ws workerSettings) map[string]any {
	cfg := ws.cfg
	prefetch := cfg.PrefetchMultiplier
	if prefetch < 0 {
		prefetch = 0
	}
	c := map[string]any{
		"broker_url":                 ws.brokerURL,
		"result_backend":             ws.backendURL,
		"accept_content":             []any{"json"},
		"task_track_started":         !cfg.DisableTrackStarted,
		"task_acks_late":             !cfg.AcksEarly,
		"worker_prefetch_multiplier": prefetch,
		"worker_concurrency":         cfg.Concurrency,
		"task_default_queue":         cfg.Queues[0],
		"broker_transport_options":   map[string]any{"visibility_timeout": cfg.VisibilityTimeout.Seconds()},
		"worker_send_task_events":    ws.taskEvents,
		"enable_utc":                 true,
		"timezone":                   "UTC",
	}
	if cfg.TimeLimit > 0 {
		c["task_time_limit"] = cfg.TimeLimit.Seconds()
	}
	if cfg.SoftTimeLimit > 0 {
		c["task_soft_time_limit"] = cfg.SoftTimeLimit.Seconds()
	}
	return c
}

// reportText is `inspect report` (shape of celery's bugreport).
func reportText(ws workerSettings, conf map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "software -> omics-worker:%s go:%s\n", version, runtime.Version())
	kernel := ""
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(k))
	}
	fmt.Fprintf(&b, "platform -> system:%s arch:%s\n            kernel version:%s imp:Go\n",
		events.PlatformSystem(), runtime.GOARCH, kernel)
	b.WriteString("loader   -> omics-worker (no Python app)\n")
	fmt.Fprintf(&b, "settings -> transport:redis results:%s\n\n", ws.backendURL)
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := conf[k]
		if s, ok := v.(string); ok {
			fmt.Fprintf(&b, "%s: %s\n", k, protocol.PyRepr(s))
		} else {
			fmt.Fprintf(&b, "%s: %s\n", k, protocol.PyRepr(v))
		}
	}
	return b.String()
}

// startControl loads the statedb, runs mingle, starts the pidbox server,
// the event dispatcher and the metrics server. It must run after
// worker.New and before w.Run; stopWorker starts a warm shutdown.
func startControl(ctx context.Context, w *worker.Worker, env extensionEnv) (func(), error) {
	rt, err := newControlRuntime(ctx, w, env)
	if err != nil {
		return nil, err
	}
	return rt.stop, nil
}

// workerSettings are the worker settings the control replies show.
type workerSettings struct {
	brokerURL, backendURL string
	cfg                   worker.Config
	taskEvents            bool
}

// newWorkerSettings keeps the URLs masked (mask.URL, celery's
// maybe_sanitize_url): `inspect conf` and `inspect report` show them.
func newWorkerSettings(broker redistransport.Endpoint, backendURL string, cfg worker.Config, taskEvents bool) workerSettings {
	return workerSettings{brokerURL: mask.URL(broker.String()), backendURL: mask.URL(backendURL),
		cfg: cfg, taskEvents: taskEvents}
}

func newControlRuntime(ctx context.Context, w *worker.Worker, env extensionEnv) (*controlRuntime, error) {
	broker := env.Broker
	logger := env.Logger
	backendURL := env.Getenv("CELERY_RESULT_BACKEND")
	if backendURL == "" {
		backendURL = defaultRedisURL
	}
	ws := newWorkerSettings(broker.Endpoint(), backendURL, env.Config, env.TaskEvents)
	// A remote shutdown is a warm shutdown, exactly like SIGTERM.
	stopWorker := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGTERM) }
	cf := controlFlags
	if cf.metricsAddr == "" {
		cf.metricsAddr = env.Getenv("OMICS_WORKER_METRICS_ADDR")
	}
	if cf.statedb == "" {
		cf.statedb = env.Getenv("OMICS_WORKER_STATEDB")
	}
	if cf.heartbeatInterval <= 0 {
		return nil, errors.New("--heartbeat-interval must be positive")
	}
	log := logger.With("component", "control")
	pool, err := newListPool(broker.Endpoint())
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt := &controlRuntime{log: log, w: w, rv: w.Revoked(), statedb: cf.statedb, cancel: cancel,
		pool: pool, evDone: make(chan struct{})}
	names := broker.Names()

	mb := &mailbox{b: broker, pool: pool, names: names}
	coll := metrics.New(metrics.Config{Version: version, Logger: log, Ready: func() bool {
		select {
		case <-w.Ready():
			return !w.Stopping()
		default:
			return false
		}
	}}, w, mb)
	mb.errs = coll.RedisError
	w.AddObserver(coll)

	if cf.statedb != "" {
		clock, err := rt.rv.LoadStateFile(cf.statedb)
		if err != nil {
			cancel()
			return nil, err
		}
		w.Clock().Adjust(clock)
		log.Info("statedb loaded", "path", cf.statedb, "revoked", rt.rv.Len(), "clock", clock)
	}

	ev := events.New(events.Config{Names: names, TaskEvents: ws.taskEvents,
		HeartbeatInterval: seconds(cf.heartbeatInterval), SWVer: version, Logger: log,
		OnPublishError: func(error) {}}, w, mb)
	w.AddObserver(ev)

	conf := confReply(ws)
	srv := control.NewServer(control.Config{
		Names: names, BrokerInfo: brokerInfo(broker.Endpoint(), ws.cfg), Conf: conf,
		Report: reportText(ws, conf), Shutdown: stopWorker, OnRevoke: rt.save, Logger: log,
	}, w, mb, ev)

	// Mingle runs concurrently with consuming (a deliberate difference
	// from Celery, which mingles for ~1 s before consuming): the worker
	// consumes within milliseconds of start, revoked ids from the replies
	// are merged as they arrive, and the revoked set is re-checked right
	// before each task runs, so only a task that starts within the first
	// second and was revoked solely on another worker can slip through.
	rt.mingleDone = make(chan struct{})
	if cf.withoutMingle {
		close(rt.mingleDone)
	} else {
		go func() {
			defer close(rt.mingleDone)
			if _, err := srv.Mingle(cctx); err != nil && cctx.Err() == nil {
				log.Warn("mingle failed; running without sync", "err", err)
			}
		}()
	}
	if !cf.withoutControl {
		wait, err := srv.Start(cctx)
		if err != nil {
			cancel()
			return nil, err
		}
		rt.waitServer = wait
	}
	if cf.withoutHeartbeat && !ws.taskEvents {
		close(rt.evDone)
	} else {
		go func() { defer close(rt.evDone); ev.Run(cctx) }()
	}
	if cf.metricsAddr != "" {
		ln, err := net.Listen("tcp", cf.metricsAddr)
		if err != nil {
			rt.stop()
			return nil, fmt.Errorf("--metrics-addr %s: %w", cf.metricsAddr, err)
		}
		rt.httpSrv = metrics.NewServer(coll.Handler(), metrics.ServerConfig{})
		log.Info("metrics endpoint listening", "addr", ln.Addr().String())
		go func() {
			if err := rt.httpSrv.Serve(metrics.LimitListener(ln, metrics.DefaultMaxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server failed", "err", err)
			}
		}()
	}
	return rt, nil
}

// save writes the statedb (after revokes, mingle and at shutdown).
func (rt *controlRuntime) save() {
	if rt.statedb == "" {
		return
	}
	rt.saveMu.Lock()
	defer rt.saveMu.Unlock()
	if err := rt.rv.SaveStateFile(rt.statedb, rt.w.Clock().Value()); err != nil {
		rt.log.Error("statedb save failed", "err", err)
	}
}

// stop sends worker-offline, stops the pidbox server and the metrics
// endpoint, and saves the statedb. Call it after w.Run returned.
func (rt *controlRuntime) stop() {
	rt.cancel()
	<-rt.evDone
	if rt.mingleDone != nil {
		<-rt.mingleDone
	}
	if rt.waitServer != nil {
		rt.waitServer()
	}
	if rt.httpSrv != nil {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = rt.httpSrv.Shutdown(c)
		cancel()
	}
	rt.save()
	_ = rt.pool.Close()
}
