package storage

import (
	"context"
	"encoding/json"
	"time"

	"github.com/omicsomics/omics-worker/storage/internal/jsonobj"
)

// FileStore is the file-row contract: the data_files rows of the
// Omicsomics database and the durable record of uploads not yet committed
// (docs/storage.md). storage/postgres.Store implements it; the file task
// (worker/tasks) consumes it.
//
// Exactly-once effect: SaveProcessed and MarkFailed lock the raw row and,
// when its metadata already links an existing processed row, change
// nothing and return ErrAlreadyProcessed.
type FileStore interface {
	// GetFile returns a row; an error wrapping ErrNotFound when it does
	// not exist.
	GetFile(ctx context.Context, id int64) (*File, error)
	// SaveProcessed inserts the processed row and, in the same
	// transaction, merges processed_file_id and then rawPatch (in its
	// order) into the raw row's metadata. It returns the new row's id, or
	// the existing one with ErrAlreadyProcessed when the raw row already
	// links one; ErrObjectSettled when processed.Pending and the upload's
	// record was settled meanwhile.
	SaveProcessed(ctx context.Context, raw *File, processed NewFile, rawPatch []MetadataField) (int64, error)
	// MarkFailed merges patch (processing_info, and omics_type when
	// known) into the raw row's metadata; ErrAlreadyProcessed when the
	// raw row already links a processed row.
	MarkFailed(ctx context.Context, rawID int64, patch []MetadataField) error

	// The durable record of uploads not yet committed: recorded before
	// the upload, consumed by the commit (NewFile.Pending), settled by
	// Doom + delete + Forget. Every step is idempotent.

	// RecordPendingObject records key, about to be uploaded by taskID for
	// the raw row rawID.
	RecordPendingObject(ctx context.Context, rawID int64, taskID, key string) error
	// DoomPendingObject marks the record of key so that no commit can
	// link it; false when there is no record (committed, or settled).
	DoomPendingObject(ctx context.Context, key string) (bool, error)
	// ForgetPendingObject deletes the record of key (its object deleted).
	ForgetPendingObject(ctx context.Context, key string) error
	// PendingObjects lists at most limit records of rawID (0 = of every
	// raw row).
	PendingObjects(ctx context.Context, rawID int64, limit int) ([]PendingObject, error)
}

// MaxFilename is the length of data_files.filename (VARCHAR(512)), in
// characters (runes), as PostgreSQL counts them.
const MaxFilename = 512

// File is one data_files row. Metadata is the `json` column's exact text.
type File struct {
	ID           int64
	Filename     string
	ObjectKey    string
	Metadata     json.RawMessage
	Size         int64
	Checksum     string
	ProjectID    int64
	RunID        *int64
	UploadedByID int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// MetadataValue returns the raw JSON of a top-level metadata key.
func (f *File) MetadataValue(key string) (json.RawMessage, bool) {
	o, err := jsonobj.Parse(f.Metadata)
	if err != nil {
		return nil, false
	}
	return o.Get(key)
}

// ProcessedFileID returns the metadata's processed_file_id when it is a
// non-zero integer (the FastAPI app tests it for truthiness).
func (f *File) ProcessedFileID() (int64, bool) {
	o, err := jsonobj.Parse(f.Metadata)
	if err != nil {
		return 0, false
	}
	id, ok := o.Int64("processed_file_id")
	return id, ok && id != 0
}

// NewFile describes a row to insert.
type NewFile struct {
	Filename     string
	ObjectKey    string
	Size         int64  // plaintext length
	Checksum     string // lower-case hex SHA-256 of the plaintext
	ContentType  string // default application/json (processed) or application/octet-stream (raw)
	ProjectID    int64
	UploadedByID int64
	RunID        *int64
	// Pending (SaveProcessed only): ObjectKey was recorded with
	// RecordPendingObject; the commit consumes that record and is refused
	// with ErrObjectSettled when it was settled meanwhile.
	Pending bool
}

// MetadataField is one top-level key of a row's metadata with its value,
// already JSON-encoded (encoded once, by the caller; the store checks it
// and re-renders the whole object in json.dumps' style). A patch is a
// list of fields applied in order: an existing key keeps its position (as
// a Python dict assignment), a new one is appended.
type MetadataField struct {
	Key   string
	Value json.RawMessage
}

// PendingObject is one record of an upload not yet committed.
type PendingObject struct {
	ObjectKey string
	RawFileID int64
	TaskID    string
	Doomed    bool
	// Age is measured with the database's clock.
	Age time.Duration
}

// StringField returns the field key with the JSON string s as value.
func StringField(key, s string) MetadataField {
	b, _ := json.Marshal(s) // a string always encodes
	return MetadataField{Key: key, Value: b}
}
