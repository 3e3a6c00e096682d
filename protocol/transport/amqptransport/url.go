package amqptransport

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrScheme is returned for a URL that is not amqp://, pyamqp:// or amqps://.
var ErrScheme = errors.New("amqp: unsupported URL scheme")

// Endpoint is a parsed broker URL.
type Endpoint struct {
	URI amqp.URI
	// Scheme is the scheme as given (amqp, pyamqp, amqps).
	Scheme string
}

// IsAMQPURL reports whether url has one of the schemes this package serves.
func IsAMQPURL(u string) bool {
	s, _, ok := strings.Cut(u, "://")
	if !ok {
		return false
	}
	switch strings.ToLower(s) {
	case "amqp", "pyamqp", "amqps":
		return true
	}
	return false
}

// ParseURL parses a kombu AMQP URL: amqp://user:pass@host:port/vhost,
// pyamqp:// (the same) and amqps:// (TLS). As in kombu, an empty or "/"
// path is the default vhost "/", "//" is "/" too, and the rest of the path
// is the vhost, percent-decoded; user and password default to guest.
func ParseURL(raw string) (Endpoint, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !IsAMQPURL(raw) {
		return Endpoint{}, fmt.Errorf("%w: %q", ErrScheme, scheme)
	}
	scheme = strings.ToLower(scheme)
	norm := "amqp://" + rest
	if scheme == "amqps" {
		norm = "amqps://" + rest
	}
	u, err := url.Parse(norm)
	if err != nil {
		return Endpoint{}, fmt.Errorf("amqp: bad URL: %w", err)
	}
	uri, err := amqp.ParseURI(norm)
	if err != nil {
		return Endpoint{}, fmt.Errorf("amqp: bad URL: %w", err)
	}
	switch p := u.Path; p {
	case "", "/", "//":
		uri.Vhost = "/"
	default:
		uri.Vhost = p[1:]
	}
	if u.User == nil {
		uri.Username, uri.Password = "guest", "guest"
	}
	return Endpoint{URI: uri, Scheme: scheme}, nil
}

// String is the URL without the password (for logs and inspect stats).
func (e Endpoint) String() string {
	u := e.URI
	u.Password = ""
	s := u.String()
	if e.Scheme == "pyamqp" {
		s = "pyamqp" + strings.TrimPrefix(s, "amqp")
	}
	return s
}
