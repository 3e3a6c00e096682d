package s3

// Integration tests against a real S3 server: VersityGW (posix back-end),
// started per test by s3test.Versity. They fail with an install hint when
// the binary is missing, and are skipped under -short. gofakes3 remains
// only in s3_test.go, for what needs an in-process server.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/s3/s3test"
	"github.com/omicsomics/omics-worker/storage/storagetest"
)

func versityStore(t *testing.T, g *s3test.Gateway, bucket string, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Bucket: bucket}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pattern is a stream of size bytes whose every 8-byte word is its own
// word index (little-endian): generated on the fly, never held in memory,
// and any lost, repeated or reordered part shows.
type pattern struct {
	off, size int64
	// every, when set, is called after each full MiB produced.
	every func(off int64)
}

func patternByte(o int64) byte { return byte(uint64(o/8) >> (8 * uint(o%8))) }

// fillPattern writes the pattern bytes of offsets off.. into b, a word at
// a time where aligned (fast enough under -race for 1 GiB).
func fillPattern(b []byte, off int64) {
	i := 0
	for ; i < len(b) && (off+int64(i))%8 != 0; i++ {
		b[i] = patternByte(off + int64(i))
	}
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], uint64((off+int64(i))/8))
	}
	for ; i < len(b); i++ {
		b[i] = patternByte(off + int64(i))
	}
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if int64(len(b)) > p.size-p.off {
		b = b[:p.size-p.off]
	}
	fillPattern(b, p.off)
	before := p.off
	p.off += int64(len(b))
	if p.every != nil && before>>20 != p.off>>20 {
		p.every(p.off)
	}
	return len(b), nil
}

// checkPattern reads r to the end and reports the first byte that is not
// the pattern, and the length.
func checkPattern(r io.Reader, every func()) (int64, error) {
	buf, want := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		n, err := r.Read(buf)
		fillPattern(want[:n], off)
		if !bytes.Equal(buf[:n], want[:n]) {
			for i := range n {
				if buf[i] != want[i] {
					return off + int64(i), fmt.Errorf("byte %d differs", off+int64(i))
				}
			}
		}
		off += int64(n)
		if every != nil && n > 0 {
			every()
		}
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

// heapPeak samples the Go heap (HeapAlloc: live data plus garbage not
// yet collected) and keeps the largest value.
type heapPeak struct {
	mu   sync.Mutex
	peak uint64
}

func (h *heapPeak) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.mu.Lock()
	h.peak = max(h.peak, m.HeapAlloc)
	h.mu.Unlock()
}

