package tasks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/envelope"
	"github.com/omicsomics/omics-worker/worker"
)

// Tuning adjusts the pipeline per task. The zero value is the setting of
// process_file_async.
type Tuning struct {
	// SpoolMemory is the converter's in-memory record spool before it
	// moves to a temporary file (0 = processing.DefaultSpoolMemory, 4 MiB;
	// negative = always a file).
	SpoolMemory int
	// ProgressInterval overrides Config.ProgressInterval when not zero.
	ProgressInterval time.Duration
}

// LargeFileTuning is the setting of process_large_file_async: records are
// spooled to disk from the first byte and progress is reported at most
// every 2 s, so memory stays at the fixed buffers whatever the size.
var LargeFileTuning = Tuning{SpoolMemory: -1, ProgressInterval: 2 * time.Second}

// Reporter stores intermediate task states (*worker.Task satisfies it).
type Reporter interface {
	UpdateState(ctx context.Context, state string, meta any) error
}

// Request is one task call.
type Request struct {
	// RawFileID is the raw_file_id argument.
	RawFileID int64
	// SampleID is the sample_id argument ("" = None: the default
	// sample_<project_id>_<stem>).
	SampleID string
	// TaskID is used in logs only.
	TaskID string
}

// Processor runs the pipeline. Build it with New.
type Processor struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns a Processor.
func New(cfg Config) (*Processor, error) {
	if cfg.Files == nil || cfg.Objects == nil || cfg.Keys == nil || cfg.IsTransient == nil {
		return nil, errors.New("tasks: Config needs Files, Objects, Keys and IsTransient")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = 500 * time.Millisecond
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StaleAge <= 0 {
		cfg.StaleAge = TimeLimit
	}
	return &Processor{cfg: cfg, log: cfg.Logger}, nil
}

func (p *Processor) maxRetries() int {
	switch {
	case p.cfg.MaxRetries == 0:
		return 3
	case p.cfg.MaxRetries < 0:
		return 0
	}
	return p.cfg.MaxRetries
}

// Handler returns the worker handler of the task with tuning tun.
func (p *Processor) Handler(tun Tuning) worker.Handler {
	return func(ctx context.Context, t *worker.Task) (any, error) {
		rawID, err := rawFileID(t)
		if err != nil {
			return nil, err
		}
		sampleID, err := t.StringArgOr("sample_id", "")
		if err != nil {
			return nil, err
		}
		res, err := p.Process(ctx, t, Request{RawFileID: rawID, SampleID: sampleID, TaskID: t.ID}, tun)
		if err != nil {
			if worker.IsTransient(err) {
				p.log.Warn("transient error", "task_id", t.ID, "raw_file_id", rawID, "retries", t.Retries, "err", err)
			}
			return nil, err
		}
		return res, nil
	}
}

// infra classifies an infrastructure error of operation op on the
// database (db) or object storage: a ConnectionError marked
// worker.Transient (the runtime retries it, then records it as the
// FAILURE) for an outage, else a RuntimeError.
func (p *Processor) infra(err error, db bool, format string, a ...any) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	op := fmt.Sprintf(format, a...)
	what := "object storage"
	if db {
		what = "database"
	}
	// One line for the UI: driver errors can span several (pgx lists
	// every address it tried).
	detail := strings.Join(strings.Fields(err.Error()), " ")
	if p.cfg.IsTransient(err) {
		return worker.Transient(&worker.PyError{Type: "ConnectionError", Module: "builtins", Err: err,
			Args: []any{fmt.Sprintf("%s unavailable while %s: %s", what, op, detail)}})
	}
	return &worker.PyError{Type: "RuntimeError", Module: "builtins", Err: err,
		Args: []any{fmt.Sprintf("%s error while %s: %s", what, op, detail)}}
}

// run is the state of one task run.
type run struct {
	p   *Processor
	rep Reporter
	req Request
	tun Tuning
	log *slog.Logger
	raw *storage.File
	t0  time.Time
}

func (r *run) report(ctx context.Context, state string, progress int, status string) {
	r.reportMeta(ctx, state, Progress{Status: status, Progress: progress})
}

func (r *run) reportMeta(ctx context.Context, state string, meta Progress) {
	if r.rep == nil {
		return
	}
	if err := r.rep.UpdateState(ctx, state, meta); err != nil {
		// The result backend is the broker's Redis: if it is gone the
		// final state will fail too and the message will be redelivered.
		r.log.Warn("could not store progress", "state", state, "progress", meta.Progress, "err", err)
	}
}

