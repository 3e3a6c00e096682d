// Package testenv is the one place where tests find the services of this
// machine: the shared Redis, the shared PostgreSQL and the Debian Python
// with celery. Each Need* helper skips the test under -short and otherwise
// FAILS it (integration tests are part of `make test`, never silently
// skipped) with the same hint: the command that starts the service.
//
// Every package's integration tests use their own Redis databases, listed
// once below (RedisDB*); they never FLUSHDB and use unique queue and key
// names, so packages tested in parallel cannot see each other's messages.
//
// Only _test.go files import this package.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5"
)

// RedisAddr is the shared Redis of the tests.
const RedisAddr = "127.0.0.1:6379"

// The Redis databases of the shared server, one table for the whole tree.
// A package's tests use only their own numbers.
const (
	// RedisDBTransport is protocol/transport/redistransport's broker database.
	RedisDBTransport = 1
	// RedisDBTransportResults is its result-backend database.
	RedisDBTransportResults = 2
	// RedisDBTransportOther is its "another database" (cross-database
	// result writes, URL database selection).
	RedisDBTransportOther = 3
	// RedisDBScenario and RedisDBScenarioResults are cmd/omics-worker's
	// interop scenarios with the Python Celery (broker, results).
	RedisDBScenario        = 4
	RedisDBScenarioResults = 5
	// RedisDBCrash and RedisDBCrashResults are cmd/omics-worker's crash
	// tests and in-process worker benchmarks: their short visibility
	// timeouts must not touch other tests' messages.
	RedisDBCrash        = 6
	RedisDBCrashResults = 7
	// RedisDBE2E and RedisDBE2EResults are cmd/omics-worker's end-to-end
	// file-task tests.
	RedisDBE2E        = 8
	RedisDBE2EResults = 9
	// RedisDBControl and RedisDBControlResults are cmd/omics-worker's
	// remote-control tests (celery inspect/control against both workers).
	RedisDBControl        = 10
	RedisDBControlResults = 11
	// RedisDBControl55 is the celery 5.5 half of cmd/omics-worker's
	// control matrix (broker and results in one database, as Celery's
	// default configuration has them): it runs in parallel with the 5.2
	// half on RedisDBControl*. The canvas and 5.3+ control tests are
	// top-level tests of the same package (never run at the same time as
	// the control matrix) and reuse RedisDBControl*.
	RedisDBControl55 = 14
	// RedisDBDemo is scripts/demo.sh's database (DEMO_REDIS_DB); no test
	// writes it (the inspect-conf test only names it in a flag).
	RedisDBDemo = 12
	// RedisDBLoadgen is the load generator's and the benchmark harness's
	// (cmd/omics-worker loadgen and inspect-conf tests, scripts/bench.sh).
	RedisDBLoadgen = 13
	// RedisDBHostile is cmd/omics-worker's hostile-input, semantics and
	// lease tests (broker and results), and the Python capture scripts of
	// protocol's golden files (testdata/interop/capture).
	RedisDBHostile = 15
	// Databases 0 (the default of every client) and 14 are used by no test.
)

// RedisDBs lists the table above, for the test that keeps it free of
// collisions.
var RedisDBs = map[string]int{
	"RedisDBTransport": RedisDBTransport, "RedisDBTransportResults": RedisDBTransportResults,
	"RedisDBTransportOther": RedisDBTransportOther,
	"RedisDBScenario":       RedisDBScenario, "RedisDBScenarioResults": RedisDBScenarioResults,
	"RedisDBCrash": RedisDBCrash, "RedisDBCrashResults": RedisDBCrashResults,
	"RedisDBE2E": RedisDBE2E, "RedisDBE2EResults": RedisDBE2EResults,
	"RedisDBControl": RedisDBControl, "RedisDBControlResults": RedisDBControlResults,
	"RedisDBControl55": RedisDBControl55,
	"RedisDBDemo":      RedisDBDemo, "RedisDBLoadgen": RedisDBLoadgen, "RedisDBHostile": RedisDBHostile,
}

// The start commands of this machine's services, shown when one is missing.
const (
	RedisStart    = `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`
	PostgresStart = `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`
)

// PythonBin is Debian's interpreter, with python3-celery and the other
// python3-* packages the tests import (not a virtualenv's).
const PythonBin = "/usr/bin/python3"

// skipShort skips t under -short, naming what it needs.
func skipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test: needs %s; skipped with -short", what)
	}
}

// missing fails t with the one hint format of the tree.
func missing(t testing.TB, what string, err error, hint string) {
	t.Helper()
	t.Fatalf("%s: %v\nhint: %s\n(go test -short skips the integration tests)", what, err, hint)
}

// RedisURL is the URL of database db of the shared Redis.
func RedisURL(db int) string { return fmt.Sprintf("redis://%s/%d", RedisAddr, db) }

// NeedRedis skips t under -short and fails it when the shared Redis does
// not answer PING on database db; it returns the database's URL.
func NeedRedis(t testing.TB, db int) string {
	t.Helper()
	needRedisAt(t, RedisAddr, db)
	return RedisURL(db)
}

