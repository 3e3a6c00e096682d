package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5"
)

// TestRedisDBsDistinct keeps the table of Redis databases free of
// collisions: two packages sharing a database would see each other's
// messages when tested in parallel.
func TestRedisDBsDistinct(t *testing.T) {
	seen := map[int]string{}
	for name, db := range RedisDBs {
		if db < 1 || db > 15 {
			t.Errorf("%s = %d: not a database of a default Redis other than 0", name, db)
		}
		if other, dup := seen[db]; dup {
			t.Errorf("%s and %s both use database %d", name, other, db)
		}
		seen[db] = name
	}
	if len(RedisDBs) != 15 {
		t.Errorf("RedisDBs lists %d databases; add every new constant to it", len(RedisDBs))
	}
}

func TestRedisURL(t *testing.T) {
	if got := RedisURL(RedisDBHostile); got != "redis://127.0.0.1:6379/15" {
		t.Errorf("RedisURL = %q", got)
	}
}

func TestNeedRedis(t *testing.T) {
	if got := NeedRedis(t, RedisDBTransport); got != RedisURL(RedisDBTransport) {
		t.Errorf("NeedRedis = %q", got)
	}
}

func TestRedisDel(t *testing.T) {
	url := NeedRedis(t, RedisDBTransportOther)
	c, err := redis.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := []string{"omt-testenv-del-a-" + t.Name(), "omt-testenv-del-b-" + t.Name()}
	for _, k := range keys {
		if _, err := c.Do("SET", k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	RedisDel(RedisDBTransportOther, keys...)
	if n, err := redis.Int(c.Do("EXISTS", keys[0], keys[1])); n != 0 || err != nil {
		t.Errorf("EXISTS after RedisDel = %d, %v", n, err)
	}
}

func TestNeedPython(t *testing.T) {
	if got := NeedPython(t); got != PythonBin {
		t.Errorf("NeedPython = %q", got)
	}
}

// TestScratchDB checks that the scratch database exists during the test
// and is gone after its cleanup.
func TestScratchDB(t *testing.T) {
	var name string
	t.Run("create", func(t *testing.T) {
		u := ScratchDB(t, "omics_testenv")
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("scratch database: %v", err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "omics_testenv_") {
			t.Errorf("database %q lacks the prefix", name)
		}
	})
	if name == "" {
		return
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, NeedPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s left behind (%d, %v)", name, n, err)
	}
}

// recorder is a testing.TB whose Fatalf/Skipf record the message and stop
// the helper (runtime.Goexit would end the real test).
type recorder struct {
	testing.TB
	fatal, skip string
}

type stopped struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	panic(stopped{})
}

// run calls f with a recorder and returns it.
func run(t *testing.T, f func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil && v != (stopped{}) {
				panic(v)
			}
		}()
		f(r)
	}()
	return r
}

// TestMissingServiceFails: a missing service fails the test (not a skip)
// with the start command, except under -short.
func TestMissingServiceFails(t *testing.T) {
	for name, tc := range map[string]struct {
		need func(testing.TB)
		hint string
	}{
		"redis":  {func(tb testing.TB) { needRedisAt(tb, "127.0.0.1:1", 3) }, "hint: start it with: " + RedisStart},
		"python": {func(tb testing.TB) { NeedPythonModules(tb, "python3-nosuch", "omics_no_such_module") }, "install it with: apt-get install python3-nosuch"},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, tc.need)
			if testing.Short() {
				if r.skip == "" || r.fatal != "" {
					t.Errorf("under -short: skip %q, fatal %q", r.skip, r.fatal)
				}
				return
			}
			if r.skip != "" || !strings.Contains(r.fatal, tc.hint) || !strings.Contains(r.fatal, "-short") {
				t.Errorf("skip %q, fatal %q; want a failure with %q", r.skip, r.fatal, tc.hint)
			}
		})
	}
}
