package s3

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/omicsomics/omics-worker/storage/s3/s3test"
	"github.com/omicsomics/omics-worker/storage/storagetest"
)

// Tests that need an in-process server (one that can be closed or made
// to refuse); the S3 behaviour itself is tested against a real gateway in
// versity_test.go.

// newServer starts an in-process S3 server (gofakes3) on loopback.
func newServer(t *testing.T) (*httptest.Server, *s3mem.Backend) {
	t.Helper()
	return s3test.New(t)
}

func newStore(t *testing.T, ts *httptest.Server, bucket string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{Endpoint: ts.URL, AccessKey: "minioadmin", SecretKey: "minioadmin123", Bucket: bucket, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUnreachableIsTransient(t *testing.T) {
	ts, _ := newServer(t)
	url := ts.URL
	ts.Close()
	s, err := New(context.Background(), Config{Endpoint: url, Bucket: "xyz", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(context.Background(), "k", strings.NewReader("x"), 1, "")
	if err == nil || !IsTransient(err) {
		t.Errorf("Put to a closed server: transient=%v %v", IsTransient(err), err)
	}
}

func TestNewValidatesEndpoint(t *testing.T) {
	for _, ep := range []string{"", "minio:9000", "ftp://x", "http://x/path", "file:///tmp"} {
		if _, err := New(context.Background(), Config{Endpoint: ep}); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
	s, err := New(context.Background(), Config{Endpoint: "https://s3.example.org"})
	if err != nil || s.Bucket() != "omicsomics" {
		t.Fatalf("defaults: %v", err)
	}
}

// TestKeyRulesBeforeAnyRequest: the keys the local store refuses are
// refused by the S3 store too, before a request is sent (a gateway that
// normalises ".." would otherwise read outside the bucket).
func TestKeyRulesBeforeAnyRequest(t *testing.T) {
	var requests atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer ts.Close()
	s := newStore(t, ts, "omicsomics")
	storagetest.RejectsKeys(t, s, []string{"", "../otherbucket/secret.enc", "sandbox/../../../etc/passwd", "/etc/passwd",
		"a//b", "a/./b", "a/", "a\\b", "x\x00y", "x\ny", "x\xffy", strings.Repeat("k", 1025)})
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

// TestAbortRefusedIsForgotten: credentials that may not list multipart
// uploads make the clean-up after a failed Put a logged no-op, not a key
// retried before every later Put (fault injected in-process).
func TestAbortRefusedIsForgotten(t *testing.T) {
	fake := gofakes3.New(s3mem.New()).Server()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.URL.Query()["uploads"]; ok && r.Method == http.MethodGet {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>`))
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer ts.Close()
	s := newStore(t, ts, "omicsomics")
	if !s.abortIncomplete(context.Background(), "sandbox/1/2/x.enc") {
		t.Error("a refused listing is reported as unreachable")
	}
	if len(s.unfinished) != 0 {
		t.Errorf("remembered %v", s.unfinished)
	}
	// Unreachable: remembered, bounded.
	url := ts.URL
	ts.Close()
	down, err := New(context.Background(), Config{Endpoint: url, Bucket: "omicsomics", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if down.abortIncomplete(context.Background(), "k") || len(down.unfinished) != 1 {
		t.Fatalf("unreachable: remembered %v", down.unfinished)
	}
	for i := range maxUnfinished {
		down.unfinished[fmt.Sprintf("k%d", i)] = struct{}{}
	}
	down.abortIncomplete(context.Background(), "one more")
	if len(down.unfinished) != maxUnfinished+1 { // "k" plus the k<i>, not "one more"
		t.Errorf("remembered %d keys, want the bound", len(down.unfinished))
	}
}