// Process runs the pipeline for one call and returns the SUCCESS value,
// or an error: a *worker.PyError for a permanent failure (the FAILURE the
// client sees), a *worker.TransientError wrapping the *worker.PyError of
// an outage (retried by the runtime), or a context error.
func (p *Processor) Process(ctx context.Context, rep Reporter, req Request, tun Tuning) (*Result, error) {
	r := &run{p: p, rep: rep, req: req, tun: tun, t0: time.Now(),
		log: p.log.With("task_id", req.TaskID, "raw_file_id", req.RawFileID)}
	res, err := r.process(ctx)
	var de *doneError
	if errors.As(err, &de) {
		return de.res, nil
	}
	return res, err
}

func (r *run) process(ctx context.Context) (*Result, error) {
	p, req := r.p, r.req
	r.report(ctx, StateStarted, 0, StatusStarting)

	r.report(ctx, StateProgress, 10, StatusLoading)
	raw, err := p.cfg.Files.GetFile(ctx, req.RawFileID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, worker.NewPyError("ValueError", fmt.Sprintf("File %d not found", req.RawFileID))
	}
	if err != nil {
		return nil, p.infra(err, true, "loading file %d", req.RawFileID)
	}
	r.raw = raw
	if res, ok, err := r.alreadyDone(ctx, raw); err != nil || ok {
		return res, err
	}

	r.report(ctx, StateProgress, 20, StatusDetecting)
	key, err := p.cfg.Keys.UserKey(raw.UploadedByID)
	if err != nil {
		return nil, worker.PyErrorf("ValueError", "no key for user %d: %w", raw.UploadedByID, err)
	}
	body, blobSize, err := p.cfg.Objects.Get(ctx, raw.ObjectKey)
	if errors.Is(err, storage.ErrBucketNotFound) { // the worker's configuration, not the file
		return nil, p.infra(err, false, "reading object %s of file %d", raw.ObjectKey, raw.ID)
	}
	if errors.Is(err, storage.ErrObjectNotFound) {
		msg := fmt.Sprintf("Stored object of file %d not found: %s", raw.ID, raw.ObjectKey)
		return nil, r.failPermanent(ctx, worker.NewPyError("FileNotFoundError", msg), nil, "")
	}
	if err != nil {
		return nil, p.infra(err, false, "reading object %s of file %d", raw.ObjectKey, raw.ID)
	}
	defer body.Close()
	return r.convertAndSave(ctx, key, body, blobSize)
}

// alreadyDone implements the exactly-once effect: when the raw row already
// links an existing processed row (an earlier delivery of this task, or
// the synchronous upload path, got there first), succeed with that row.
func (r *run) alreadyDone(ctx context.Context, raw *storage.File) (*Result, bool, error) {
	pid, ok := raw.ProcessedFileID()
	if !ok {
		return nil, false, nil
	}
	if _, err := r.p.cfg.Files.GetFile(ctx, pid); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			r.log.Warn("raw file links a missing processed row; processing again", "processed_file_id", pid)
			return nil, false, nil
		}
		return nil, false, r.p.infra(err, true, "loading processed file %d", pid)
	}
	res := &Result{Success: true, ProcessedFileID: pid}
	if v, ok := raw.MetadataValue("omics_type"); ok {
		_ = json.Unmarshal(v, &res.OmicsType)
	}
	if v, ok := raw.MetadataValue("processing_info"); ok {
		var info struct {
			RecordCount int64  `json:"record_count"`
			OmicsType   string `json:"omics_type"`
		}
		if json.Unmarshal(v, &info) == nil {
			res.RecordCount = info.RecordCount
			if res.OmicsType == "" {
				res.OmicsType = info.OmicsType
			}
		}
	}
	r.log.Info("raw file already processed; not processing again", "processed_file_id", pid)
	r.settleEarlier(ctx)
	r.report(ctx, StateProgress, 100, StatusComplete)
	return res, true, nil
}

