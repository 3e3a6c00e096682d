// Package postgres reads and writes the Omicsomics `data_files` table with
// pgx: the raw row of an upload, the processed row the worker creates and
// the links between them (spec processing.md §6.1, §7.3, §7.4).
//
// Exactly-once effect: SaveProcessed locks the raw row (SELECT ... FOR
// UPDATE) and, when its metadata already links an existing processed row,
// changes nothing and returns that row's id with storage.ErrAlreadyProcessed. Two
// deliveries of the same task therefore leave exactly one processed row,
// even when they run at the same time; the caller deletes the object it
// uploaded for the losing attempt.
package postgres

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/internal/jsonobj"
)

//go:embed schema.sql
var schemaSQL string

// Config configures a Store. The zero value of every field but URL means
// the default.
type Config struct {
	// URL is DATABASE_URL in any form ParseDatabaseURL accepts.
	URL string
	// Schema, when set, is created by CreateSchema and put first on the
	// search_path of every connection (tests and demos use scratch schemas).
	Schema string
	// MaxConns bounds the pool (default 4).
	MaxConns int32
	// Logger receives debug records (default: discard).
	Logger *slog.Logger
}

// Store is a pooled connection to the Omicsomics database.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	log    *slog.Logger

	// afterInsert, when set (tests only), runs inside SaveProcessed's
	// transaction after the processed row is inserted.
	afterInsert func(ctx context.Context, tx pgx.Tx) error

	pendingMu    sync.Mutex
	pendingReady bool // omics_worker_pending_objects exists (pending.go)
}

// The rows are the file-row contract's types (storage.File,
// storage.NewFile) and its errors (storage.ErrNotFound,
// storage.ErrAlreadyProcessed, storage.ErrObjectSettled).
var _ storage.FileStore = (*Store)(nil)

// Open connects to url (DATABASE_URL) with default settings.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenConfig(ctx, Config{URL: url})
}

// OpenConfig connects with cfg and checks the connection.
func OpenConfig(ctx context.Context, cfg Config) (*Store, error) {
	u, err := ParseDatabaseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedURL, mask.Error(err))
	}
	pc.MaxConns = 4
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", mask.Error(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect %s: %w", target(pc), mask.Error(err))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, schema: cfg.Schema, log: log}, nil
}

// target names the database connected to (no password) for errors.
func target(pc *pgxpool.Config) string {
	return fmt.Sprintf("%s@%s:%d/%s", pc.ConnConfig.User, pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database)
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// CreateSchema creates (if missing) the configured schema, data_files and
// the minimal users/projects/runs tables it references (schema.sql).
func (s *Store) CreateSchema(ctx context.Context) error {
	if s.schema != "" {
		if _, err := s.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: create schema: %w", err)
		}
	}
	if _, err := s.pool.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("postgres: create tables: %w", err)
	}
	return s.EnsurePendingTable(ctx)
}

// CreateUser inserts a users row (demo and tests) and returns its id.
func (s *Store) CreateUser(ctx context.Context, email string) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx,
		`INSERT INTO users (email, hashed_password, full_name) VALUES ($1, '!', $1) RETURNING id`, email).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("postgres: create user: %w", err)
	}
	return id, nil
}

// CreateProject inserts a projects row owned by ownerID and returns its id.
func (s *Store) CreateProject(ctx context.Context, name string, ownerID int64) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx,
		`INSERT INTO projects (name, description, owner_id) VALUES ($1, '', $2) RETURNING id`, name, ownerID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("postgres: create project: %w", err)
	}
	return id, nil
}

