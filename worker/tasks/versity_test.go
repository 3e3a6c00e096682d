package tasks

// The file task against a real S3 server (VersityGW, storage/s3/s3test)
// that fails in the middle of the upload of the processed object.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/s3"
	"github.com/omicsomics/omics-worker/storage/s3/s3test"
	"github.com/omicsomics/omics-worker/worker"
)

// killingStore kills the gateway once after `at` bytes of one Put's body
// have been read (the processed object's upload; the raw object is only
// read).
type killingStore struct {
	storage.ObjectStore
	at   int64
	once *sync.Once
	kill func()
}

func (k killingStore) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	return k.ObjectStore.Put(ctx, key, &killingReader{r: r, at: k.at, fire: func() { k.once.Do(k.kill) }}, size, contentType)
}

type killingReader struct {
	r    io.Reader
	n    int64
	at   int64
	fire func()
}

func (k *killingReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.n += int64(n)
	if k.n >= k.at {
		k.fire()
	}
	return n, err
}

// TestGatewayKilledMidUploadRetriesThenSucceeds: the gateway dies while
// the processed object (multipart, > 10 MiB) is going up: the task fails
// with a transient ConnectionError (Celery RETRY) and writes no row; once
// the gateway is back the retry succeeds, and the bucket holds exactly the
// raw and the processed object (no partial object, no incomplete
// multipart upload).
func TestGatewayKilledMidUploadRetriesThenSucceeds(t *testing.T) {
	e := newEnv(t, "local") // the database part of the environment
	g := s3test.Versity(t, "omicsomics")
	st, err := s3.New(context.Background(), s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey,
		Bucket: "omicsomics", PartSize: 5 << 20, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.objects = st
	e.list = func(t testing.TB) []string { return g.Objects(t, "omicsomics") }

	var b bytes.Buffer
	b.WriteString("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
	for n := 0; b.Len() < 3<<20; n++ {
		fmt.Fprintf(&b, "chr2\t%d\t.\tC\tT\t50\tPASS\tDP=3\n", n+1)
	}
	raw := e.upload(t, "big.vcf", b.Bytes())
	rows := e.rowCount(t)

	cfg := e.config()
	cfg.Objects = killingStore{ObjectStore: st, at: 7 << 20, once: &sync.Once{}, kill: g.Kill}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
	if pe := transientPy(err); pe == nil || pe.Type != "ConnectionError" {
		t.Fatalf("gateway killed mid-upload: %v, want a transient ConnectionError (RETRY)", err)
	}
	t.Logf("while down: %v", err)
	if e.rowCount(t) != rows || e.metadata(t, raw.ID)["processing_info"] != nil {
		t.Error("an outage must write no row and mark nothing")
	}

	g.Restart()
	res, err := p.Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
	if err != nil {
		t.Fatalf("retry once the gateway is back: %v", err)
	}
	pf, err := e.files.GetFile(context.Background(), res.ProcessedFileID)
	if err != nil {
		t.Fatal(err)
	}
	if doc := e.decryptObject(t, pf.ObjectKey); int64(len(doc)) != pf.Size || pf.Size < 10<<20 {
		t.Errorf("document %d bytes, row %d", len(doc), pf.Size)
	}
	left := e.list(t)
	want := []string{raw.ObjectKey, pf.ObjectKey}
	if len(left) != 2 || !(left[0] == want[0] && left[1] == want[1] || left[0] == want[1] && left[1] == want[0]) {
		t.Errorf("bucket holds %s, want only the raw and the processed object", strings.Join(left, ", "))
	}
}

// TestWrongCredentialsAndMissingBucketOnS3: a misconfigured store gives a
// clear FAILURE naming the cause, with no secret in it, and writes no row.
func TestWrongCredentialsAndMissingBucketOnS3(t *testing.T) {
	e := newEnv(t, "local")
	g := s3test.Versity(t, "omicsomics")
	good, err := s3.New(context.Background(), s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Bucket: "omicsomics"})
	if err != nil {
		t.Fatal(err)
	}
	e.objects = good
	raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
	rows := e.rowCount(t)
	const wrongSecret = "wrong-secret-5f2a9c"
	tests := map[string]struct {
		cfg  s3.Config
		want string
	}{
		"wrong secret": {s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: wrongSecret, Bucket: "omicsomics", MaxRetries: 1},
			"RuntimeError: object storage error while reading object"},
		"unknown access key": {s3.Config{Endpoint: g.URL, AccessKey: "nobody", SecretKey: wrongSecret, Bucket: "omicsomics", MaxRetries: 1},
			"RuntimeError: object storage error while reading object"},
		"missing bucket": {s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Bucket: "absent", MaxRetries: 1},
			"RuntimeError: object storage error while reading object"}, // a configuration fault (TestMissingBucketIsNotTheFilesFault)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st, err := s3.New(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg := e.config()
			cfg.Objects = st
			p, _ := New(cfg)
			_, err = p.Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
			if err == nil || transientPy(err) != nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a permanent %q", err, tc.want)
			}
			msg := err.Error()
			if strings.Contains(msg, wrongSecret) || strings.Contains(msg, g.SecretKey) {
				t.Errorf("secret in the FAILURE: %s", msg)
			}
			if name != "missing bucket" && !strings.Contains(msg, "access denied by object storage") {
				t.Errorf("FAILURE does not say access denied: %s", msg)
			}
			if e.rowCount(t) != rows {
				t.Error("rows added")
			}
			t.Logf("%s", msg)
		})
	}
}

