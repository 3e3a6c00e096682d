// Remote control, events, mingle, statedb and the metrics endpoint of the
// worker subcommand (worker/control, worker/events, worker/metrics), wired
// over protocol/transport/redistransport. See docs/control.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/control"
	"github.com/omicsomics/omics-worker/worker/events"
	"github.com/omicsomics/omics-worker/worker/metrics"
)

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
	saveMu     sync.Mutex
}

// startControl loads the statedb, runs mingle, starts the pidbox server,
// the event dispatcher and the metrics server over the broker (which is
// the control.Mailbox, events.Publisher and metrics.Broker itself). It
// must run after worker.New and before w.Run; ctx is cancelled once the
// worker has stopped, then the runtime's stop runs.
func startControl(ctx context.Context, w *worker.Worker, broker workerBroker, bmeta brokerMeta,
	logger *slog.Logger, o *workerOptions) (*controlRuntime, error) {
	cf := o.control
	ws := control.NewSettings(bmeta.url, o.backendURL, w.Config(), o.taskEvents, version)
	// A remote shutdown is a warm shutdown, exactly like SIGTERM.
	stopWorker := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGTERM) }
	if cf.heartbeatInterval <= 0 {
		return nil, errors.New("--heartbeat-interval must be positive")
	}
	log := logger.With("component", "control")
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt := &controlRuntime{log: log, w: w, rv: w.Revoked(), statedb: cf.statedb, cancel: cancel,
		evDone: make(chan struct{})}
	applyRevokedLimits(rt.rv, cf)
	names := broker.Names()

	coll := metrics.New(metrics.Config{Version: version, Logger: log, Ready: func() bool {
		select {
		case <-w.Ready():
			return !w.Stopping()
		default:
			return false
		}
	}}, w, broker)
	broker.OnMailboxError(coll.RedisError)
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

	ev := events.New(events.Config{Names: names, TaskEvents: ws.TaskEvents,
		HeartbeatInterval: seconds(cf.heartbeatInterval), SWVer: version, Logger: log,
		OnPublishError: func(error) {}}, w, broker)
	w.AddObserver(ev)

	conf := control.ConfReply(ws)
	srv := control.NewServer(control.Config{
		Names: names, BrokerInfo: bmeta.info(ws.Config), Conf: conf,
		Report: control.ReportText(ws, conf), Shutdown: stopWorker, OnRevoke: rt.save, Logger: log,
	}, w, broker, ev)

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
	if cf.withoutHeartbeat && !ws.TaskEvents {
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
}

// brokerAddress is what `inspect stats` shows of the broker endpoint.
func brokerAddress(ep redistransport.Endpoint) control.BrokerAddress {
	return control.BrokerAddress{Network: ep.Network, Address: ep.Address, Username: ep.Username, DB: ep.DB, TLS: ep.TLS}
}
