package control

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/events"
)

// This file shapes the replies that describe the worker's settings in
// Celery's terms: `inspect stats`'s "broker" object, `inspect conf` and
// `inspect report` (Config.BrokerInfo, Config.Conf, Config.Report).

// BrokerAddress is the part of the broker URL that kombu's
// Connection.info() shows (never the password).
type BrokerAddress struct {
	// Network is "tcp" or "unix"; Address is host:port or a socket path.
	Network, Address string
	// Username is the ACL user ("" = none).
	Username string
	// DB is the database number (kombu's virtual_host).
	DB int
	// TLS is a rediss:// URL.
	TLS bool
}

// Settings are the worker settings the replies show.
type Settings struct {
	// BrokerURL and BackendURL are masked (mask.URL, celery's
	// maybe_sanitize_url) by NewSettings.
	BrokerURL, BackendURL string
	// Config is the worker's effective configuration.
	Config worker.Config
	// TaskEvents is -E.
	TaskEvents bool
	// Version is the omics-worker version.
	Version string
}

// NewSettings masks the URLs: `inspect conf` and `inspect report` show
// them.
func NewSettings(brokerURL, backendURL string, cfg worker.Config, taskEvents bool, version string) Settings {
	return Settings{BrokerURL: mask.URL(brokerURL), BackendURL: mask.URL(backendURL),
		Config: cfg, TaskEvents: taskEvents, Version: version}
}

// BrokerInfo is kombu's Connection.info() for the broker (no password).
func BrokerInfo(ep BrokerAddress, cfg worker.Config) map[string]any {
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

// ConfReply is `inspect conf`: the settings of this worker that differ
// from Celery's defaults, in Celery's names.
func ConfReply(s Settings) map[string]any {
	cfg := s.Config
	prefetch := max(cfg.PrefetchMultiplier, 0)
	c := map[string]any{
		"broker_url":                 s.BrokerURL,
		"result_backend":             s.BackendURL,
		"accept_content":             []any{"json"},
		"task_track_started":         !cfg.DisableTrackStarted,
		"task_acks_late":             !cfg.AcksEarly,
		"worker_prefetch_multiplier": prefetch,
		"worker_concurrency":         cfg.Concurrency,
		"task_default_queue":         cfg.Queues[0],
		"broker_transport_options":   map[string]any{"visibility_timeout": cfg.VisibilityTimeout.Seconds()},
		"worker_send_task_events":    s.TaskEvents,
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

// ReportText is `inspect report` (shape of celery's bugreport); conf is
// the ConfReply.
func ReportText(s Settings, conf map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "software -> omics-worker:%s go:%s\n", s.Version, runtime.Version())
	kernel := ""
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(k))
	}
	fmt.Fprintf(&b, "platform -> system:%s arch:%s\n            kernel version:%s imp:Go\n",
		events.PlatformSystem(), runtime.GOARCH, kernel)
	b.WriteString("loader   -> omics-worker (no Python app)\n")
	fmt.Fprintf(&b, "settings -> transport:redis results:%s\n\n", s.BackendURL)
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, protocol.PyRepr(conf[k]))
	}
	return b.String()
}
