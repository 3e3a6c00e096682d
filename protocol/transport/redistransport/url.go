package redistransport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/internal/mask"
)

// Endpoint is a parsed Redis URL: where to connect and how to authenticate.
type Endpoint struct {
	// Network is "tcp" or "unix".
	Network string
	// Address is host:port for tcp, the socket path for unix.
	Address string
	// DB is the database number (path "/N" or query "db=N"; default 0).
	DB int
	// Username and Password are sent with AUTH when Password is set.
	Username, Password string
	// TLS is set for rediss:// URLs.
	TLS bool
	// TLSSkipVerify is ssl_cert_reqs=none (CERT_NONE).
	TLSSkipVerify bool
	// TLSCAFile, TLSCertFile, TLSKeyFile are ssl_ca_certs, ssl_certfile,
	// ssl_keyfile.
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// Sentinels lists the host:port of every sentinel of a sentinel://
	// URL; Address is then empty (the master is asked of them).
	Sentinels []string
	// MasterName is the master_name transport option (sentinel:// only;
	// NewBroker and NewResultBackend copy it from Config.MasterName).
	MasterName string
}

// URLError is a malformed Redis URL. The password is never included.
type URLError struct {
	// URL is the URL with its password masked.
	URL string
	// Part names the offending component (scheme, host, port, db, query ...).
	Part string
	// Err is the underlying problem.
	Err error
}

func (e *URLError) Error() string {
	return fmt.Sprintf("redis: bad URL %q: %s: %v", e.URL, e.Part, e.Err)
}

func (e *URLError) Unwrap() error { return e.Err }

// ErrBadURL is wrapped by every URLError.
var ErrBadURL = errors.New("malformed Redis URL")

// ParseURL parses the URL forms Celery/kombu accept for Redis:
//
//	redis://[[user]:pass@]host[:port][/db][?password=..&db=..]
//	rediss://...            (TLS; query ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile)
//	unix:///path/to/redis.sock[?db=N&password=..]
//	socket:///path, redis+socket:///path   (kombu spellings of unix://)
//
//	sentinel://[:pass@]host[:port][/db][;sentinel://host2[:port];...]
//	                        (Redis Sentinel: the master named by the master_name
//	                        transport option; password and db of the first URL)
//
// Unknown query parameters are ignored (redis-py ignores most of them too).
func ParseURL(raw string) (Endpoint, error) {
	if isSentinelURL(raw) {
		return parseSentinelURL(raw)
	}
	return parseOneURL(raw)
}

func parseOneURL(raw string) (Endpoint, error) {
	fail := func(part string, err error) (Endpoint, error) {
		return Endpoint{}, &URLError{URL: mask.URL(raw), Part: part, Err: fmt.Errorf("%w: %w", ErrBadURL, err)}
	}
	u, err := mask.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("syntax", err)
	}
	var ep Endpoint
	q := u.Query()
	switch strings.ToLower(u.Scheme) {
	case "redis":
	case "rediss":
		ep.TLS = true
	case "unix", "socket", "redis+socket":
		ep.Network = "unix"
	case "sentinel":
	case "":
		return fail("scheme", errors.New("missing scheme (want redis://, rediss://, unix:// or sentinel://)"))
	default:
		return fail("scheme", fmt.Errorf("unsupported scheme %q", u.Scheme))
	}
	if u.User != nil {
		ep.Username = u.User.Username()
		ep.Password, _ = u.User.Password()
	}
	if p := q.Get("password"); p != "" {
		ep.Password = p
	}
	if uname := q.Get("username"); uname != "" {
		ep.Username = uname
	}
	if ep.Network == "unix" {
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if u.Host != "" { // unix://host/path is not a socket path
			path = "/" + u.Host + path
		}
		if path == "" {
			return fail("path", errors.New("missing socket path"))
		}
		ep.Address = path
	} else {
		ep.Network = "tcp"
		host := u.Hostname()
		if host == "" {
			host = "127.0.0.1"
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fail("port", fmt.Errorf("invalid port %q", port))
		}
		ep.Address = net.JoinHostPort(host, port)
		if p := strings.Trim(u.Path, "/"); p != "" {
			db, err := strconv.Atoi(p)
			if err != nil || db < 0 {
				return fail("db", fmt.Errorf("database must be a non-negative integer, not %q", p))
			}
			ep.DB = db
		}
	}
	if s := q.Get("db"); s != "" {
		db, err := strconv.Atoi(s)
		if err != nil || db < 0 {
			return fail("db", fmt.Errorf("database must be a non-negative integer, not %q", s))
		}
		ep.DB = db
	}
	if ep.TLS {
		switch strings.ToLower(q.Get("ssl_cert_reqs")) {
		case "", "required", "cert_required", "optional", "cert_optional":
		case "none", "cert_none":
			ep.TLSSkipVerify = true
		default:
			return fail("query", fmt.Errorf("ssl_cert_reqs %q (want required, optional or none)", q.Get("ssl_cert_reqs")))
		}
		ep.TLSCAFile = q.Get("ssl_ca_certs")
		ep.TLSCertFile = q.Get("ssl_certfile")
		ep.TLSKeyFile = q.Get("ssl_keyfile")
	}
	return ep, nil
}