// failPermanent records a permanent failure on the raw row (processing_info
// with converted=false, and omics_type when known) and returns pe. info is
// the processing_info to store (nil = {"original_filename", "converted":
// false, "error": message of pe}).
func (r *run) failPermanent(ctx context.Context, pe *worker.PyError, info json.RawMessage, omics string) error {
	if info == nil {
		var err error
		info, err = json.Marshal(struct {
			OriginalFilename string `json:"original_filename"`
			Converted        bool   `json:"converted"`
			Error            string `json:"error"`
		}{r.raw.Filename, false, pe.Args[0].(string)})
		if err != nil {
			return pe
		}
	}
	err := r.p.cfg.Files.MarkFailed(ctx, r.raw.ID, failurePatch(info, omics))
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrAlreadyProcessed):
		// A concurrent delivery succeeded meanwhile: report its result.
		raw, gerr := r.p.cfg.Files.GetFile(ctx, r.raw.ID)
		if gerr == nil {
			if res, ok, derr := r.alreadyDone(ctx, raw); derr == nil && ok {
				return &doneError{res}
			}
		}
	case errors.Is(err, storage.ErrNotFound):
		return worker.NewPyError("ValueError", fmt.Sprintf("File %d not found", r.raw.ID))
	default:
		return r.p.infra(err, true, "recording the failure of file %d (%s)", r.raw.ID, pe.Error())
	}
	r.log.Info("processing failed", "err", pe.Error())
	return pe
}

// doneError carries a success discovered while failing (a concurrent
// delivery finished first); Process turns it back into a result.
type doneError struct{ res *Result }

func (e *doneError) Error() string { return "already processed" }

