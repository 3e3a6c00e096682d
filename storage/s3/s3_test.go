package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"

	"github.com/omicsomics/omics-worker/storage/s3/s3test"
)

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

func TestRoundTrip(t *testing.T) {
	ts, backend := newServer(t)
	s := newStore(t, ts, "omicsomics")
	ctx := context.Background()
	key := "sandbox/1/2/0123456789abcdef0123456789abcdef.enc"

	if ok, err := backend.BucketExists("omicsomics"); err != nil || ok {
		t.Fatalf("bucket exists before the first Put: %v %v", ok, err)
	}
	if err := s.Put(ctx, key, strings.NewReader("blob"), 4, "application/json"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := backend.BucketExists("omicsomics"); !ok {
		t.Fatal("bucket not created by Put")
	}
	rc, size, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "blob" || size != 4 {
		t.Fatalf("Get = %q, %d", b, size)
	}
	st, err := s.client.StatObject(ctx, "omicsomics", key, minio.StatObjectOptions{})
	if err != nil || st.ContentType != "application/json" {
		t.Errorf("content type %q (%v)", st.ContentType, err)
	}
	if ok, err := s.Exists(ctx, key); !ok || err != nil {
		t.Errorf("Exists: %v %v", ok, err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if ok, err := s.Exists(ctx, key); ok || err != nil {
		t.Errorf("Exists after Delete: %v %v", ok, err)
	}
	if _, _, err := s.Get(ctx, key); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
}

func TestExistingBucketAndMissingBucket(t *testing.T) {
	ts, backend := newServer(t)
	if err := backend.CreateBucket("pre"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := newStore(t, ts, "pre")
	if err := s.Put(ctx, "k", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatalf("Put into existing bucket: %v", err)
	}
	// Get from a bucket that does not exist is "not found", not an outage.
	other := newStore(t, ts, "absent")
	if _, _, err := other.Get(ctx, "k"); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("Get from missing bucket: %v", err)
	}
	if IsTransient(ErrObjectNotFound) {
		t.Error("not-found is transient")
	}
}

func TestLargeStreamingPut(t *testing.T) {
	ts, _ := newServer(t)
	s := newStore(t, ts, "big")
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16+3) // > 2 parts of 5 MiB
	// Unknown size: multipart upload in PartSize parts.
	if err := s.Put(ctx, "multi", iotest.HalfReader(bytes.NewReader(data)), -1, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	rc, size, err := s.Get(ctx, "multi")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("multipart object differs: %d bytes", size)
	}
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
	ctx := context.Background()
	for _, key := range []string{"", "../otherbucket/secret.enc", "sandbox/../../../etc/passwd", "/etc/passwd",
		"a//b", "a/./b", "a/", "a\\b", "x\x00y", "x\ny", "x\xffy", strings.Repeat("k", 1025)} {
		if err := s.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q): %v", key, err)
		}
		if _, _, err := s.Get(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%q): %v", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%q): %v", key, err)
		}
		if _, err := s.Exists(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Exists(%q): %v", key, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}
