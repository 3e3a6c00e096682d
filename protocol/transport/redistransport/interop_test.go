package redistransport

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyruntime"
)

// forEachKombu runs f once per Celery version of the test matrix
// (internal/pyruntime): subtests "celery5.2" (Debian bookworm's kombu 5.2.4,
// redis-py 4) and "celery5.5" (trixie's kombu 5.5.3, redis-py 6.1.0), one
// after the other.
func forEachKombu(t *testing.T, f func(t *testing.T, py pyruntime.Runtime)) {
	t.Helper()
	if testing.Short() {
		t.Skip("kombu interop test skipped under -short")
	}
	pyruntime.Run(t, false, f)
}

// kombuPeer runs testdata/interop/redis/kombu_peer.py with the real kombu
// of the runtime py and decodes its JSON output.
func kombuPeer(t *testing.T, py pyruntime.Runtime, out any, args ...string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "testdata", "interop", "redis", "kombu_peer.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := py.CommandContext(ctxT(t), append([]string{script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("kombu peer (%s) %v: %v\n%s", py.Name(), args, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("kombu peer output %q: %v", stdout, err)
	}
}

// TestKombuRestoresOurUnacked: messages recorded by our Fetch are restored
// by the real kombu restore_visible, proving our unacked record format is
// the one kombu reads.
func TestKombuRestoresOurUnacked(t *testing.T) { forEachKombu(t, testKombuRestoresOurUnacked) }

func testKombuRestoresOurUnacked(t *testing.T, py pyruntime.Runtime) {
	b, c, pfx := newTestBroker(t, otherDB, Config{})
	q := "q-" + uniq(t)
	m0 := envelope(envOpts{tag: "p0", rk: q})
	m6 := envelope(envOpts{tag: "p6", rk: q, priority: 6})
	for i, m := range [][]byte{m0, m6} {
		if err := b.Publish(ctxT(t), q, []int{0, 6}[i], m); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.FetchMany(ctxT(t), []string{q}, 2, -1)
	if err != nil || len(ds) != 2 {
		t.Fatalf("FetchMany = %d, %v", len(ds), err)
	}
	var res map[string]any
	kombuPeer(t, py, &res, "restore_visible", testURL(otherDB), pfx)
	if n, _ := redis.Int(c.Do("HLEN", pfx+"unacked")); n != 0 {
		t.Fatalf("kombu left %d unacked records", n)
	}
	if n, _ := redis.Int(c.Do("ZCARD", pfx+"unacked_index")); n != 0 {
		t.Fatalf("kombu left %d index entries", n)
	}
	found := map[string]string{}
	for _, k := range []string{q, q + sep + "6"} {
		vals, _ := redis.ByteSlices(c.Do("LRANGE", pfx+k, 0, -1))
		for _, v := range vals {
			tag := tagOf(t, v)
			found[tag] = k
			if h, di := redelivered(t, v); !h || !di {
				t.Errorf("kombu-restored %s lacks redelivered flags", tag)
			}
			orig := m0
			if tag == "p6" {
				orig = m6
			}
			if !sameExceptRedelivered(t, v, orig) {
				t.Errorf("kombu-restored %s differs:\n%s\n%s", tag, v, orig)
			}
		}
	}
	if found["p0"] != q {
		t.Errorf("p0 restored to %q", found["p0"])
	}
	// kombu < 5.4 restores to the base list (the priority is lost);
	// kombu >= 5.4 to the message's priority sub-list, as we do.
	want := q
	if py.AtLeast("5.4") {
		want = q + sep + "6"
	}
	if found["p6"] != want {
		t.Errorf("%s: p6 restored to %q, want %q (lists: %v)", py.Name(), found["p6"], want, found)
	}
	// And we consume what kombu restored.
	d, err := b.Fetch(ctxT(t), []string{q}, -1)
	if err != nil || d == nil || d.Envelope == nil || !d.Envelope.Properties.DeliveryInfo.Redelivered {
		t.Fatalf("Fetch after kombu restore = %+v, %v", d, err)
	}
}

// TestKombuConsumesOurRequeue: a message we requeued is consumed by the real
// kombu (BRPOP path) with its redelivered flags, and kombu's ack leaves no
// record behind.
func TestKombuConsumesOurRequeue(t *testing.T) { forEachKombu(t, testKombuConsumesOurRequeue) }

func testKombuConsumesOurRequeue(t *testing.T, py pyruntime.Runtime) {
	b, c, pfx := newTestBroker(t, otherDB, Config{})
	q := "q-" + uniq(t)
	if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: "rq", rk: q, body: `{"x": 41}`})); err != nil {
		t.Fatal(err)
	}
	d, err := b.Fetch(ctxT(t), []string{q}, -1)
	if err != nil || d == nil {
		t.Fatal(d, err)
	}
	if err := b.Requeue(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Payload      map[string]any `json:"payload"`
		Headers      map[string]any `json:"headers"`
		DeliveryInfo map[string]any `json:"delivery_info"`
		DeliveryTag  string         `json:"delivery_tag"`
	}
	kombuPeer(t, py, &got, "consume", testURL(otherDB), pfx, q)
	if got.Payload["x"] != float64(41) || got.DeliveryTag != "rq" {
		t.Errorf("kombu got %+v", got)
	}
	if got.Headers["redelivered"] != true || got.DeliveryInfo["redelivered"] != true {
		t.Errorf("kombu saw no redelivered flags: %+v", got)
	}
	if n, _ := redis.Int(c.Do("HLEN", pfx+"unacked")); n != 0 {
		t.Errorf("%d unacked records after kombu's ack", n)
	}
}

// TestWeConsumeKombuPublish: a message published by kombu (priority 5 →
// sub-list 3) is fetched and recorded by us.
func TestWeConsumeKombuPublish(t *testing.T) { forEachKombu(t, testWeConsumeKombuPublish) }

func testWeConsumeKombuPublish(t *testing.T, py pyruntime.Runtime) {
	b, c, pfx := newTestBroker(t, otherDB, Config{})
	q := "q-" + uniq(t)
	var res map[string]any
	kombuPeer(t, py, &res, "publish", testURL(otherDB), pfx, q, "5")
	if n, _ := redis.Int(c.Do("LLEN", pfx+q+sep+"3")); n != 1 {
		t.Fatalf("kombu did not publish to the step-3 list (LLEN=%d)", n)
	}
	d, err := b.Fetch(ctxT(t), []string{q}, -1)
	if err != nil || d == nil || d.Envelope == nil {
		t.Fatalf("Fetch = %+v, %v", d, err)
	}
	if d.Tag == "" || d.Tag != d.Envelope.Properties.DeliveryTag {
		t.Errorf("tag %q vs envelope %q", d.Tag, d.Envelope.Properties.DeliveryTag)
	}
	_, ex, rk, ok := unackedRecord(t, c, pfx, d.Tag)
	if !ok || rk != q {
		t.Errorf("record = %v %q %q", ok, ex, rk)
	}
	body, err := d.Envelope.DecodeBody()
	if err != nil || string(body) != `{"x": 1}` {
		t.Errorf("body %q, %v", body, err)
	}
	if err := b.Ack(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
}
