package metrics

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// ServerConfig bounds what one client of the metrics endpoint can hold;
// zero values mean the defaults.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 5 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request. Default 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 30 s (a scrape's
	// Redis probes are bounded by Config.ProbeTimeout, 2 s).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long. Default
	// 60 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's header size. Default 16 KiB.
	MaxHeaderBytes int
}

// Server defaults.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
)

// NewServer returns the HTTP server of the metrics endpoint: h (usually
// Collector.Handler) behind read, write and idle timeouts and a header
// size cap, so that slow or idle clients cannot pile up connections.
func NewServer(h http.Handler, cfg ServerConfig) *http.Server {
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	maxHeader := cfg.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeaderBytes
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: pick(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       pick(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      pick(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       pick(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    maxHeader,
	}
}

// DefaultMaxConns is the connection cap LimitListener is given by the
// worker: far above what scrapers and probes use.
const DefaultMaxConns = 64

// LimitListener wraps ln so that at most n connections are open at once:
// a connection accepted beyond that is closed at once (not queued), so a
// client holding many connections cannot starve the others for longer
// than the server's timeouts.
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		n = DefaultMaxConns
	}
	return &limitListener{Listener: ln, sem: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
			_ = c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
