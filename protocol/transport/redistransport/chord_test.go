package redistransport

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/protocol"
)

func newChordBackend(t *testing.T) (*ResultBackend, redis.Conn, string) {
	t.Helper()
	testenv.NeedRedis(t, resultsDB)
	prefix := "omt-" + uniq(t) + ":"
	r, err := NewResultBackend(testURL(resultsDB), Config{ResultKeyPrefix: prefix, ResultExpires: 600 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, rawConn(t, resultsDB, prefix), prefix
}

// TestChordJoinConcurrent: n parts recorded concurrently (as n workers
// would) complete the chord exactly once, with the results in header
// order, on celery's keys with their expiry, and the keys are gone after.
func TestChordJoinConcurrent(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			r, c, prefix := newChordBackend(t)
			r.SetChordOrdered(ordered)
			ctx := ctxT(t)
			gid := pyfmt.NewUUID4().String()
			base := prefix + "celery-taskset-meta-" + gid
			const n = 50
			if err := r.SetChordSize(ctx, gid, n); err != nil {
				t.Fatal(err)
			}
			if ttl, _ := redis.Int(c.Do("TTL", base+".s")); ttl <= 0 || ttl > 600 {
				t.Fatalf(".s ttl %d", ttl)
			}
			var mu sync.Mutex
			var complete []protocol.ChordJoin
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					idx := i
					j, err := r.ChordPartReturn(ctx, gid, fmt.Sprintf("part-%02d", i), &idx, protocol.StateSuccess, json.Number(fmt.Sprint(i*i)))
					if err != nil {
						t.Error(err)
						return
					}
					if i == 0 && !j.Complete {
						// -2: another part completed the chord meanwhile
						// and removed the keys; -1 would be a key
						// without expiry.
						if ttl, _ := redis.Int(c.Do("TTL", base+".j")); ttl == -1 || ttl == 0 || ttl > 600 {
							t.Errorf(".j ttl %d", ttl)
						}
					}
					if j.Complete {
						mu.Lock()
						complete = append(complete, j)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(complete) != 1 {
				t.Fatalf("%d completions, want 1", len(complete))
			}
			results, cerr := protocol.ChordResults(complete[0].Parts)
			if cerr != nil {
				t.Fatal(cerr)
			}
			if len(results) != n {
				t.Fatalf("%d results", len(results))
			}
			if ordered {
				for i, v := range results {
					if v != json.Number(fmt.Sprint(i*i)) {
						t.Fatalf("result %d = %v (not in header order)", i, v)
					}
				}
			}
			if ex, _ := redis.Int(c.Do("EXISTS", base+".j", base+".t", base+".s")); ex != 0 {
				t.Fatalf("%d chord keys left", ex)
			}
		})
	}
}

// TestChordJoinFollowsKeyType: a .j list written by a Python worker with
// result_chord_ordered=False is appended to, not overwritten, and .t
// (add_to_chord) grows the expected total.
func TestChordJoinFollowsKeyType(t *testing.T) {
	r, c, prefix := newChordBackend(t)
	ctx := ctxT(t)
	gid := pyfmt.NewUUID4().String()
	base := prefix + "celery-taskset-meta-" + gid
	if _, err := c.Do("RPUSH", base+".j", `[1, "py-part", "SUCCESS", 1]`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do("SET", base+".s", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do("INCR", base+".t"); err != nil {
		t.Fatal(err)
	}
	j, err := r.ChordPartReturn(ctx, gid, "go-part", nil, protocol.StateSuccess, json.Number("2"))
	if err != nil || j.Complete || j.Ready != 2 || j.Total != 3 {
		t.Fatalf("%+v %v", j, err)
	}
	j, err = r.ChordPartReturn(ctx, gid, "go-part-2", nil, protocol.StateFailure, protocol.NewExceptionInfo("ValueError", "builtins", "x"))
	if err != nil || !j.Complete || len(j.Parts) != 3 {
		t.Fatalf("%+v %v", j, err)
	}
	ids := []string{j.Parts[0].TaskID, j.Parts[1].TaskID, j.Parts[2].TaskID}
	if !reflect.DeepEqual(ids, []string{"py-part", "go-part", "go-part-2"}) {
		t.Fatalf("order %v", ids)
	}
	if _, cerr := protocol.ChordResults(j.Parts); cerr == nil || cerr.Message[0] != "Dependency go-part-2 raised ValueError('x')" {
		t.Fatalf("%+v", cerr)
	}
}

// TestChordJoinWithoutSize: parts recorded before the client set the size
// never complete the chord (celery: no .s, no callback).
func TestChordJoinWithoutSize(t *testing.T) {
	r, _, _ := newChordBackend(t)
	j, err := r.ChordPartReturn(ctxT(t), pyfmt.NewUUID4().String(), "p", nil, protocol.StateSuccess, json.Number("1"))
	if err != nil || j.Complete || j.Total != -1 {
		t.Fatalf("%+v %v", j, err)
	}
}