const fileColumns = `id, filename, object_key, metadata::text, size, checksum, project_id, run_id, uploaded_by_id, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanFile(row rowScanner) (*storage.File, error) {
	var (
		f     storage.File
		meta  *string
		runID *int64
	)
	if err := row.Scan(&f.ID, &f.Filename, &f.ObjectKey, &meta, &f.Size, &f.Checksum,
		&f.ProjectID, &runID, &f.UploadedByID, &f.CreatedAt, &f.UpdatedAt); err != nil {
		return nil, err
	}
	if meta != nil {
		f.Metadata = json.RawMessage(*meta)
	} else {
		f.Metadata = json.RawMessage("null")
	}
	f.RunID = runID
	return &f, nil
}

// GetFile reads one data_files row; storage.ErrNotFound when it does not exist,
// including an id outside the int4 range of data_files.id (SERIAL), which
// no row can have (PostgreSQL would refuse to even compare it).
func (s *Store) GetFile(ctx context.Context, id int64) (*storage.File, error) {
	if id < math.MinInt32 || id > math.MaxInt32 {
		return nil, fmt.Errorf("%w: id %d", storage.ErrNotFound, id)
	}
	f, err := scanFile(s.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM data_files WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: id %d", storage.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get file %d: %w", id, err)
	}
	return f, nil
}

// fileMetadata is the package create_datafile stores (§6.2), in its order.
func fileMetadata(nf storage.NewFile, defaultType string) (jsonobj.Object, error) {
	ct := nf.ContentType
	if ct == "" {
		ct = defaultType
	}
	var o jsonobj.Object
	var err error
	for _, kv := range []struct {
		k string
		v any
	}{
		{"alg", "AES-GCM"}, {"version", "1"}, {"filename", nf.Filename},
		{"content_type", ct}, {"size", nf.Size}, {"object_key", nf.ObjectKey},
	} {
		if o, err = o.SetValue(kv.k, kv.v); err != nil {
			return nil, err
		}
	}
	return o, nil
}

const insertFile = `INSERT INTO data_files (filename, object_key, metadata, size, checksum, project_id, run_id, uploaded_by_id)
VALUES ($1, $2, $3::text::json, $4, $5, $6, $7, $8) RETURNING ` + fileColumns

func insertRow(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, nf storage.NewFile, meta jsonobj.Object) (*storage.File, error) {
	return scanFile(q.QueryRow(ctx, insertFile, nf.Filename, nf.ObjectKey, string(meta.Encode()),
		nf.Size, nf.Checksum, nf.ProjectID, nf.RunID, nf.UploadedByID))
}

// InsertRawFile inserts a row the way the upload path's create_datafile
// does (the object must already be stored encrypted at nf.ObjectKey), with
// metadata {"alg", "version", "filename", "content_type", "size",
// "object_key"}. ContentType defaults to application/octet-stream.
func (s *Store) InsertRawFile(ctx context.Context, nf storage.NewFile) (*storage.File, error) {
	meta, err := fileMetadata(nf, "application/octet-stream")
	if err != nil {
		return nil, err
	}
	f, err := insertRow(ctx, s.pool, nf, meta)
	if err != nil {
		return nil, fmt.Errorf("postgres: insert file: %w", err)
	}
	return f, nil
}

// lockRaw selects the raw row's metadata FOR UPDATE and reports the id of
// the processed row it links, if that row exists.
func lockRaw(ctx context.Context, tx pgx.Tx, rawID int64) (jsonobj.Object, int64, error) {
	var meta *string
	err := tx.QueryRow(ctx, `SELECT metadata::text FROM data_files WHERE id = $1 FOR UPDATE`, rawID).Scan(&meta)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("%w: id %d", storage.ErrNotFound, rawID)
	}
	if err != nil {
		return nil, 0, err
	}
	var text []byte
	if meta != nil {
		text = []byte(*meta)
	}
	o, err := jsonobj.Parse(text)
	if err != nil {
		return nil, 0, err
	}
	if pid, ok := o.Int64("processed_file_id"); ok && pid != 0 {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM data_files WHERE id = $1)`, pid).Scan(&exists); err != nil {
			return nil, 0, err
		}
		if exists {
			return o, pid, nil
		}
	}
	return o, 0, nil
}

// merge applies a metadata patch in its order: an existing key keeps its
// position, a new one is appended. The values are JSON already; they are
// checked, not re-encoded.
func merge(o jsonobj.Object, patch []storage.MetadataField) (jsonobj.Object, error) {
	for _, f := range patch {
		if !json.Valid(f.Value) {
			return nil, fmt.Errorf("metadata %q: invalid JSON %q", f.Key, f.Value)
		}
		o = o.Set(f.Key, f.Value)
	}
	return o, nil
}

func updateMetadata(ctx context.Context, tx pgx.Tx, id int64, o jsonobj.Object) error {
	_, err := tx.Exec(ctx, `UPDATE data_files SET metadata = $2::text::json, updated_at = now() WHERE id = $1`, id, string(o.Encode()))
	return err
}

