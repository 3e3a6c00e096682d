// The "demo-seed" subcommand: prepares a scratch Omicsomics database and
// object store the way the FastAPI upload would fill them, for `make demo`
// and the end-to-end test. It prints the plan (one entry per stored raw
// file with the result the worker should produce) as JSON on stdout, the
// input of testdata/interop/e2e/e2e.py run. With --enqueue it also sends
// the tasks itself (our producer, for machines without the Python Celery)
// and prints each final status as the FastAPI status endpoint would.
package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/worker/tasks"
)

// planFile is one raw file of the plan.
type planFile struct {
	Name      string  `json:"name"`
	RawFileID int64   `json:"raw_file_id"`
	SampleID  *string `json:"sample_id"`       // null = sample_id=None, as the upload passes it
	Batch     bool    `json:"batch,omitempty"` // enqueue without sample_id, as batch-upload does
	Large     bool    `json:"large,omitempty"` // process_large_file_async
	Expect    expect  `json:"expect"`
}

// expect is what the worker must produce for a file.
type expect struct {
	Success     bool   `json:"success"`
	OmicsType   string `json:"omics_type,omitempty"`
	RecordCount *int   `json:"record_count,omitempty"`
	Error       string `json:"error,omitempty"`
	ErrorPrefix string `json:"error_prefix,omitempty"`
}

type plan struct {
	Files   []planFile `json:"files"`
	Timeout int        `json:"timeout"`
	UserID  int64      `json:"user_id"`
}

// seeder stores files like services/datafiles.create_datafile.
type seeder struct {
	files   *postgres.Store
	objects storage.ObjectStore
	keys    tasks.Keyring
	user    int64
	project int64
}

func newSeeder(ctx context.Context, files *postgres.Store, objects storage.ObjectStore, keys tasks.Keyring) (*seeder, error) {
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
	return &seeder{files: files, objects: objects, keys: keys, user: user, project: project}, nil
}

// store encrypts content for the user, puts it at a fresh sandbox key and
// inserts the raw row; it returns the plan entry with the expected outcome
// (computed by converting content in-process, as the worker will).
func (s *seeder) store(ctx context.Context, name string, content []byte) (planFile, error) {
	key, err := s.keys.UserKey(s.user)
	if err != nil {
		return planFile{}, err
	}
	objKey := storage.ObjectKey(s.project, s.user)
	up, err := storage.UploadEncrypted(ctx, s.objects, key, objKey, bytes.NewReader(content), int64(len(content)), contentTypeOf(name))
	if err != nil {
		return planFile{}, err
	}
	f, err := s.files.InsertRawFile(ctx, postgres.NewFile{
		Filename: name, ObjectKey: up.ObjectKey, Size: up.Size, Checksum: up.Checksum,
		ContentType: contentTypeOf(name), ProjectID: s.project, UploadedByID: s.user,
	})
	if err != nil {
		_ = s.objects.Delete(ctx, objKey)
		return planFile{}, err
	}
	ex, err := expectedOutcome(ctx, name, content, s.project)
	if err != nil {
		return planFile{}, err
	}
	return planFile{Name: name, RawFileID: f.ID, Expect: ex}, nil
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
func expectedOutcome(ctx context.Context, name string, content []byte, project int64) (expect, error) {
	res, err := processing.Convert(ctx, bytes.NewReader(content), io.Discard,
		processing.Options{Name: name, Size: int64(len(content)), ProjectID: project})
	if err != nil {
		return expect{}, err
	}
	if !res.Converted {
		why := res.Reason
		if why == "" && res.Err != nil {
			why = res.Err.Error()
		}
		return expect{Success: false, OmicsType: string(res.OmicsType), Error: "Processing failed: " + why}, nil
	}
	n := res.Records
	return expect{Success: true, OmicsType: string(res.OmicsType), RecordCount: &n}, nil
}

// seedDir stores every regular file of dir, in name order.
func (s *seeder) seedDir(ctx context.Context, dir string) ([]planFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, k int) bool { return entries[i].Name() < entries[k].Name() })
	var out []planFile
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || strings.EqualFold(e.Name(), "README.md") {
			continue
		}
		content, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		pf, err := s.store(ctx, e.Name(), content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, pf)
	}
	return out, nil
}

