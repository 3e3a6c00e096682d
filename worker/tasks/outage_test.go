package tasks

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/storage/s3"
)

// pgProxy forwards TCP connections to the real PostgreSQL; cut() breaks
// every connection and refuses new ones until restore(): a real database
// outage as the worker sees it, without touching the shared server.
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newPGProxy(t testing.TB, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *pgProxy) pipe(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[s] = struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
}

func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *pgProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// url is the scratch database's URL through the proxy.
func (p *pgProxy) url(dbURL string) string {
	_, rest, _ := strings.Cut(dbURL, "@")
	_, path, _ := strings.Cut(rest, "/")
	return "postgres://postgres@" + p.ln.Addr().String() + "/" + path
}

func TestDatabaseOutageAtLoadIsTransient(t *testing.T) {
	e := newEnv(t, "local")
	raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
	proxy := newPGProxy(t, "127.0.0.1:5432")
	files, err := postgres.OpenConfig(context.Background(), postgres.Config{URL: proxy.url(e.dbURL)})
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	proxy.cut()
	cfg := e.config()
	cfg.Files = files
	p, _ := New(cfg)
	_, err = p.Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
	if pe := transientPy(err); pe == nil || !strings.HasPrefix(pe.Args[0].(string), "database unavailable while loading file") {
		t.Fatalf("err = %v, want a transient database error", err)
	}
}

func TestObjectStorageOutageIsTransient(t *testing.T) {
	e := newEnv(t, "local")
	raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
	// An S3 server that went away: connection refused.
	ts := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	st, err := s3.New(context.Background(), s3.Config{Endpoint: ts.URL, AccessKey: "a", SecretKey: "b", Bucket: "omicsomics"})
	if err != nil {
		t.Fatal(err)
	}
	ts.Close()
	cfg := e.config()
	cfg.Objects = st
	p, _ := New(cfg)
	rows := e.rowCount(t)
	_, err = p.Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
	if pe := transientPy(err); pe == nil || pe.Type != "ConnectionError" ||
		!strings.HasPrefix(pe.Args[0].(string), "object storage unavailable while reading object") {
		t.Fatalf("err = %v, want a transient object storage error", err)
	}
	if e.rowCount(t) != rows || e.metadata(t, raw.ID)["processing_info"] != nil {
		t.Error("an outage must not be recorded as a processing failure")
	}
}