// SaveProcessed records the processed file of raw in one transaction:
//
//  1. lock the raw row (SELECT ... FOR UPDATE);
//  2. if its metadata already links an existing processed row, stop and
//     return that id with storage.ErrAlreadyProcessed (nothing is written; the
//     caller should delete the object at processed.ObjectKey); with
//     processed.Pending, delete the object's pending record (pending.go),
//     or stop with storage.ErrObjectSettled when it is gone or doomed;
//  3. insert the processed row with metadata {"alg", "version",
//     "filename", "content_type", "size", "object_key", "raw_file_id",
//     "is_processed": true} (ContentType defaults to application/json);
//  4. merge processed_file_id and then rawPatch (typically
//     processing_info and omics_type), in that order, into the raw row's
//     metadata, keeping its other keys and their order, and bump
//     updated_at.
//
// The values of rawPatch are JSON already (see storage.MetadataField). On
// any error the transaction is rolled back and no row changes.
func (s *Store) SaveProcessed(ctx context.Context, raw *storage.File, processed storage.NewFile, rawPatch []storage.MetadataField) (int64, error) {
	if raw == nil {
		return 0, errors.New("postgres: SaveProcessed: nil raw file")
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rawMeta, existing, err := lockRaw(ctx, tx, raw.ID)
		if err != nil {
			return err
		}
		if existing != 0 {
			id = existing
			return storage.ErrAlreadyProcessed
		}
		if processed.Pending {
			if err := s.consumePending(ctx, tx, processed.ObjectKey); err != nil {
				return err
			}
		}
		meta, err := fileMetadata(processed, "application/json")
		if err != nil {
			return err
		}
		if meta, err = meta.SetValue("raw_file_id", raw.ID); err != nil {
			return err
		}
		if meta, err = meta.SetValue("is_processed", true); err != nil {
			return err
		}
		f, err := insertRow(ctx, tx, processed, meta)
		if err != nil {
			return fmt.Errorf("insert processed row: %w", err)
		}
		if s.afterInsert != nil {
			if err := s.afterInsert(ctx, tx); err != nil {
				return err
			}
		}
		rawMeta = rawMeta.Set("processed_file_id", strconv.AppendInt(nil, f.ID, 10))
		if rawMeta, err = merge(rawMeta, rawPatch); err != nil {
			return err
		}
		if err := updateMetadata(ctx, tx, raw.ID, rawMeta); err != nil {
			return fmt.Errorf("update raw row: %w", err)
		}
		id = f.ID
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrAlreadyProcessed):
		s.log.DebugContext(ctx, "raw file already processed", "raw_file_id", raw.ID, "processed_file_id", id)
		return id, fmt.Errorf("%w: file %d -> %d", storage.ErrAlreadyProcessed, raw.ID, id)
	case errors.Is(err, storage.ErrNotFound):
		return 0, err
	case err != nil:
		return 0, fmt.Errorf("postgres: save processed file of %d: %w", raw.ID, err)
	}
	s.log.DebugContext(ctx, "processed file saved", "raw_file_id", raw.ID, "processed_file_id", id)
	return id, nil
}

// MarkFailed records a failed conversion on the raw row: patch (typically
// processing_info {"converted": false, "error": ...} and omics_type when
// known) is merged into its metadata, in order, and updated_at is bumped.
// If the raw row already links an existing processed row (an earlier
// delivery succeeded) nothing is changed and storage.ErrAlreadyProcessed
// is returned.
func (s *Store) MarkFailed(ctx context.Context, rawID int64, patch []storage.MetadataField) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		meta, existing, err := lockRaw(ctx, tx, rawID)
		if err != nil {
			return err
		}
		if existing != 0 {
			return fmt.Errorf("%w: file %d -> %d", storage.ErrAlreadyProcessed, rawID, existing)
		}
		if meta, err = merge(meta, patch); err != nil {
			return err
		}
		return updateMetadata(ctx, tx, rawID, meta)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrAlreadyProcessed) {
		return fmt.Errorf("postgres: mark file %d failed: %w", rawID, err)
	}
	return err
}

// FindProcessed returns the processed row the raw row links, storage.ErrNotFound
// when the raw row does not exist, ErrNotProcessed when it links no
// existing row. A task can call it first to skip work already done.
func (s *Store) FindProcessed(ctx context.Context, rawID int64) (*storage.File, error) {
	raw, err := s.GetFile(ctx, rawID)
	if err != nil {
		return nil, err
	}
	pid, ok := raw.ProcessedFileID()
	if !ok {
		return nil, fmt.Errorf("%w: file %d", ErrNotProcessed, rawID)
	}
	f, err := s.GetFile(ctx, pid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: file %d links missing row %d", ErrNotProcessed, rawID, pid)
	}
	return f, err
}
