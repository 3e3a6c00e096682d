package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/omicsomics/omics-worker/internal/mask"
)

// ErrUnsupportedURL is returned by ParseDatabaseURL for non-PostgreSQL URLs.
var ErrUnsupportedURL = errors.New("unsupported DATABASE_URL")

// driverOnlyParams are query parameters that SQLAlchemy or asyncpg accept
// but libpq/pgx do not know; pgx would send unknown ones to the server as
// run-time settings, which the server rejects, so they are dropped.
var driverOnlyParams = map[string]bool{
	"prepared_statement_cache_size": true,
	"prepared_statement_name_func":  true,
	"async_fallback":                true,
	"command_timeout":               true,
	"server_settings":               true,
	"statement_cache_size":          true,
	"max_cached_statement_lifetime": true,
	"max_cacheable_statement_size":  true,
	"direct_tls":                    true,
}

// ParseDatabaseURL turns a DATABASE_URL in any of the forms the Python
// stack uses into a URL pgx understands:
//
//	postgresql://u:p@host:5432/db          (libpq)
//	postgres://u:p@host/db
//	postgresql+asyncpg://u:p@host/db       (SQLAlchemy async, the compose default)
//	postgresql+psycopg://..., postgresql+psycopg2://..., postgresql+pg8000://...
//
// The "+driver" suffix is removed; asyncpg's ?ssl= becomes sslmode= (true
// and require -> require, false and disable -> disable, other libpq modes
// kept), asyncpg's ?timeout= becomes connect_timeout=, and driver-only
// parameters (prepared_statement_cache_size, ...) are dropped.
func ParseDatabaseURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrUnsupportedURL)
	}
	u, err := mask.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsupportedURL, err)
	}
	scheme, driver, _ := strings.Cut(strings.ToLower(u.Scheme), "+")
	if scheme != "postgresql" && scheme != "postgres" {
		return "", fmt.Errorf("%w: scheme %q (want postgresql:// or postgresql+driver://)", ErrUnsupportedURL, u.Scheme)
	}
	u.Scheme = "postgres"
	q := u.Query()
	for k := range q {
		if driverOnlyParams[k] {
			q.Del(k)
		}
	}
	if v, ok := q["ssl"]; ok {
		q.Del("ssl")
		if q.Get("sslmode") == "" && len(v) > 0 {
			mode, err := sslMode(v[0])
			if err != nil {
				return "", err
			}
			q.Set("sslmode", mode)
		}
	}
	if v := q.Get("timeout"); v != "" && driver == "asyncpg" {
		q.Del("timeout")
		if q.Get("connect_timeout") == "" {
			q.Set("connect_timeout", v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func sslMode(v string) (string, error) {
	switch strings.ToLower(v) {
	case "true", "1", "require", "on", "yes":
		return "require", nil
	case "false", "0", "disable", "off", "no":
		return "disable", nil
	case "allow", "prefer", "verify-ca", "verify-full":
		return strings.ToLower(v), nil
	}
	return "", fmt.Errorf("%w: unknown ssl=%q", ErrUnsupportedURL, v)
}