// needRedisAt is NeedRedis for the Redis at addr.
func needRedisAt(t testing.TB, addr string, db int) {
	t.Helper()
	skipShort(t, "Redis on "+addr)
	c, err := redis.Dial("tcp", addr, redis.DialDatabase(db),
		redis.DialConnectTimeout(2*time.Second), redis.DialReadTimeout(2*time.Second))
	if err == nil {
		_, err = c.Do("PING")
		c.Close()
	}
	if err != nil {
		missing(t, fmt.Sprintf("Redis is not reachable at %s (database %d)", addr, db), err, "start it with: "+RedisStart)
	}
}

// RedisDel deletes keys from database db of the shared Redis, best effort
// (for test cleanups: errors are ignored).
func RedisDel(db int, keys ...string) {
	if len(keys) == 0 {
		return
	}
	c, err := redis.Dial("tcp", RedisAddr, redis.DialDatabase(db), redis.DialConnectTimeout(2*time.Second),
		redis.DialReadTimeout(2*time.Second), redis.DialWriteTimeout(2*time.Second))
	if err != nil {
		return
	}
	defer c.Close()
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	_, _ = c.Do("DEL", args...)
}

// PostgresURL is the administrative PostgreSQL URL of the tests:
// OMICS_TEST_DATABASE_URL, or the local server with trust auth.
func PostgresURL() string {
	if u := os.Getenv("OMICS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// NeedPostgres skips t under -short and fails it when PostgreSQL does not
// accept a connection; it returns PostgresURL.
func NeedPostgres(t testing.TB) string {
	t.Helper()
	skipShort(t, "PostgreSQL")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresURL())
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		missing(t, "PostgreSQL is not reachable at "+redactURL(PostgresURL()), err,
			"start it with: "+PostgresStart+" (or set OMICS_TEST_DATABASE_URL)")
	}
	return PostgresURL()
}

// ScratchDB creates a database named prefix_<random hex> on the test
// PostgreSQL (see NeedPostgres) and returns its postgres:// URL; the
// database is dropped, with its connections, when the test ends.
func ScratchDB(t testing.TB, prefix string) string {
	t.Helper()
	admin := NeedPostgres(t)
	ctx := context.Background()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := execAdmin(context.Background(), admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("OMICS_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// execAdmin runs one statement on its own connection to admin.
func execAdmin(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// redactURL hides a password of u in messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable OMICS_TEST_DATABASE_URL)"
	}
	return p.Redacted()
}

// pythonChecks caches one import check per module list.
var pythonChecks sync.Map // "mod,mod" -> *pythonCheck

type pythonCheck struct {
	once sync.Once
	err  error
}

// NeedPython skips t under -short and fails it when PythonBin cannot
// import celery, kombu and redis; it returns PythonBin.
func NeedPython(t testing.TB) string {
	t.Helper()
	return NeedPythonModules(t, "python3-celery python3-redis", "celery", "kombu", "redis")
}

// NeedPythonModules skips t under -short and fails it when PythonBin
// cannot import modules, naming the Debian packages debs in the hint; it
// returns PythonBin. Each module list is checked once per test process.
func NeedPythonModules(t testing.TB, debs string, modules ...string) string {
	t.Helper()
	key := strings.Join(modules, ", ")
	skipShort(t, PythonBin+" with "+key)
	v, _ := pythonChecks.LoadOrStore(key, &pythonCheck{})
	c := v.(*pythonCheck)
	c.once.Do(func() {
		out, err := exec.Command(PythonBin, "-c", "import "+key).CombinedOutput()
		if err != nil {
			c.err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
	})
	if c.err != nil {
		missing(t, fmt.Sprintf("%s cannot import %s", PythonBin, key), c.err, "install it with: apt-get install "+debs)
	}
	return PythonBin
}

// ErrExited is returned by WaitPing when the server's process ended
// before it answered.
var ErrExited = errors.New("the server exited before it answered")

// WaitPing waits until the Redis-protocol server (redis-server or
// redis-sentinel) at addr answers PING (with password when not ""), for at
// most timeout; exited, when not nil, is closed when the server's process
// ends, which stops the wait with ErrExited.
func WaitPing(addr, password string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	opts := []redis.DialOption{redis.DialConnectTimeout(time.Second)}
	if password != "" {
		opts = append(opts, redis.DialPassword(password))
	}
	for {
		c, err := redis.Dial("tcp", addr, opts...)
		if err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer PING within %s: %w", addr, timeout, err)
		}
		select {
		case <-exited:
			return ErrExited
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RabbitMQAddr is the shared RabbitMQ of this machine (guest/guest).
const RabbitMQAddr = "127.0.0.1:5672"

// NeedRabbitMQ skips t under -short and fails it, with the command that
// starts the server, when RabbitMQ does not accept connections on
// RabbitMQAddr or rabbitmqctl (which the tests use to make their vhosts)
// is missing.
func NeedRabbitMQ(t testing.TB) {
	t.Helper()
	skipShort(t, "RabbitMQ on "+RabbitMQAddr)
	const hint = "start it with: rabbitmq-server -detached"
	c, err := net.DialTimeout("tcp", RabbitMQAddr, time.Second)
	if err != nil {
		missing(t, "RabbitMQ on "+RabbitMQAddr, err, hint)
	}
	c.Close()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		missing(t, "rabbitmqctl", err, "apt-get install rabbitmq-server, then "+hint)
	}
}
