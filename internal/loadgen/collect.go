package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/protocol"
)

// runPrefix returns the first three groups of a UUID4-shaped id plus the
// fourth; the counter fills the fifth group (12 hex digits).
func runPrefix() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-4" + h[12:15] + "-a" + h[15:18] + "-"
}

func taskID(prefix string, i int) string { return fmt.Sprintf("%s%012x", prefix, i) }

// finalState scans a result meta for its "status" and reports whether it
// is a ready state and whether it is a failure. No JSON decoding: the
// subscriber must stay cheap.
func finalState(meta []byte) (final, failed bool) {
	i := bytes.Index(meta, []byte(`"status"`))
	if i < 0 {
		return false, false
	}
	rest := bytes.TrimLeft(meta[i+len(`"status"`):], " \t\r\n:")
	if len(rest) == 0 || rest[0] != '"' {
		return false, false
	}
	rest = rest[1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return false, false
	}
	switch string(rest[:end]) {
	case "SUCCESS":
		return true, false
	case "FAILURE", "REVOKED", "REJECTED", "IGNORED":
		return true, true
	}
	return false, false
}

// collector receives result messages on the run's pattern subscription.
type collector struct {
	psc       redigo.PubSubConn
	keyPrefix int             // length of the result key prefix of the run
	recv      []time.Duration // arrival, since t0; 0 = not yet
	failed    []bool
	t0        time.Time
	mu        sync.Mutex
	done      int
	failures  int
	allDone   chan struct{}
	subErr    chan error
}

// subscribe PSUBSCRIBEs to the result channels of the run (keyPrefix*)
// and waits for the confirmation, so that no result is missed.
func subscribe(c redigo.Conn, keyPrefix string, n int) (*collector, error) {
	psc := redigo.PubSubConn{Conn: c}
	if err := psc.PSubscribe(keyPrefix + "*"); err != nil {
		return nil, fmt.Errorf("psubscribe: %w", err)
	}
	if _, ok := psc.Receive().(redigo.Subscription); !ok {
		return nil, errors.New("psubscribe: no confirmation")
	}
	return &collector{psc: psc, keyPrefix: len(keyPrefix), recv: make([]time.Duration, n),
		failed: make([]bool, n), allDone: make(chan struct{}), subErr: make(chan error, 1)}, nil
}

// start starts the clock and the receiving goroutine.
func (c *collector) start() {
	c.t0 = time.Now()
	go func() { c.subErr <- c.run() }()
}

func (c *collector) run() error {
	for {
		switch m := c.psc.Receive().(type) {
		case redigo.Message:
			c.record(m)
		case error:
			return m
		}
	}
}

// record notes the arrival of a final state.
func (c *collector) record(m redigo.Message) {
	final, failed := finalState(m.Data)
	if !final {
		return
	}
	now := time.Since(c.t0)
	idx, err := strconv.ParseUint(m.Channel[c.keyPrefix:], 16, 63)
	if err != nil || int(idx) >= len(c.recv) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recv[idx] != 0 {
		return
	}
	c.recv[idx] = max(now, 1)
	c.failed[idx] = failed
	c.done++
	if failed {
		c.failures++
	}
	if c.done == len(c.recv) {
		close(c.allDone)
	}
}

// wait returns when every result arrived, the timeout passed (nil), ctx
// is done or the subscription broke.
func (c *collector) wait(ctx context.Context, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.allDone:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	case err := <-c.subErr:
		return fmt.Errorf("subscription: %w", err)
	}
	return nil
}

// snapshot copies the arrivals and failure flags.
func (c *collector) snapshot() (recv []time.Duration, failed []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.recv...), append([]bool(nil), c.failed...)
}

// sweepMissed looks up with MGET the results that did not arrive on the
// channel and counts the final ones in r (Done, Failures, MissedPubsub).
func sweepMissed(ctx context.Context, backendURL string, names protocol.Names, prefix string, recv []time.Duration, r *Report) {
	var missing []int
	for i, d := range recv {
		if d == 0 {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return
	}
	rc, _, err := dial(ctx, backendURL)
	if err != nil {
		return
	}
	defer rc.Close()
	for s := 0; s < len(missing); s += 1000 {
		part := missing[s:min(s+1000, len(missing))]
		keys := make([]any, len(part))
		for k, i := range part {
			keys[k] = names.ResultKey(taskID(prefix, i))
		}
		vals, err := redigo.ByteSlices(rc.Do("MGET", keys...))
		if err != nil {
			return
		}
		for _, v := range vals {
			if final, f := finalState(v); final {
				r.MissedPubsub++
				r.Done++
				if f {
					r.Failures++
				}
			}
		}
	}
}
