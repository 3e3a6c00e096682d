package omicsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/processing"
	_ "github.com/omicsomics/omics-worker/processing/all" // Expect needs every converter
	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/postgres"
)

// PlanFile is one raw file of the plan.
type PlanFile struct {
	Name      string  `json:"name"`
	RawFileID int64   `json:"raw_file_id"`
	SampleID  *string `json:"sample_id"`       // null = sample_id=None, as the upload passes it
	Batch     bool    `json:"batch,omitempty"` // enqueue without sample_id, as batch-upload does
	Large     bool    `json:"large,omitempty"` // process_large_file_async
	Expect    Expect  `json:"expect"`
}

// Expect is what the worker must produce for a file.
type Expect struct {
	Success     bool   `json:"success"`
	OmicsType   string `json:"omics_type,omitempty"`
	RecordCount *int   `json:"record_count,omitempty"`
	Error       string `json:"error,omitempty"`
	ErrorPrefix string `json:"error_prefix,omitempty"`
}

// Plan is what demo-seed prints: the stored files with their expected
// outcomes, the input of testdata/interop/e2e/e2e.py.
type Plan struct {
	Files   []PlanFile `json:"files"`
	Timeout int        `json:"timeout"`
	UserID  int64      `json:"user_id"`
}

// Keyring gives a user's data key (worker/tasks.MasterKeyring does).
type Keyring interface {
	UserKey(userID int64) ([]byte, error)
}

// Seeder stores files like services/datafiles.create_datafile.
type Seeder struct {
	files   *postgres.Store
	objects storage.ObjectStore
	keys    Keyring
	user    int64
	project int64
}

// NewSeeder creates the schema when missing, then a fresh user and a
// project owned by it, which the stored files belong to.
func NewSeeder(ctx context.Context, files *postgres.Store, objects storage.ObjectStore, keys Keyring) (*Seeder, error) {
	if err := files.CreateSchema(ctx); err != nil {
		return nil, err
	}
	user, err := files.CreateUser(ctx, fmt.Sprintf("demo-%d@example.org", time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	project, err := files.CreateProject(ctx, "omics-worker demo", user)
	if err != nil {
		return nil, err
	}
	return &Seeder{files: files, objects: objects, keys: keys, user: user, project: project}, nil
}

// UserID is the user the files are uploaded by.
func (s *Seeder) UserID() int64 { return s.user }

// ForUser returns a Seeder that uploads into the same project as user
// (an existing users row).
func (s *Seeder) ForUser(user int64) *Seeder {
	c := *s
	c.user = user
	return &c
}

// Store encrypts content for the user, puts it at a fresh sandbox key and
// inserts the raw row; it returns the plan entry with the expected outcome
// (computed by converting content in-process, as the worker will).
func (s *Seeder) Store(ctx context.Context, name string, content []byte) (PlanFile, error) {
	key, err := s.keys.UserKey(s.user)
	if err != nil {
		return PlanFile{}, err
	}
	objKey := storage.ObjectKey(s.project, s.user)
	up, err := storage.UploadEncrypted(ctx, s.objects, key, objKey, bytes.NewReader(content), int64(len(content)), contentTypeOf(name))
	if err != nil {
		return PlanFile{}, err
	}
	f, err := s.files.InsertRawFile(ctx, storage.NewFile{
		Filename: name, ObjectKey: up.ObjectKey, Size: up.Size, Checksum: up.Checksum,
		ContentType: contentTypeOf(name), ProjectID: s.project, UploadedByID: s.user,
	})
	if err != nil {
		_ = s.objects.Delete(ctx, objKey)
		return PlanFile{}, err
	}
	ex, err := expectedOutcome(ctx, name, content, s.project)
	if err != nil {
		return PlanFile{}, err
	}
	return PlanFile{Name: name, RawFileID: f.ID, Expect: ex}, nil
}

func contentTypeOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return "text/csv"
	case ".tsv", ".txt", ".vcf", ".bed", ".gtf", ".gff", ".gff3", ".fasta", ".fa", ".fastq", ".mgf":
		return "text/plain"
	case ".mzml", ".mzxml":
		return "application/xml"
	case ".gz":
		return "application/gzip"
	}
	return "application/octet-stream"
}

// expectedOutcome converts content with the processing engine and says
// what the task must report.
func expectedOutcome(ctx context.Context, name string, content []byte, project int64) (Expect, error) {
	res, err := processing.Convert(ctx, bytes.NewReader(content), io.Discard,
		processing.Options{Name: name, Size: int64(len(content)), ProjectID: project})
	if err != nil {
		return Expect{}, err
	}
	if !res.Converted {
		why := res.Reason
		if why == "" && res.Err != nil {
			why = res.Err.Error()
		}
		return Expect{Success: false, OmicsType: string(res.OmicsType), Error: "Processing failed: " + why}, nil
	}
	n := res.Records
	return Expect{Success: true, OmicsType: string(res.OmicsType), RecordCount: &n}, nil
}

// SeedDir stores every regular file of dir, in name order (dot files and
// README.md excepted).
func (s *Seeder) SeedDir(ctx context.Context, dir string) ([]PlanFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, k int) bool { return entries[i].Name() < entries[k].Name() })
	var out []PlanFile
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || strings.EqualFold(e.Name(), "README.md") {
			continue
		}
		content, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		pf, err := s.Store(ctx, e.Name(), content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, pf)
	}
	return out, nil
}

// RecreateDatabase drops and creates the database named in dbURL (the
// postgresql+asyncpg:// form accepted), connecting to the server's
// adminDB database (e.g. "postgres") to do so.
func RecreateDatabase(ctx context.Context, dbURL, adminDB string) error {
	u, err := postgres.ParseDatabaseURL(dbURL)
	if err != nil {
		return err
	}
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(pu.Path, "/")
	if name == "" {
		return errors.New("DATABASE_URL names no database")
	}
	pu.Path = "/" + adminDB
	conn, err := pgx.Connect(ctx, pu.String())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", adminDB, mask.Error(err))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