// recreateDatabase drops and creates the database named in dbURL,
// connecting to the server's "postgres" database (or adminDB) to do so.
func recreateDatabase(ctx context.Context, dbURL, adminDB string) error {
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

func runDemoSeed(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseDemoOptions(args, stderr, os.Getenv)
	if o == nil {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "omics-worker demo-seed: %v\n", err)
		return 1
	}
	if o.enqueue && o.planFile != "" {
		b, err := os.ReadFile(o.planFile)
		if err != nil {
			return fail(err)
		}
		var p plan
		if err := json.Unmarshal(b, &p); err != nil {
			return fail(fmt.Errorf("%s: %w", o.planFile, err))
		}
		if err := goEnqueueAndWatch(ctx, o.brokerURL, o.backendURL, p, o.queue, o.timeout, stdout, stderr); err != nil {
			return fail(err)
		}
		return 0
	}
	if o.recreate {
		if err := recreateDatabase(ctx, o.databaseURL, o.adminDB); err != nil {
			return fail(fmt.Errorf("recreate database: %w", err))
		}
	}
	files, err := postgres.Open(ctx, o.databaseURL)
	if err != nil {
		return fail(err)
	}
	defer files.Close()
	objects, err := storage.OpenObjectStore(ctx, o.objects)
	if err != nil {
		return fail(err)
	}
	keys, err := tasks.NewMasterKeyring(cmpOr(o.masterKey, tasks.DefaultMasterKey))
	if err != nil {
		return fail(err)
	}
	s, err := newSeeder(ctx, files, objects, keys)
	if err != nil {
		return fail(err)
	}
	pf, err := s.seedDir(ctx, o.dir)
	if err != nil {
		return fail(err)
	}
	p := plan{Files: pf, Timeout: int(o.timeout.Seconds()), UserID: s.user}
	if !o.enqueue {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		if err := enc.Encode(p); err != nil {
			return fail(err)
		}
		return 0
	}
	if err := goEnqueueAndWatch(ctx, o.brokerURL, o.backendURL, p, o.queue, o.timeout, stdout, stderr); err != nil {
		return fail(err)
	}
	return 0
}

// goEnqueueAndWatch is the fallback producer: it publishes
// process_file_async(raw_file_id=..., sample_id=None) like delay() would,
// polls the result backend and prints the status endpoint's responses.
func goEnqueueAndWatch(ctx context.Context, brokerURL, backendURL string, p plan, queue string, timeout time.Duration, stdout, stderr io.Writer) error {
	b, err := redistransport.NewBroker(brokerURL, redistransport.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	rb, err := redistransport.NewResultBackend(backendURL, redistransport.Config{})
	if err != nil {
		return err
	}
	defer rb.Close()
	ids := make([]string, len(p.Files))
	for i, f := range p.Files {
		ids[i] = pyfmt.NewUUID4().String()
		msg := &protocol.TaskMessage{ID: ids[i], Task: tasks.ProcessFileTask,
			Kwargs: map[string]any{"raw_file_id": f.RawFileID, "sample_id": nil}}
		env, err := protocol.EncodeTask(msg, protocol.PublishOptions{Queue: queue})
		if err != nil {
			return err
		}
		if err := b.Publish(ctx, queue, 0, env); err != nil {
			return err
		}
	}
	last := make([]string, len(ids))
	final := make([]*statusResp, len(ids))
	deadline := time.Now().Add(timeout)
	for done := 0; done < len(ids) && time.Now().Before(deadline); {
		for i, id := range ids {
			if final[i] != nil {
				continue
			}
			resp, err := statusResponse(ctx, rb, id)
			if err != nil {
				return err
			}
			errText := ""
			if resp.Error != nil {
				errText = *resp.Error
			}
			line := fmt.Sprintf("  %-28s %-8s %3v%%  %v %s", p.Files[i].Name, resp.State, orEmpty(resp.Progress), resp.Status, errText)
			if line != last[i] {
				fmt.Fprintln(stderr, line)
				last[i] = line
			}
			if s := resp.State; s == "SUCCESS" || s == "FAILURE" {
				final[i] = resp
				done++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := make([]map[string]any, len(ids))
	for i := range ids {
		out[i] = map[string]any{"name": p.Files[i].Name, "task_id": ids[i], "final": final[i]}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", " ")
	return enc.Encode(map[string]any{"tasks": out})
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

// statusResp is the status endpoint's response, in its key order.
type statusResp struct {
	State    string          `json:"state"`
	Status   any             `json:"status"`
	Progress any             `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *string         `json:"error,omitempty"`
}

// statusResponse applies the FastAPI status endpoint's branches (spec
// processing.md §8.1) to the stored meta.
func statusResponse(ctx context.Context, rb *redistransport.ResultBackend, id string) (*statusResp, error) {
	raw, err := rb.GetRaw(ctx, id)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return &statusResp{State: "PENDING", Status: "Task is waiting to be processed", Progress: 0}, nil
	}
	var m struct {
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	switch m.Status {
	case "STARTED", "PROGRESS":
		var info map[string]any
		_ = json.Unmarshal(m.Result, &info)
		r := &statusResp{State: m.Status, Status: "Processing...", Progress: 0}
		if v, ok := info["status"]; ok {
			r.Status = v
		}
		if v, ok := info["progress"]; ok {
			r.Progress = v
		}
		return r, nil
	case "SUCCESS":
		return &statusResp{State: m.Status, Status: "Processing complete", Progress: 100, Result: m.Result}, nil
	case "FAILURE":
		e := excStr(m.Result)
		return &statusResp{State: m.Status, Status: "Processing failed", Progress: 0, Error: &e}, nil
	}
	return &statusResp{State: m.Status, Status: excStr(m.Result)}, nil
}

// excStr is Python's str() of a rebuilt exception with one argument.
func excStr(raw json.RawMessage) string {
	var e protocol.ExceptionInfo
	if json.Unmarshal(raw, &e) == nil && len(e.Message) == 1 {
		if s, ok := e.Message[0].(string); ok {
			return s
		}
	}
	return string(raw)
}
