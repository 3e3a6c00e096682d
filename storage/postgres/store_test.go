package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/storage"
)

type fixture struct {
	store   *Store
	user    int64
	project int64
	schema  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	// Each test works in its own scratch schema of the test database,
	// dropped at the end (cheaper than testenv.ScratchDB's database).
	url := testenv.NeedPostgres(t)
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "omics_storage_test_" + hex.EncodeToString(b[:])
	s, err := OpenConfig(ctx, Config{URL: url, Schema: schema})
	if err != nil {
		t.Fatalf("open %s: %v", schema, err)
	}
	t.Cleanup(func() {
		_, err := s.pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		s.Close()
	})
	if err := s.CreateSchema(ctx); err != nil {
		t.Fatal(err)
	}
	// Twice: CreateSchema is idempotent.
	if err := s.CreateSchema(ctx); err != nil {
		t.Fatal(err)
	}
	user, err := s.CreateUser(ctx, "owner@example.org")
	if err != nil {
		t.Fatal(err)
	}
	project, err := s.CreateProject(ctx, "p", user)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, user: user, project: project, schema: schema}
}

func (f *fixture) raw(t *testing.T, name string) *storage.File {
	t.Helper()
	file, err := f.store.InsertRawFile(context.Background(), storage.NewFile{
		Filename: name, ObjectKey: fmt.Sprintf("sandbox/%d/%d/%s.enc", f.project, f.user, randHex()),
		Size: 10, Checksum: "ab", ProjectID: f.project, UploadedByID: f.user,
	})
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func randHex() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (f *fixture) processed(raw *storage.File) storage.NewFile {
	return storage.NewFile{
		Filename: raw.Filename + ".processed.json", ObjectKey: fmt.Sprintf("sandbox/%d/%d/%s.enc", f.project, f.user, randHex()),
		Size: 123, Checksum: "cd", ProjectID: raw.ProjectID, UploadedByID: raw.UploadedByID,
	}
}

func (f *fixture) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.store.pool.QueryRow(context.Background(), `SELECT count(*) FROM data_files`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var processingInfo = json.RawMessage(`{"converted": true, "omics_type": "genomics", "format": "vcf", "record_count": 3}`)

func TestGetFile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw := f.raw(t, "a.vcf")
	got, err := f.store.GetFile(ctx, raw.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"alg": "AES-GCM", "version": "1", "filename": "a.vcf", "content_type": "application/octet-stream", "size": 10, "object_key": %q}`, raw.ObjectKey)
	if string(got.Metadata) != want {
		t.Errorf("metadata\n got %s\nwant %s", got.Metadata, want)
	}
	if got.Filename != "a.vcf" || got.ProjectID != f.project || got.UploadedByID != f.user || got.RunID != nil || got.Size != 10 || got.CreatedAt.IsZero() {
		t.Errorf("row %+v", got)
	}
	if _, err := f.store.GetFile(ctx, raw.ID+1000); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing row: %v", err)
	}
	if _, err := f.store.FindProcessed(ctx, raw.ID); !errors.Is(err, ErrNotProcessed) {
		t.Errorf("FindProcessed before processing: %v", err)
	}
	if _, err := f.store.FindProcessed(ctx, raw.ID+1000); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FindProcessed of missing row: %v", err)
	}
}

func columnType(t *testing.T, f *fixture) string {
	t.Helper()
	var typ string
	err := f.store.pool.QueryRow(context.Background(), `SELECT data_type FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'data_files' AND column_name = 'metadata'`, f.schema).Scan(&typ)
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

func TestSaveProcessed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw := f.raw(t, "a.vcf")
	nf := f.processed(raw)
	id, err := f.store.SaveProcessed(ctx, raw, nf, []storage.MetadataField{{Key: "processing_info", Value: processingInfo}, storage.StringField("omics_type", "genomics")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.store.GetFile(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wantP := fmt.Sprintf(`{"alg": "AES-GCM", "version": "1", "filename": "a.vcf.processed.json", "content_type": "application/json", "size": 123, "object_key": %q, "raw_file_id": %d, "is_processed": true}`, nf.ObjectKey, raw.ID)
	if string(p.Metadata) != wantP {
		t.Errorf("processed metadata\n got %s\nwant %s", p.Metadata, wantP)
	}
	if p.Size != 123 || p.Checksum != "cd" || p.ObjectKey != nf.ObjectKey {
		t.Errorf("processed row %+v", p)
	}
	r, _ := f.store.GetFile(ctx, raw.ID)
	wantR := fmt.Sprintf(`{"alg": "AES-GCM", "version": "1", "filename": "a.vcf", "content_type": "application/octet-stream", "size": 10, "object_key": %q, "processed_file_id": %d, "processing_info": {"converted": true, "omics_type": "genomics", "format": "vcf", "record_count": 3}, "omics_type": "genomics"}`, raw.ObjectKey, id)
	if string(r.Metadata) != wantR {
		t.Errorf("raw metadata\n got %s\nwant %s", r.Metadata, wantR)
	}
	if !r.UpdatedAt.After(raw.UpdatedAt) {
		t.Errorf("updated_at not bumped: %v -> %v", raw.UpdatedAt, r.UpdatedAt)
	}
	if typ := columnType(t, f); typ != "json" {
		t.Errorf("metadata column type %q, want json", typ)
	}
	// The server reads it as JSON (what the FastAPI app's queries do).
	var pid int64
	if err := f.store.pool.QueryRow(ctx, `SELECT (metadata->>'processed_file_id')::int FROM data_files WHERE id = $1`, raw.ID).Scan(&pid); err != nil || pid != id {
		t.Errorf("metadata->>'processed_file_id' = %d, %v", pid, err)
	}
	fp, err := f.store.FindProcessed(ctx, raw.ID)
	if err != nil || fp.ID != id {
		t.Errorf("FindProcessed: %v", err)
	}
	// A failure reported after success must not clobber it.
	if err := f.store.MarkFailed(ctx, raw.ID, failedPatch(`{"converted": false, "error": "late"}`, "")); !errors.Is(err, storage.ErrAlreadyProcessed) {
		t.Errorf("MarkFailed after success: %v", err)
	}
	if r2, _ := f.store.GetFile(ctx, raw.ID); string(r2.Metadata) != wantR {
		t.Errorf("raw metadata changed by MarkFailed: %s", r2.Metadata)
	}
}

func TestSaveProcessedIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw := f.raw(t, "a.bed")
	first, err := f.store.SaveProcessed(ctx, raw, f.processed(raw), []storage.MetadataField{storage.StringField("omics_type", "genomics")})
	if err != nil {
		t.Fatal(err)
	}
	before := f.count(t)
	r1, _ := f.store.GetFile(ctx, raw.ID)
	second, err := f.store.SaveProcessed(ctx, raw, f.processed(raw), []storage.MetadataField{storage.StringField("omics_type", "genomics")})
	if !errors.Is(err, storage.ErrAlreadyProcessed) || second != first {
		t.Fatalf("second SaveProcessed = %d, %v; want %d, storage.ErrAlreadyProcessed", second, err, first)
	}
	if n := f.count(t); n != before {
		t.Errorf("rows %d -> %d", before, n)
	}
	if r2, _ := f.store.GetFile(ctx, raw.ID); string(r2.Metadata) != string(r1.Metadata) || !r2.UpdatedAt.Equal(r1.UpdatedAt) {
		t.Errorf("raw row changed by the duplicate")
	}

	// A link to a deleted processed row does not count: processing again
	// replaces it.
	if _, err := f.store.pool.Exec(ctx, `DELETE FROM data_files WHERE id = $1`, first); err != nil {
		t.Fatal(err)
	}
	third, err := f.store.SaveProcessed(ctx, raw, f.processed(raw), nil)
	if err != nil || third == first {
		t.Fatalf("after deleting the processed row: %d, %v", third, err)
	}
}

func TestSaveProcessedConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw := f.raw(t, "a.gff")
	const n = 6
	var wg sync.WaitGroup
	ids := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = f.store.SaveProcessed(ctx, raw, f.processed(raw), []storage.MetadataField{storage.StringField("omics_type", "genomics")})
		}()
	}
	wg.Wait()
	winners := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			winners++
		case errors.Is(errs[i], storage.ErrAlreadyProcessed):
		default:
			t.Fatalf("attempt %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("attempt %d got id %d, attempt 0 got %d", i, ids[i], ids[0])
		}
	}
	if winners != 1 {
		t.Errorf("%d attempts inserted, want exactly 1", winners)
	}
	if c := f.count(t); c != 2 {
		t.Errorf("%d rows, want raw + one processed", c)
	}
}

func TestSaveProcessedAllOrNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw := f.raw(t, "a.csv")
	before := f.count(t)
	r0, _ := f.store.GetFile(ctx, raw.ID)
	unchanged := func(name string) {
		t.Helper()
		if n := f.count(t); n != before {
			t.Errorf("%s: rows %d -> %d", name, before, n)
		}
		r, _ := f.store.GetFile(ctx, raw.ID)
		if string(r.Metadata) != string(r0.Metadata) || !r.UpdatedAt.Equal(r0.UpdatedAt) {
			t.Errorf("%s: raw row changed: %s", name, r.Metadata)
		}
	}

	// Failure inside the transaction after the INSERT succeeded.
	boom := errors.New("injected failure after insert")
	f.store.afterInsert = func(context.Context, pgx.Tx) error { return boom }
	_, err := f.store.SaveProcessed(ctx, raw, f.processed(raw), []storage.MetadataField{storage.StringField("omics_type", "genomics")})
	f.store.afterInsert = nil
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want injected failure", err)
	}
	unchanged("after insert")

	// The database itself fails after the INSERT: the connection is
	// killed mid-transaction.
	f.store.afterInsert = func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		return err
	}
	_, err = f.store.SaveProcessed(ctx, raw, f.processed(raw), nil)
	f.store.afterInsert = nil
	if err == nil {
		t.Fatal("SaveProcessed succeeded on a killed connection")
	}
	if !IsTransient(err) {
		t.Errorf("killed connection not transient: %v", err)
	}
	unchanged("connection killed")

	// The INSERT fails (foreign key), nothing else happens.
	bad := f.processed(raw)
	bad.ProjectID = 999999
	if _, err := f.store.SaveProcessed(ctx, raw, bad, nil); err == nil || IsTransient(err) {
		t.Fatalf("FK violation: %v", err)
	}
	unchanged("fk violation")

	// A patch value that is not JSON.
	if _, err := f.store.SaveProcessed(ctx, raw, f.processed(raw), []storage.MetadataField{{Key: "x", Value: json.RawMessage(`{"a":`)}}); err == nil {
		t.Fatal("invalid patch accepted")
	}
	unchanged("bad patch")

	// Missing raw row.
	if _, err := f.store.SaveProcessed(ctx, &storage.File{ID: raw.ID + 1000}, f.processed(raw), nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing raw: %v", err)
	}
	unchanged("missing raw")
}

// failedPatch is the patch the file task writes on a failure:
// processing_info, then omics_type when known.
func failedPatch(info, omics string) []storage.MetadataField {
	p := []storage.MetadataField{{Key: "processing_info", Value: json.RawMessage(info)}}
	if omics != "" {
		p = append(p, storage.StringField("omics_type", omics))
	}
	return p
}

func TestMarkFailed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw := f.raw(t, "weird.xyz")
	info := `{"converted": false, "error": "Unsupported format: xyz"}`
	if err := f.store.MarkFailed(ctx, raw.ID, failedPatch(info, "unknown")); err != nil {
		t.Fatal(err)
	}
	r, _ := f.store.GetFile(ctx, raw.ID)
	if v, _ := r.MetadataValue("processing_info"); string(v) != `{"converted": false, "error": "Unsupported format: xyz"}` {
		t.Errorf("processing_info %s", v)
	}
	if v, _ := r.MetadataValue("omics_type"); string(v) != `"unknown"` {
		t.Errorf("omics_type %s", v)
	}
	if v, _ := r.MetadataValue("alg"); string(v) != `"AES-GCM"` {
		t.Errorf("alg lost: %s", r.Metadata)
	}
	// Without an omics type, an existing one is kept; processing_info is replaced.
	if err := f.store.MarkFailed(ctx, raw.ID, failedPatch(`{"converted": false, "error": "second"}`, "")); err != nil {
		t.Fatal(err)
	}
	r, _ = f.store.GetFile(ctx, raw.ID)
	if v, _ := r.MetadataValue("omics_type"); string(v) != `"unknown"` {
		t.Errorf("omics_type %s", v)
	}
	if v, _ := r.MetadataValue("processing_info"); string(v) != `{"converted": false, "error": "second"}` {
		t.Errorf("processing_info %s", v)
	}
	if err := f.store.MarkFailed(ctx, raw.ID+1000, failedPatch(info, "")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing row: %v", err)
	}
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{storage.ErrNotFound, false},
		{context.Canceled, false},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01"}), true},
		{&pgconn.PgError{Code: "23505"}, false}, // unique_violation
		{&pgconn.PgError{Code: "42P01"}, false}, // undefined_table
	}
	for _, tc := range tests {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v", tc.err, got)
		}
	}
	if testing.Short() {
		return
	}
	// A real refused connection (nothing listens on port 1).
	_, err := Open(context.Background(), "postgresql+asyncpg://postgres@127.0.0.1:1/test?ssl=false")
	if err == nil || !IsTransient(err) {
		t.Errorf("connection refused: transient=%v (%v)", IsTransient(err), err)
	}
}

// TestGetFileOutsideInt4: data_files.id is int4; an id beyond it cannot
// exist and is storage.ErrNotFound, not pgx's "unable to encode" (issue 9 #11).
func TestGetFileOutsideInt4(t *testing.T) {
	f := newFixture(t)
	for _, id := range []int64{1 << 31, -1<<31 - 1, math.MaxInt64, math.MinInt64, 0, -1, 1<<31 - 1} {
		if _, err := f.store.GetFile(context.Background(), id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetFile(%d) = %v, want storage.ErrNotFound", id, err)
		}
	}
}