// TestHostileObjectKeyInRow: a raw row whose object_key climbs out of the
// bucket ("../otherbucket/secret.enc") is refused by every store before
// any request or file access: a permanent FAILURE, nothing read from the
// other bucket (issue 9 #6).
func TestHostileObjectKeyInRow(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, "local")
			secret := []byte("secret of another bucket")
			switch kind {
			case "local":
				other := filepath.Join(filepath.Dir(e.objects.(*local.Store).Dir()), "otherbucket")
				if err := os.MkdirAll(other, 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(other, "secret.enc"), secret, 0o600); err != nil {
					t.Fatal(err)
				}
			case "s3":
				g := s3test.Versity(t, "omicsomics", "otherbucket")
				if _, err := g.Client().PutObject(ctx, "otherbucket", "secret.enc", bytes.NewReader(secret), int64(len(secret)), minio.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				st, err := s3.New(ctx, s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Bucket: "omicsomics", MaxRetries: 1})
				if err != nil {
					t.Fatal(err)
				}
				e.objects = st
			}
			p := e.processor(t)
			for _, key := range []string{"../otherbucket/secret.enc", "sandbox/../../otherbucket/secret.enc", "/otherbucket/secret.enc"} {
				raw, err := e.files.InsertRawFile(ctx, storage.NewFile{Filename: "x.tsv", ObjectKey: key, Size: int64(len(secret)),
					ProjectID: e.project, UploadedByID: e.user})
				if err != nil {
					t.Fatal(err)
				}
				_, err = p.Process(ctx, nil, Request{RawFileID: raw.ID}, Tuning{})
				if err == nil || transientPy(err) != nil || !errors.Is(err, storage.ErrInvalidKey) || !strings.Contains(err.Error(), "invalid object key") {
					t.Errorf("key %q: %v, want a permanent invalid-key FAILURE", key, err)
				}
			}
		})
	}
}

// TestMissingBucketIsNotTheFilesFault: when the configured bucket does not
// exist the task fails with a clear RuntimeError naming the bucket, is not
// retried, and leaves the raw row as it was (no "converted": false).
func TestMissingBucketIsNotTheFilesFault(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "s3")
	raw := e.upload(t, "x.tsv", []byte("gene\ts1\nA\t1\n"))
	before := e.metadata(t, raw.ID)
	g := s3test.Versity(t)
	st, err := s3.New(ctx, s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Bucket: "absent", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.objects = st
	_, err = e.processor(t).Process(ctx, nil, Request{RawFileID: raw.ID}, Tuning{})
	var pe *worker.PyError
	if err == nil || transientPy(err) != nil || !errors.As(err, &pe) || pe.Type != "RuntimeError" ||
		!strings.Contains(err.Error(), `bucket "absent" does not exist`) {
		t.Fatalf("missing bucket: %v, want a permanent RuntimeError naming the bucket", err)
	}
	if after := e.metadata(t, raw.ID); !reflect.DeepEqual(before, after) {
		t.Errorf("raw row metadata changed: %v -> %v", before, after)
	}
}