// String returns the endpoint as a URL with the password masked.
func (ep Endpoint) String() string {
	auth := ""
	if ep.Password != "" {
		auth = ep.Username + ":" + mask.Secret + "@"
	}
	if len(ep.Sentinels) > 0 {
		parts := make([]string, len(ep.Sentinels))
		for i, a := range ep.Sentinels {
			parts[i] = fmt.Sprintf("sentinel://%s/%d", a, ep.DB)
		}
		parts[0] = fmt.Sprintf("sentinel://%s%s/%d", auth, ep.Sentinels[0], ep.DB)
		return strings.Join(parts, ";")
	}
	if ep.Network == "unix" {
		return fmt.Sprintf("unix://%s%s?db=%d", auth, ep.Address, ep.DB)
	}
	scheme := "redis"
	if ep.TLS {
		scheme = "rediss"
	}
	return fmt.Sprintf("%s://%s%s/%d", scheme, auth, ep.Address, ep.DB)
}

// sameServer reports whether two endpoints reach the same server with the
// same credentials (so one script may touch keys of both).
func (ep Endpoint) sameServer(o Endpoint) bool {
	if len(ep.Sentinels) > 0 || len(o.Sentinels) > 0 {
		return ep.MasterName == o.MasterName && slices.Equal(ep.Sentinels, o.Sentinels) &&
			ep.Username == o.Username && ep.Password == o.Password
	}
	return ep.Network == o.Network && ep.Address == o.Address &&
		ep.Username == o.Username && ep.Password == o.Password && ep.TLS == o.TLS
}

// tlsConfig builds the TLS configuration of a rediss:// endpoint; base
// (Config.TLSConfig) is cloned when given.
func (ep Endpoint) tlsConfig(base *tls.Config) (*tls.Config, error) {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if ep.TLSSkipVerify {
		c.InsecureSkipVerify = true //nolint:gosec // ssl_cert_reqs=none asked for it
	}
	if ep.TLSCAFile != "" {
		pem, err := os.ReadFile(ep.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis: ssl_ca_certs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis: ssl_ca_certs %s: no PEM certificates", ep.TLSCAFile)
		}
		c.RootCAs = pool
	}
	if ep.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(ep.TLSCertFile, ep.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis: ssl_certfile/ssl_keyfile: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if c.ServerName == "" && ep.Network == "tcp" {
		if h, _, err := net.SplitHostPort(ep.Address); err == nil {
			c.ServerName = h
		}
	}
	return c, nil
}

// isSentinelURL reports a sentinel:// URL (or a ;-separated list of them).
func isSentinelURL(raw string) bool {
	return len(raw) >= 11 && strings.EqualFold(raw[:11], "sentinel://")
}

// parseSentinelURL parses kombu's and celery's list form
// "sentinel://[:pass@]host:port[/db];sentinel://host2:port;..." into one
// endpoint: the sentinels in order, the master's password (and username)
// and db from the first URL, as kombu (Connection.alt) and celery
// (SentinelBackend._params_from_url) take them.
func parseSentinelURL(raw string) (Endpoint, error) {
	var ep Endpoint
	for i, part := range strings.Split(raw, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !isSentinelURL(part) {
			return Endpoint{}, &URLError{URL: mask.URL(part), Part: "scheme",
				Err: fmt.Errorf("%w: every URL of a sentinel list must be sentinel://", ErrBadURL)}
		}
		// The default port of a sentinel is 26379, not 6379.
		one, err := parseOneURL(withDefaultPort(part, defaultSentinelPort))
		if err != nil {
			return Endpoint{}, err
		}
		if i == 0 || len(ep.Sentinels) == 0 {
			ep = one
			ep.Address = ""
		}
		ep.Sentinels = append(ep.Sentinels, one.Address)
	}
	if len(ep.Sentinels) == 0 {
		return Endpoint{}, &URLError{URL: mask.URL(raw), Part: "host", Err: fmt.Errorf("%w: no sentinel", ErrBadURL)}
	}
	return ep, nil
}

// withDefaultPort adds port to the host of a URL that has none.
func withDefaultPort(raw, port string) string {
	u, err := mask.Parse(raw)
	if err != nil || u.Port() != "" {
		return raw
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	u.Host = net.JoinHostPort(host, port)
	return u.String()
}