func (r *run) convertAndSave(ctx context.Context, key []byte, body io.Reader, blobSize int64) (*Result, error) {
	p, raw := r.p, r.raw
	decryptFailed := func(err error) error {
		why := "wrong key or tampered data"
		if errors.Is(err, envelope.ErrBlobTooShort) {
			why = "encrypted blob too short"
		} else if !errors.Is(err, envelope.ErrDecrypt) {
			why = err.Error()
		}
		msg := fmt.Sprintf("Decryption of file %d failed: %s", raw.ID, why)
		return r.failPermanent(ctx, worker.NewPyError("ValueError", msg), nil, "")
	}
	dr, err := envelope.NewDecryptReader(key, body, blobSize)
	if err != nil {
		return nil, decryptFailed(err)
	}

	r.report(ctx, StateProgress, progressConvertFrom, StatusConverting)
	plainSize := blobSize - envelope.Overhead
	prog := newProgressReporter(r, plainSize, p.cfg.Now)
	opts := processing.Options{
		Name:        raw.Filename,
		Size:        plainSize,
		SampleID:    r.req.SampleID,
		ProjectID:   raw.ProjectID,
		TempDir:     p.cfg.TempDir,
		SpoolMemory: r.tun.SpoolMemory,
		Progress:    func(done, total int64) { prog.update(ctx, done, total) },
	}
	if prog.interval(p.cfg.ProgressInterval) < 0 {
		opts.Progress = nil
	}
	// Stream: converters whose head is known before their first record
	// (VCF, matrices) write the document straight to its destination
	// instead of spooling the records first.
	opts.Stream = true

	// The document goes either straight into the upload (streamed, from
	// streamMinInput bytes of input; stream.go), or into a temporary
	// document (in memory up to spillMemory, else a temporary file)
	// uploaded once the conversion succeeded. Either way a failed
	// conversion's partial document is never stored.
	var (
		objKey string          // the recorded pending upload ("" = none yet)
		up     *streamedUpload // the streamed upload in flight
		out    *spillDoc       // the temporary document (sequential path)
		bw     *bufio.Writer
		w      io.Writer
	)
	sequential := func() {
		out = newSpillDoc(p.cfg.TempDir, spillMemory)
		bw = bufio.NewWriterSize(out, 256<<10)
		w = bw
	}
	defer func() {
		if out != nil {
			out.Close()
		}
	}()
	if plainSize >= streamMinInput {
		// Record the key durably BEFORE the upload begins: whatever
		// happens to this run or the database from here on, a later run
		// of this raw file or Sweep finds the object and settles it
		// (pending.go).
		objKey = storage.ObjectKey(raw.ProjectID, raw.UploadedByID)
		if err := p.cfg.Files.RecordPendingObject(ctx, raw.ID, r.req.TaskID, objKey); err != nil {
			return nil, p.infra(err, true, "recording the upload of the processed file of file %d", raw.ID)
		}
		up = startUpload(ctx, p.cfg.Objects, key, objKey)
		w = up
	} else {
		sequential()
	}
	// drop ends a run that stores nothing: the streamed upload is
	// abandoned (its partial object deleted) and the pending record, if
	// any, dropped. It returns the upload's own error, if it failed.
	drop := func() error {
		var uerr error
		if up != nil {
			uerr = up.abort()
		}
		switch {
		case objKey == "":
		case up != nil && uerr != nil:
			r.dropFailedUpload(objKey, uerr)
		default:
			r.discard(objKey)
		}
		return uerr
	}

	conv, cerr := processing.Convert(ctx, dr, w, opts)
	if errors.Is(cerr, processing.ErrHeadChanged) && ctx.Err() == nil {
		// Rare (a VCF with a ##fileformat= line after its first record):
		// read the object again and convert without streaming into a
		// temporary document. A streamed upload is abandoned first (its
		// partial object deleted); its key stays recorded and is used
		// for the upload of the new document.
		r.log.Info("document head changed after streaming began; converting again without streaming")
		if up != nil {
			_ = up.abort()
			up = nil
			sequential()
		}
		var body2 io.Closer
		dr, body2, cerr = r.reopen(ctx, key, out, bw)
		if cerr != nil {
			_ = drop()
			return nil, cerr
		}
		defer body2.Close()
		opts.Stream = false
		conv, cerr = processing.Convert(ctx, dr, bw, opts)
	}
	// The plaintext is authenticated only at the end of the blob: read
	// what the converter left so that a wrong key or a tampered blob is
	// always reported as such, whatever the converter made of it.
	var derr error
	if !dr.Verified() && ctx.Err() == nil {
		_, derr = io.Copy(io.Discard, dr)
	}
	if cerr != nil || derr != nil || ctx.Err() != nil || conv == nil || !conv.Converted {
		uerr := drop()
		// Which side failed first: when the streamed upload failed by
		// itself (the store is down) the converter's write error is its
		// consequence, and the outage is what to report, as on the
		// sequential path's upload.
		stopped := stoppedByUpload(cerr) || conv != nil && stoppedByUpload(conv.Err)
		switch {
		case isDecryptErr(cerr):
			return nil, decryptFailed(cerr)
		case isDecryptErr(derr):
			return nil, decryptFailed(derr)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case stopped && uerr != nil:
			return nil, p.infra(uerr, false, "uploading the processed file of file %d", raw.ID)
		case cerr != nil:
			return nil, r.streamErr(cerr)
		case derr != nil:
			return nil, r.streamErr(derr)
		}
	}
	omics := string(conv.OmicsType)
	info, err := fieldsJSON(conv.ProcessingInfo)
	if err != nil {
		_ = drop()
		return nil, worker.PyErrorf("RuntimeError", "encoding processing_info: %w", err)
	}
	if !conv.Converted {
		why := conv.Reason
		if why == "" && conv.Err != nil {
			why = conv.Err.Error()
		}
		return nil, r.failPermanent(ctx, worker.NewPyError("ValueError", "Processing failed: "+why), info, omics)
	}

	tConverted := time.Now()
	r.report(ctx, StateProgress, progressConvertTo, StatusSaving)
	size := conv.BytesOut
	var up2 storage.Uploaded
	if up != nil {
		up2, err = up.finish()
		if err == nil && up2.Size != size {
			// Cannot happen (the converter counts what it writes): an
			// internal error, the stored object is discarded.
			r.discard(objKey)
			return nil, worker.PyErrorf("RuntimeError", "processed file of file %d: %d bytes uploaded, %d written", raw.ID, up2.Size, size)
		}
	} else {
		if err := bw.Flush(); err != nil {
			_ = drop()
			return nil, p.localFault(err, "writing the processed document of file %d", raw.ID)
		}
		if err := out.Rewind(); err != nil {
			_ = drop()
			return nil, p.localFault(err, "reading the processed document of file %d", raw.ID)
		}
		if objKey == "" {
			objKey = storage.ObjectKey(raw.ProjectID, raw.UploadedByID)
			// Record the key durably BEFORE the upload (see above).
			if err := p.cfg.Files.RecordPendingObject(ctx, raw.ID, r.req.TaskID, objKey); err != nil {
				return nil, p.infra(err, true, "recording the upload of the processed file of file %d", raw.ID)
			}
		}
		up2, err = storage.UploadEncrypted(ctx, p.cfg.Objects, key, objKey, out, size, "application/json")
	}
	if err != nil {
		r.dropFailedUpload(objKey, err)
		return nil, p.infra(err, false, "uploading the processed file of file %d", raw.ID)
	}
	tUploaded := time.Now()
	pname, cut := processedName(raw.Filename)
	if cut {
		r.log.Warn("processed file name shortened to fit data_files.filename", "filename", pname)
	}
	nf := storage.NewFile{
		Filename:     pname,
		ObjectKey:    up2.ObjectKey,
		Size:         up2.Size,
		Checksum:     up2.Checksum,
		ContentType:  "application/json",
		ProjectID:    raw.ProjectID,
		UploadedByID: raw.UploadedByID,
		Pending:      true,
	}
	patch := []storage.MetadataField{{Key: "processing_info", Value: info}, storage.StringField("omics_type", omics)}
	id, err := r.commit(ctx, nf, patch)
	if err != nil {
		return nil, err
	}
	r.settleEarlier(ctx)
	r.report(ctx, StateProgress, 100, StatusComplete)
	now := time.Now()
	// With the streamed upload, "convert" includes the upload that ran
	// alongside and "upload" is only what was left after the conversion.
	r.log.Info("file processed", "processed_file_id", id, "omics_type", omics, "records", conv.Records,
		"bytes_in", conv.BytesIn, "bytes_out", size, "streamed", up != nil, "convert", tConverted.Sub(r.t0),
		"upload", tUploaded.Sub(tConverted), "save", now.Sub(tUploaded))
	return &Result{Success: true, ProcessedFileID: id, OmicsType: omics, RecordCount: int64(conv.Records)}, nil
}

