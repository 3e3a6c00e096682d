package tasks

// Test environment: a scratch PostgreSQL database per test
// (testenv.ScratchDB, dropped at cleanup), an object store (a local directory or
// S3 via minio-go against a VersityGW gateway started for the test), a keyring, and a
// Reporter that records every state.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/storage/s3/s3test"

	"github.com/jackc/pgx/v5"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/envelope"
	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/storage/s3"
	"github.com/omicsomics/omics-worker/worker"
)

const testMasterKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// objectLister lists every object key of a store (for "nothing left
// behind" assertions).
type objectLister func(t testing.TB) []string

type env struct {
	dbURL   string
	files   *postgres.Store
	objects storage.ObjectStore
	list    objectLister
	keys    *MasterKeyring
	user    int64
	project int64
	tmp     string
}

// newEnv builds a complete environment; kind is "local" or "s3".
func newEnv(t testing.TB, kind string) *env {
	t.Helper()
	e := &env{dbURL: testenv.ScratchDB(t, "omics_tasks_test")}
	ctx := context.Background()
	files, err := postgres.OpenConfig(ctx, postgres.Config{URL: e.dbURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(files.Close)
	if err := files.CreateSchema(ctx); err != nil {
		t.Fatal(err)
	}
	e.files = files
	if e.user, err = files.CreateUser(ctx, "owner@example.org"); err != nil {
		t.Fatal(err)
	}
	if e.project, err = files.CreateProject(ctx, "demo", e.user); err != nil {
		t.Fatal(err)
	}
	if e.keys, err = NewMasterKeyring(testMasterKey); err != nil {
		t.Fatal(err)
	}
	e.tmp = t.TempDir()
	switch kind {
	case "local":
		root := t.TempDir()
		st, err := local.New(ctx, local.Config{Root: root, Bucket: "omicsomics"})
		if err != nil {
			t.Fatal(err)
		}
		e.objects = st
		e.list = func(t testing.TB) []string {
			var keys []string
			dir := filepath.Join(root, "omicsomics")
			_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					keys = append(keys, filepath.ToSlash(rel))
				}
				return nil
			})
			sort.Strings(keys)
			return keys
		}
	case "s3":
		// A real S3 server: VersityGW (storage/s3/s3test.Versity).
		g := s3test.Versity(t)
		st, err := s3.New(ctx, s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Bucket: "omicsomics", PartSize: 5 << 20})
		if err != nil {
			t.Fatal(err)
		}
		e.objects = st
		// Objects, then "multipart:<key>" for incomplete uploads.
		e.list = func(t testing.TB) []string { return g.Objects(t, "omicsomics") }
	default:
		t.Fatalf("unknown store %q", kind)
	}
	return e
}

func (e *env) config() Config {
	return Config{Files: e.files, Objects: e.objects, Keys: e.keys, TempDir: e.tmp, IsTransient: isTransient}
}

// isTransient is the classifier the binary wires for these backends.
func isTransient(err error) bool { return postgres.IsTransient(err) || s3.IsTransient(err) }

// transientPy returns the exception of an error the runtime retries (one
// marked with worker.Transient), or nil.
func transientPy(err error) *worker.PyError {
	var te *worker.TransientError
	var pe *worker.PyError
	if !errors.As(err, &te) || !errors.As(te.Err, &pe) {
		return nil
	}
	return pe
}

// runtimeOutcome is what the runtime does with the handler error err on
// retry n (0-based) under the file tasks' options (worker/autoretry.go,
// worker/exec.go): a retry after countdown, or the exception recorded as
// FAILURE. worker.TestAutoRetryUntilFailure checks the runtime's side.
func runtimeOutcome(p *Processor, err error, n int) (retry bool, countdown time.Duration, pe *worker.PyError) {
	opts := p.TaskOptions()
	maxRetries := opts.MaxRetries
	if maxRetries == 0 {
		maxRetries = 3
	}
	if pe = transientPy(err); pe == nil || opts.AutoRetry.Disabled {
		errors.As(err, &pe)
		return false, 0, pe
	}
	if n >= maxRetries {
		return false, 0, pe
	}
	return true, opts.AutoRetry.Backoff(n), pe
}

func (e *env) processor(t testing.TB) *Processor {
	t.Helper()
	p, err := New(e.config())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// upload stores content like the FastAPI upload (create_datafile):
// encrypted for the owner at a fresh sandbox key, row with size/checksum
// of the plaintext.
func (e *env) upload(t testing.TB, name string, content []byte) *storage.File {
	t.Helper()
	ctx := context.Background()
	key, _ := e.keys.UserKey(e.user)
	blob, err := envelope.Encrypt(key, content)
	if err != nil {
		t.Fatal(err)
	}
	objKey := storage.ObjectKey(e.project, e.user)
	if err := e.objects.Put(ctx, objKey, bytes.NewReader(blob), int64(len(blob)), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	f, err := e.files.InsertRawFile(ctx, storage.NewFile{
		Filename: name, ObjectKey: objKey, Size: int64(len(content)), Checksum: hex.EncodeToString(sum[:]),
		ProjectID: e.project, UploadedByID: e.user,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// rowCount counts data_files rows.
func (e *env) rowCount(t testing.TB) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM data_files").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// metadata returns a row's metadata as a generic map.
func (e *env) metadata(t testing.TB, id int64) map[string]any {
	t.Helper()
	f, err := e.files.GetFile(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(f.Metadata, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// decryptObject returns the plaintext of a stored object for the owner.
func (e *env) decryptObject(t testing.TB, key string) []byte {
	t.Helper()
	rc, _, err := e.objects.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	uk, _ := e.keys.UserKey(e.user)
	pt, err := envelope.Decrypt(uk, blob)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// recorder is a Reporter that keeps every state.
type recorder struct {
	mu     sync.Mutex
	states []recorded
	fail   error
}

type recorded struct {
	State string
	Meta  Progress
}

func (r *recorder) UpdateState(ctx context.Context, state string, meta any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := meta.(Progress)
	if !ok {
		return errors.New("meta is not a Progress")
	}
	r.states = append(r.states, recorded{state, p})
	return r.fail
}

// steps returns "STATE:progress:status" for every recorded state.
func (r *recorder) steps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.states {
		out = append(out, fmt.Sprintf("%s:%d:%s", s.State, s.Meta.Progress, s.Meta.Status))
	}
	return out
}

// coarse drops the fine-grained conversion updates (those with bytes_done).
func (r *recorder) coarse() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.states {
		if s.Meta.BytesDone == nil {
			out = append(out, fmt.Sprintf("%s:%d:%s", s.State, s.Meta.Progress, s.Meta.Status))
		}
	}
	return out
}

func demoDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readDemo(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(demoDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func joinLines(s []string) string { return strings.Join(s, "\n") }

// exec runs SQL statements on the test database.
func (e *env) exec(t testing.TB, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range stmts {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
