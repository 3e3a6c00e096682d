package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/worker"
)

// Issue 9 #9: 3 000 unregistered task names of 10 KB each made a 33 MB
// scrape, one permanent series per name. They now share one series.
func TestUnregisteredNamesShareOneSeries(t *testing.T) {
	c := New(Config{}, src{}, nil)
	for i := range 3000 {
		name := fmt.Sprintf("%d.%s", i, strings.Repeat("x", 10_000))
		// What the worker emits for NotRegistered: Name set, Task "".
		c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskFailed, Name: name})
		c.ObserveReject(worker.RejectUnregistered)
	}
	// A registered task with a long shadow name is labelled by its
	// registered name; an over-long registered name is cut.
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskSucceeded, Name: strings.Repeat("s", 5000), Task: "t.ok"})
	long := strings.Repeat("é", 1000)
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskSucceeded, Name: long, Task: long})
	out := scrape(t, c)
	// The worker's own families (the go_* and process_* collectors add a
	// fixed ~10 KB).
	own := 0
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.Contains(line, "omics_worker_") {
			own += len(line)
		}
	}
	t.Logf("scrape after 3000 unregistered names of 10 KB: %d bytes, %d of omics_worker_*", len(out), own)
	if own > 16<<10 || len(out) > 64<<10 {
		t.Fatalf("scrape of %d bytes (%d of omics_worker_*) after 3000 unregistered names", len(out), own)
	}
	series := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "omics_worker_tasks_failed_total{") {
			series++
		}
		if len(line) > 2*MaxLabelLength+200 {
			t.Errorf("line of %d bytes: %.80s...", len(line), line)
		}
	}
	if series != 1 {
		t.Errorf("%d failed_total series, want 1", series)
	}
	for _, want := range []string{
		`omics_worker_tasks_failed_total{task="unregistered"} 3000`,
		`omics_worker_tasks_rejected_total{reason="unregistered"} 3000`,
		`omics_worker_tasks_succeeded_total{task="t.ok"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
	if got := capLabel(long); len(got) > MaxLabelLength || !strings.HasSuffix(got, "é...") {
		t.Errorf("capLabel: %d bytes %q", len(got), got[len(got)-10:])
	}
}

// Issue 9 #9: tasks_rejected_total stayed empty through 30+ rejects. Every
// reason is exported from start (0), and counted.
func TestRejectedByReason(t *testing.T) {
	c := New(Config{}, src{}, nil)
	out := scrape(t, c)
	for _, r := range rejectReasons {
		if want := fmt.Sprintf("omics_worker_tasks_rejected_total{reason=%q} 0\n", r); !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	for range 31 {
		c.ObserveReject(worker.RejectInvalid)
	}
	c.ObserveReject(worker.RejectTooDeep)
	c.ObserveReject("some new reason")
	out = scrape(t, c)
	for _, want := range []string{
		`omics_worker_tasks_rejected_total{reason="invalid"} 31`,
		`omics_worker_tasks_rejected_total{reason="too_deep"} 1`,
		`omics_worker_tasks_rejected_total{reason="other"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func startServer(t *testing.T, cfg ServerConfig, maxConns int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(New(Config{}, src{}, nil).Handler(), cfg)
	go func() { _ = srv.Serve(LimitListener(ln, maxConns)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// get sends one keep-alive request on c and reads the response.
func get(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// waitClosed reads c until the server closes it (EOF); the deadline is a
// generous bound, not a timing assertion.
func waitClosed(t *testing.T, c net.Conn, r *bufio.Reader, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("%s: connection not closed by the server: %v", what, err)
	}
}

// Issue 9 #9: 200 idle keep-alive connections stayed open. The server
// closes idle connections, and connections that never send headers.
func TestServerClosesIdleConnections(t *testing.T) {
	addr := startServer(t, ServerConfig{IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond}, 0)
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	var served, silent []conn
	for i := range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cc := conn{c, bufio.NewReader(c)}
		if i%2 == 0 { // a served keep-alive connection, then left idle
			get(t, cc.c, cc.r)
			served = append(served, cc)
		} else { // a connection that never sends a request
			silent = append(silent, cc)
		}
	}
	for _, cc := range served {
		waitClosed(t, cc.c, cc.r, "idle keep-alive")
	}
	for _, cc := range silent {
		waitClosed(t, cc.c, cc.r, "silent")
	}
}

// The connection cap refuses connections beyond it at once, and frees a
// slot when a connection closes.
func TestLimitListener(t *testing.T) {
	addr := startServer(t, ServerConfig{}, 2)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		get(t, c, bufio.NewReader(c))
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	waitClosed(t, extra, bufio.NewReader(extra), "over the cap")
	held[0].Close()
	// The slot is released once the server notices the close; retry
	// until a new connection is served (generous deadline).
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, werr := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, rerr := http.ReadResponse(bufio.NewReader(c), nil)
		ok := werr == nil && rerr == nil && resp.StatusCode == 200
		if rerr == nil {
			resp.Body.Close()
		}
		c.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no slot freed after a connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	held[1].Close()
}

func TestServerDefaults(t *testing.T) {
	s := NewServer(http.NotFoundHandler(), ServerConfig{})
	if s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.ReadTimeout != DefaultReadTimeout ||
		s.WriteTimeout != DefaultWriteTimeout || s.IdleTimeout != DefaultIdleTimeout || s.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("defaults: %+v", s)
	}
}