// reopen reads the raw object again for a second conversion and empties
// the temporary document out (written through bw). It returns the new
// decrypting reader and the object body to close, or the task's error.
func (r *run) reopen(ctx context.Context, key []byte, out *spillDoc, bw *bufio.Writer) (*envelope.DecryptReader, io.Closer, error) {
	p, raw := r.p, r.raw
	if err := out.Reset(); err != nil {
		return nil, nil, p.localFault(err, "rewriting the processed document of file %d", raw.ID)
	}
	bw.Reset(out)
	body, blobSize, err := p.cfg.Objects.Get(ctx, raw.ObjectKey)
	if err != nil {
		return nil, nil, p.infra(err, false, "reading object %s of file %d", raw.ObjectKey, raw.ID)
	}
	dr, err := envelope.NewDecryptReader(key, body, blobSize)
	if err != nil {
		body.Close()
		return nil, nil, p.infra(err, false, "reading object %s of file %d", raw.ObjectKey, raw.ID)
	}
	return dr, body, nil
}

// Committer is implemented by *worker.Task: it runs the step that makes
// the task's effect permanent so that it and the hard time limit decide in
// one place (worker.Task.Commit). A Reporter without it commits directly.
type Committer interface {
	Commit(ctx context.Context, fn func(ctx context.Context) error) error
}

// commitTimeout bounds the commit step (it is not cancelled by time
// limits once begun, see worker.Task.Commit).
const commitTimeout = time.Minute

