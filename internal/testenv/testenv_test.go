package testenv

import (
	"context"
	"strings"
	"testing"

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
	if len(RedisDBs) != 14 {
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