func baseline() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestVersityRoundTrip(t *testing.T) {
	g := s3test.Versity(t)
	s := versityStore(t, g, "omicsomics", nil)
	ctx := context.Background()
	key := "sandbox/1/2/0123456789abcdef0123456789abcdef.enc"
	if ok, err := g.Client().BucketExists(ctx, "omicsomics"); ok || err != nil {
		t.Fatalf("bucket exists before the first Put: %v %v", ok, err)
	}
	if err := s.Put(ctx, key, strings.NewReader("blob"), 4, "application/json"); err != nil {
		t.Fatalf("Put (bucket created on the way): %v", err)
	}
	if st, err := g.Client().StatObject(ctx, "omicsomics", key, minio.StatObjectOptions{}); err != nil || st.ContentType != "application/json" {
		t.Errorf("content type %q (%v)", st.ContentType, err)
	}
	if b, size := storagetest.ReadObject(t, s, key); b != "blob" || size != 4 {
		t.Fatalf("Get = %q %d", b, size)
	}
	if ok, err := s.Exists(ctx, key); !ok || err != nil {
		t.Errorf("Exists: %v %v", ok, err)
	}
	// The posix back-end lays objects out as storage/local does.
	ls, err := local.New(ctx, local.Config{Root: g.Dir, Bucket: "omicsomics"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ls.Exists(ctx, key); !ok || err != nil {
		t.Errorf("object not at <root>/<bucket>/<key>: %v %v", ok, err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, _, err := s.Get(ctx, key); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if left := g.Objects(t, "omicsomics"); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestVersityMultipartOver64MiB: a processed object over 64 MiB goes up
// in several multipart parts (unknown size, as the task streams it, and
// known size) and comes back byte for byte.
func TestVersityMultipartOver64MiB(t *testing.T) {
	g := s3test.Versity(t)
	s := versityStore(t, g, "omicsomics", nil) // default 16 MiB parts
	ctx := context.Background()
	const size = 64<<20 + 12345
	for _, known := range []bool{false, true} {
		key := fmt.Sprintf("sandbox/1/2/multipart-%v.enc", known)
		hint := int64(-1)
		if known {
			hint = size
		}
		if err := s.Put(ctx, key, &pattern{size: size}, hint, "application/json"); err != nil {
			t.Fatalf("Put size %d: %v", hint, err)
		}
		rc, got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := checkPattern(rc, nil)
		rc.Close()
		if err != nil || n != size || got != size {
			t.Fatalf("size %d: read %d of %d bytes (stat %d): %v", hint, n, size, got, err)
		}
		if st, err := os.Stat(filepath.Join(g.Dir, "omicsomics", filepath.FromSlash(key))); err != nil || st.Size() != size {
			t.Errorf("posix file: %v", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if left := g.Objects(t, "omicsomics"); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestVersity1GiBFlatMemory: a 1 GiB object goes up and comes down with
// memory independent of its size (one multipart part buffer up, a read
// buffer down). Slow (about a minute here), so not under -short.
func TestVersity1GiBFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB through a real S3 gateway: not under -short")
	}
	g := s3test.Versity(t)
	s := versityStore(t, g, "omicsomics", nil) // default 16 MiB parts
	ctx := context.Background()
	const size = 1 << 30
	key := "sandbox/1/2/one-gib.enc"
	t.Cleanup(func() { _ = s.Delete(context.Background(), key) }) // no 1 GiB file outlives the test

	base := baseline()
	up := &heapPeak{}
	if err := s.Put(ctx, key, &pattern{size: size, every: func(int64) { up.sample() }}, size, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	base2 := baseline()
	down := &heapPeak{}
	rc, got, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := checkPattern(rc, down.sample)
	rc.Close()
	if err != nil || n != size || got != size {
		t.Fatalf("read %d of %d bytes (stat %d): %v", n, size, got, err)
	}
	upMiB := float64(up.peak-min(up.peak, base)) / (1 << 20)
	downMiB := float64(down.peak-min(down.peak, base2)) / (1 << 20)
	t.Logf("1 GiB: heap above baseline: upload peak %.1f MiB, download peak %.1f MiB", upMiB, downMiB)
	// Bounds far below the object size, well above what is expected
	// (upload: a 16 MiB part buffer and the signer's; download: 1 MiB).
	if upMiB > 128 {
		t.Errorf("upload heap grew by %.1f MiB for a 1 GiB object", upMiB)
	}
	if downMiB > 64 {
		t.Errorf("download heap grew by %.1f MiB for a 1 GiB object", downMiB)
	}
}

// TestVersityKilledMidUpload: the gateway dies in the middle of an
// upload (between multipart parts, and inside a single PUT's body). The
// Put fails with a transient error; once the gateway is back a retry (a
// fresh key, as the task makes) succeeds, and neither a partial object
// nor an incomplete multipart upload is left.
func TestVersityKilledMidUpload(t *testing.T) {
	tests := map[string]struct {
		size, hint, killAt int64
	}{
		// Unknown size: 5 MiB parts; two are up, the third is being read.
		"multipart": {size: 40 << 20, hint: -1, killAt: 12 << 20},
		// Known size under one part: one PUT streaming from the reader,
		// cut off in the middle of its body.
		"single PUT": {size: 4 << 20, hint: 4 << 20, killAt: 2 << 20},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := s3test.Versity(t, "omicsomics")
			s := versityStore(t, g, "omicsomics", func(c *Config) { c.PartSize = 5 << 20; c.MaxRetries = 1 })
			ctx := context.Background()
			var once sync.Once
			src := &pattern{size: tc.size, every: func(off int64) {
				if off >= tc.killAt {
					once.Do(g.Kill)
				}
			}}
			err := s.Put(ctx, "sandbox/1/2/first.enc", src, tc.hint, "application/json")
			if err == nil {
				t.Fatal("Put succeeded while the gateway was down")
			}
			if !IsTransient(err) {
				t.Fatalf("gateway down mid-upload: not transient: %v", err)
			}
			t.Logf("error while down: %v", err)
			g.Restart()
			t.Logf("after the restart: %v", g.Objects(t, "omicsomics"))
			if err := s.Put(ctx, "sandbox/1/2/second.enc", &pattern{size: 12 << 20}, -1, "application/json"); err != nil {
				t.Fatalf("retry once the gateway is back: %v", err)
			}
			if left := g.Objects(t, "omicsomics"); !slices.Equal(left, []string{"sandbox/1/2/second.enc"}) {
				t.Errorf("in the bucket after the retry: %v, want only the retried object", left)
			}
			if _, err := os.Stat(filepath.Join(g.Dir, "omicsomics", "sandbox", "1", "2", "first.enc")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("partial object on disk: %v", err)
			}
		})
	}
}

// TestVersityWrongCredentials: a wrong secret or access key is a clear,
// permanent storage.ErrAccessDenied whose text holds no secret.
func TestVersityWrongCredentials(t *testing.T) {
	g := s3test.Versity(t, "omicsomics")
	ctx := context.Background()
	var b [8]byte
	_, _ = rand.Read(b[:])
	wrong := "wrong-secret-" + hex.EncodeToString(b[:])
	for name, mod := range map[string]func(*Config){
		"secret": func(c *Config) { c.SecretKey = wrong },
		"access": func(c *Config) { c.AccessKey = "nobody"; c.SecretKey = wrong },
	} {
		s := versityStore(t, g, "omicsomics", func(c *Config) { mod(c); c.MaxRetries = 1 })
		errs := map[string]error{"put": s.Put(ctx, "sandbox/1/2/x.enc", strings.NewReader("x"), 1, "")}
		_, _, errs["get"] = s.Get(ctx, "sandbox/1/2/x.enc")
		_, errs["exists"] = s.Exists(ctx, "sandbox/1/2/x.enc")
		for op, err := range errs {
			if !errors.Is(err, storage.ErrAccessDenied) || IsTransient(err) {
				t.Errorf("%s/%s: %v (transient %v), want a permanent storage.ErrAccessDenied", name, op, err, IsTransient(err))
				continue
			}
			if msg := err.Error(); strings.Contains(msg, wrong) || strings.Contains(msg, g.SecretKey) {
				t.Errorf("%s/%s: secret in the error: %s", name, op, msg)
			}
		}
		t.Logf("%s: %v", name, errs["put"])
	}
}

// TestVersityMissingBucket: reading from a bucket that does not exist is
// "not found" naming the bucket (not an outage); Put creates the bucket
// as the Python backend does.
func TestVersityMissingBucket(t *testing.T) {
	g := s3test.Versity(t)
	s := versityStore(t, g, "absent", nil)
	ctx := context.Background()
	_, _, err := s.Get(ctx, "sandbox/1/2/x.enc")
	if !errors.Is(err, storage.ErrObjectNotFound) || !errors.Is(err, storage.ErrBucketNotFound) || IsTransient(err) || !strings.Contains(err.Error(), `bucket "absent" does not exist`) {
		t.Errorf("Get from a missing bucket: %v", err)
	}
	if ok, err := s.Exists(ctx, "sandbox/1/2/x.enc"); ok || err != nil {
		t.Errorf("Exists in a missing bucket: %v %v", ok, err)
	}
	if err := s.Delete(ctx, "sandbox/1/2/x.enc"); err != nil {
		t.Errorf("Delete in a missing bucket: %v", err)
	}
	if err := s.Put(ctx, "sandbox/1/2/x.enc", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatalf("Put creates the bucket: %v", err)
	}
	if left := g.Objects(t, "absent"); !slices.Equal(left, []string{"sandbox/1/2/x.enc"}) {
		t.Errorf("bucket holds %v", left)
	}
}

func TestPatternFill(t *testing.T) {
	for _, off := range []int64{0, 1, 7, 8, 13, 1 << 20} {
		for _, n := range []int{0, 1, 7, 8, 9, 100} {
			b := make([]byte, n)
			fillPattern(b, off)
			for i := range b {
				if b[i] != patternByte(off+int64(i)) {
					t.Fatalf("off %d n %d: byte %d", off, n, i)
				}
			}
		}
	}
}

// failingReader is the pattern until at, then err (a source that fails:
// the file task abandoning a streamed document).
type failingReader struct {
	p   pattern
	at  int64
	err error
}

func (f *failingReader) Read(b []byte) (int, error) {
	if f.p.off >= f.at {
		return 0, f.err
	}
	if rest := f.at - f.p.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	return f.p.Read(b)
}

// TestVersityReaderErrorStoresNothing: a Put whose reader fails (before
// any byte, inside the first part, after whole parts, at a part boundary)
// returns that error and leaves neither an object nor an incomplete
// multipart upload, whatever the size hint. The file task relies on it to
// abandon a document it streams into the upload (worker/tasks/stream.go).
func TestVersityReaderErrorStoresNothing(t *testing.T) {
	g := s3test.Versity(t)
	s := versityStore(t, g, "omicsomics", func(c *Config) { c.PartSize = 5 << 20 })
	ctx := context.Background()
	abandoned := errors.New("document abandoned")
	for _, at := range []int64{0, 1 << 20, 5 << 20, 12 << 20} {
		for _, hint := range []int64{-1, 16 << 20} {
			key := fmt.Sprintf("sandbox/1/2/fail-%d-%d.enc", at, hint)
			err := s.Put(ctx, key, &failingReader{p: pattern{size: 16 << 20}, at: at, err: abandoned}, hint, "application/json")
			if !errors.Is(err, abandoned) {
				t.Errorf("reader fails at %d, size %d: Put = %v, want the reader's error", at, hint, err)
			}
		}
	}
	if left := g.Objects(t, "omicsomics"); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