// commit runs SaveProcessed for the uploaded object nf.ObjectKey through
// the runtime's commit gate and settles the object whenever the outcome
// is not a commit. It returns the processed row's id (the winner's on a
// concurrent delivery) or the task's error.
func (r *run) commit(ctx context.Context, nf storage.NewFile, patch []storage.MetadataField) (int64, error) {
	p, raw, objKey := r.p, r.raw, nf.ObjectKey
	var (
		id      int64
		doomed  bool  // the record is doomed: no commit links objKey
		unknown error // the database could not say whether it committed
	)
	save := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, commitTimeout)
		defer cancel()
		var err error
		id, err = p.cfg.Files.SaveProcessed(ctx, raw, nf, patch)
		if err == nil || errors.Is(err, storage.ErrAlreadyProcessed) || errors.Is(err, storage.ErrObjectSettled) ||
			errors.Is(err, storage.ErrNotFound) {
			return err // definite outcomes
		}
		// The error may have hit the COMMIT's reply. The pending record
		// decides: it exists exactly when the transaction did not commit.
		id, doomed, unknown = r.resolve(objKey)
		if id != 0 {
			r.log.Warn("the save reported an error but committed", "processed_file_id", id, "err", err)
			return nil
		}
		return err
	}
	var err error
	if c, ok := r.rep.(Committer); ok {
		err = c.Commit(ctx, save)
	} else {
		err = save(ctx)
	}
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, worker.ErrTaskFinished):
		// The hard time limit won before the commit began: nothing is
		// committed, the runtime recorded the FAILURE.
		r.discard(objKey)
		return 0, err
	case errors.Is(err, storage.ErrAlreadyProcessed) && id != 0:
		r.log.Info("a concurrent delivery saved the processed file first; discarding ours", "processed_file_id", id)
		r.discard(objKey)
		return id, nil
	case errors.Is(err, storage.ErrObjectSettled):
		// A clean-up presumed this run dead and removed (or is removing)
		// the upload: report the file's result if another run processed
		// it meanwhile, else run again.
		r.discard(objKey)
		if cur, gerr := p.cfg.Files.GetFile(ctx, raw.ID); gerr == nil {
			if res, ok, derr := r.alreadyDone(ctx, cur); derr == nil && ok {
				return 0, &doneError{res}
			}
		}
		return 0, worker.Transient(worker.NewPyError("RuntimeError",
			fmt.Sprintf("the processed file of file %d was removed by a clean-up before it was saved; retrying", raw.ID)))
	case errors.Is(err, storage.ErrNotFound):
		r.discard(objKey)
		return 0, worker.NewPyError("ValueError", fmt.Sprintf("File %d not found", raw.ID))
	}
	switch {
	case doomed:
		r.deleteAndForget(objKey)
	case unknown != nil:
		r.log.Warn("the database is unreachable after the failed save: the uploaded object stays recorded as pending; "+
			"the retry of this task, a later run of this file or the sweep deletes it",
			"object_key", objKey, "err", unknown)
	}
	return 0, p.infra(err, true, "saving the processed file of file %d", raw.ID)
}

// resolve finds out after an ambiguous SaveProcessed error whether objKey
// was committed: it dooms the pending record (present = not committed;
// doomed = true, the object may be deleted), else looks for the raw row's
// link to a row holding objKey (id). unknown is set when the database
// cannot tell.
func (r *run) resolve(objKey string) (id int64, doomed bool, unknown error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	found, err := r.p.cfg.Files.DoomPendingObject(ctx, objKey)
	if err != nil {
		return 0, false, err
	}
	if found {
		return 0, true, nil
	}
	raw, err := r.p.cfg.Files.GetFile(ctx, r.raw.ID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return 0, false, nil
		}
		return 0, false, err
	}
	if pid, ok := raw.ProcessedFileID(); ok {
		f, err := r.p.cfg.Files.GetFile(ctx, pid)
		if err == nil && f.ObjectKey == objKey {
			return pid, false, nil
		}
	}
	return 0, false, nil // settled by another run or Sweep
}

// discard deletes this run's own upload after a definite non-commit
// (refused, rolled back, or never attempted: no row can link the key)
// and drops its pending record.
func (r *run) discard(objKey string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.p.cfg.Objects.Delete(ctx, objKey); err != nil {
		r.log.Error("could not delete the uploaded object; it stays recorded as pending", "object_key", objKey, "err", err)
		return
	}
	r.forget(ctx, objKey)
}

// forget drops the pending record of this run's upload once its object is
// gone: doom and forget it (settle would delete the object a second
// time).
func (r *run) forget(ctx context.Context, objKey string) {
	_, err := r.p.cfg.Files.DoomPendingObject(ctx, objKey)
	if err == nil {
		err = r.p.cfg.Files.ForgetPendingObject(ctx, objKey)
	}
	if err != nil {
		r.log.Warn("could not drop the pending record of the deleted object; a later run or the sweep does", "object_key", objKey, "err", err)
	}
}

// dropFailedUpload drops the record of an upload that UploadEncrypted
// gave up (err is its error): it deleted the object itself, unless err
// says it could not (then discard deletes it).
func (r *run) dropFailedUpload(objKey string, err error) {
	if errors.Is(err, storage.ErrUploadLeftover) {
		r.discard(objKey)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.forget(ctx, objKey)
}

// deleteAndForget deletes a doomed object and its record.
func (r *run) deleteAndForget(objKey string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.p.settleDoomed(ctx, objKey); err != nil {
		r.log.Warn("could not delete the uploaded object yet; it stays recorded as pending", "object_key", objKey, "err", err)
		return
	}
	r.log.Info("deleted the uploaded object of the failed save", "object_key", objKey)
}

// settleEarlier settles every pending upload of this raw file, once the
// file is processed (its own commit, or found already processed): no
// other upload of it can be committed any more, so what an earlier attempt
// left (a failed save, a worker that died) is deleted, and a concurrent
// delivery still uploading gets ErrAlreadyProcessed at its commit and
// deletes its own object. Before that, uploads of runs that may be alive
// are left alone (doomed and stale ones are the sweep's).
func (r *run) settleEarlier(ctx context.Context) {
	recs, err := r.p.cfg.Files.PendingObjects(ctx, r.raw.ID, 100)
	if err != nil {
		r.log.Warn("could not list the pending uploads of this file", "err", err)
		return
	}
	for _, rec := range recs {
		if err := r.p.settle(ctx, rec.ObjectKey); err != nil {
			r.log.Warn("could not settle a pending upload", "object_key", rec.ObjectKey, "err", err)
			continue
		}
		r.log.Info("deleted the uncommitted upload of an earlier run", "object_key", rec.ObjectKey, "task", rec.TaskID)
	}
}

// settle deletes an uncommitted upload: doom its record (from then on no
// commit can link the key), delete the object, forget the record. Every
// step is idempotent; after an error the record stays for a later try. A
// key without a record (committed) is left alone.
func (p *Processor) settle(ctx context.Context, key string) error {
	found, err := p.cfg.Files.DoomPendingObject(ctx, key)
	if err != nil || !found {
		return err
	}
	return p.settleDoomed(ctx, key)
}

func (p *Processor) settleDoomed(ctx context.Context, key string) error {
	if err := p.cfg.Objects.Delete(ctx, key); err != nil {
		return err
	}
	return p.cfg.Files.ForgetPendingObject(ctx, key)
}

// Sweep settles pending uploads of any raw file that are doomed or older
// than olderThan (<= 0: Config.StaleAge): what dead runs left behind. The
// worker runs it at start and periodically; it returns how many it
// deleted. Live uploads younger than the age are left to their runs.
func (p *Processor) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		olderThan = p.cfg.StaleAge
	}
	recs, err := p.cfg.Files.PendingObjects(ctx, 0, 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rec := range recs {
		if !rec.Doomed && rec.Age < olderThan {
			continue
		}
		if err := p.settle(ctx, rec.ObjectKey); err != nil {
			return n, fmt.Errorf("settling %s: %w", rec.ObjectKey, err)
		}
		p.log.Info("sweep: deleted an uncommitted upload", "object_key", rec.ObjectKey, "raw_file_id", rec.RawFileID, "task", rec.TaskID)
		n++
	}
	return n, nil
}

// streamErr classifies an error of Convert that is not about the file's
// content: reading the object or writing the temporary document.
func (r *run) streamErr(err error) error {
	if isLocalFault(err) {
		return r.p.localFault(err, "converting file %d", r.raw.ID)
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return worker.PyErrorf("OSError", "processing file %d: %w", r.raw.ID, err)
	}
	return r.p.infra(err, false, "reading object %s of file %d", r.raw.ObjectKey, r.raw.ID)
}

func isDecryptErr(err error) bool {
	return errors.Is(err, envelope.ErrDecrypt) || errors.Is(err, envelope.ErrBlobTooShort)
}

// failurePatch is what a failed run writes on the raw row:
// processing_info, then omics_type when known.
func failurePatch(info json.RawMessage, omics string) []storage.MetadataField {
	patch := []storage.MetadataField{{Key: "processing_info", Value: info}}
	if omics != "" {
		patch = append(patch, storage.StringField("omics_type", omics))
	}
	return patch
}

// fieldsJSON encodes an ordered object compactly, keeping its key order.
func fieldsJSON(fields []processing.Field) (json.RawMessage, error) {
	b, err := processing.AppendJSON(nil, fields, 0)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(b), nil
}

// SweepLoop runs Sweep (with Config.StaleAge) at once and then every
// interval until ctx ends. Errors (the database is down) are logged and
// the next round tries again.
func (p *Processor) SweepLoop(ctx context.Context, interval time.Duration) {
	for {
		n, err := p.Sweep(ctx, 0)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Warn("sweep of uncommitted uploads failed; trying again later", "err", err, "next", interval)
		case n > 0:
			p.log.Info("sweep of uncommitted uploads", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
