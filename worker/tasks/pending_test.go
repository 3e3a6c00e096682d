package tasks

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/worker"
)

// hookedObjects calls afterPut once, after the first Put stored its
// object (the processed upload of a run).
type hookedObjects struct {
	storage.ObjectStore
	once     sync.Once
	afterPut func(key string)
}

func (h *hookedObjects) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) error {
	if err := h.ObjectStore.Put(ctx, key, r, size, ct); err != nil {
		return err
	}
	h.once.Do(func() { h.afterPut(key) })
	return nil
}

// pendingRecords lists the durable pending-upload records (through the
// direct connection, not the proxy).
func (e *env) pendingRecords(t testing.TB) []storage.PendingObject {
	t.Helper()
	recs, err := e.files.PendingObjects(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// proxiedProcessor returns a processor whose database goes through a
// cuttable proxy and whose object store runs afterPut after the upload.
func proxiedProcessor(t *testing.T, e *env, afterPut func(*pgProxy, string)) (*Processor, *pgProxy) {
	t.Helper()
	proxy := newPGProxy(t, "127.0.0.1:5432")
	files, err := postgres.OpenConfig(context.Background(), postgres.Config{URL: proxy.url(e.dbURL)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(files.Close)
	cfg := e.config()
	cfg.Files = files
	cfg.Objects = &hookedObjects{ObjectStore: e.objects, afterPut: func(k string) { afterPut(proxy, k) }}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, proxy
}

// checkOnce asserts the final state: the raw row, one processed row, the
// raw object plus one processed object, no pending record.
func checkOnce(t *testing.T, e *env, objsBefore []string, res *Result) {
	t.Helper()
	if n := e.rowCount(t); n != 2 {
		t.Errorf("%d rows, want raw + processed", n)
	}
	objs := e.list(t)
	if len(objs) != len(objsBefore)+1 {
		t.Errorf("objects %v, want the raw one and one processed one", objs)
	}
	if res != nil {
		pf, err := e.files.GetFile(context.Background(), res.ProcessedFileID)
		if err != nil || !strings.Contains(joinLines(objs), pf.ObjectKey) {
			t.Errorf("processed object of row %d missing from %v (%v)", res.ProcessedFileID, objs, err)
		}
	}
	if recs := e.pendingRecords(t); len(recs) != 0 {
		t.Errorf("pending records left: %+v", recs)
	}
}

// Issue 9 #2: the database goes down after the upload, before the commit.
// The object is recorded durably; the retry of the same task (database
// back) deletes it and processes the file once.
func TestDatabaseOutageDuringSaveRetrySettles(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
			objsBefore := e.list(t)
			p, proxy := proxiedProcessor(t, e, func(px *pgProxy, _ string) { px.cut() })
			req := Request{RawFileID: raw.ID, TaskID: "task-1"}

			_, err := p.Process(context.Background(), nil, req, Tuning{})
			if pe := transientPy(err); pe == nil || pe.Type != "ConnectionError" ||
				!strings.HasPrefix(pe.Args[0].(string), "database unavailable while saving the processed file of file") {
				t.Fatalf("err = %v, want a transient ConnectionError", err)
			}
			if retry, countdown, _ := runtimeOutcome(p, err, 0); !retry || countdown != 2*time.Second {
				t.Errorf("first run: retry %v in %v, want a retry in 2s", retry, countdown)
			}
			if recs := e.pendingRecords(t); len(recs) != 1 || recs[0].TaskID != "task-1" || recs[0].RawFileID != raw.ID {
				t.Fatalf("pending records %+v, want the uploaded object", recs)
			}
			if n := e.rowCount(t); n != 1 {
				t.Errorf("%d rows after the failed save, want only the raw one", n)
			}

			proxy.restore()
			res, err := p.Process(context.Background(), nil, req, Tuning{})
			if err != nil {
				t.Fatal(err)
			}
			checkOnce(t, e, objsBefore, res)
		})
	}
}

// Issue 9 #2: the database stays down past every retry. The task fails;
// the object stays recorded; after a restart the sweep deletes it, and a
// later run processes the file once.
func TestDatabaseDownPastEveryRetrySweepSettles(t *testing.T) {
	e := newEnv(t, "s3")
	raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
	objsBefore := e.list(t)
	p, proxy := proxiedProcessor(t, e, func(px *pgProxy, _ string) { px.cut() })
	req := Request{RawFileID: raw.ID, TaskID: "task-1"}
	var err error
	for retries := 0; retries <= 3; retries++ {
		_, err = p.Process(context.Background(), nil, req, Tuning{})
		if retry, _, pe := runtimeOutcome(p, err, retries); retries == 3 && (retry || pe == nil || pe.Type != "ConnectionError") {
			t.Fatalf("final outcome: retry %v, recorded %v; want FAILURE ConnectionError", retry, pe)
		}
	}
	if recs := e.pendingRecords(t); len(recs) != 1 {
		t.Fatalf("pending records %+v, want the uploaded object", recs)
	}
	proxy.restore()

	// A restarted worker: a fresh young record is not touched by the
	// default sweep (it may be a live upload of another worker) ...
	p2 := e.processor(t)
	if n, err := p2.Sweep(context.Background(), 0); err != nil || n != 0 {
		t.Fatalf("Sweep(StaleAge) = %d, %v; want 0", n, err)
	}
	// ... but once stale it is.
	if n, err := p2.Sweep(context.Background(), time.Nanosecond); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if objs := e.list(t); len(objs) != len(objsBefore) {
		t.Errorf("objects %v after the sweep, want only the raw one", objs)
	}
	res, err := p2.Process(context.Background(), nil, Request{RawFileID: raw.ID, TaskID: "task-2"}, Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, e, objsBefore, res)
}

// Issue 9 #2: the worker dies during the upload (the run is abandoned
// after its object was stored, before the commit). Its redelivery, a later
// run of another task, or the sweep settles the object; when the zombie
// run wakes up afterwards it cannot link or leave anything.
func TestWorkerKilledDuringUploadIsSettled(t *testing.T) {
	for _, how := range []string{"redelivery", "other-task", "sweep"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, "local")
			raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
			objsBefore := e.list(t)
			stored, wake := make(chan struct{}), make(chan struct{})
			cfg := e.config()
			cfg.Objects = &hookedObjects{ObjectStore: e.objects, afterPut: func(string) { close(stored); <-wake }}
			zombie, _ := New(cfg)
			type outcome struct {
				res *Result
				err error
			}
			zdone := make(chan outcome, 1)
			go func() {
				res, err := zombie.Process(context.Background(), nil, Request{RawFileID: raw.ID, TaskID: "task-1"}, Tuning{})
				zdone <- outcome{res, err}
			}()
			<-stored // killed here: object uploaded and recorded, no commit

			p := e.processor(t) // the restarted worker
			taskID := "task-1"
			switch how {
			case "other-task":
				taskID = "task-2" // settles all records once the file is processed
			case "sweep":
				if n, err := p.Sweep(context.Background(), time.Nanosecond); err != nil || n != 1 {
					t.Fatalf("Sweep = %d, %v", n, err)
				}
				taskID = "task-2"
			}
			res, err := p.Process(context.Background(), nil, Request{RawFileID: raw.ID, TaskID: taskID}, Tuning{})
			if err != nil {
				t.Fatal(err)
			}
			checkOnce(t, e, objsBefore, res)

			close(wake) // the zombie's upload "finishes"
			z := <-zdone
			if z.err != nil || z.res.ProcessedFileID != res.ProcessedFileID {
				t.Errorf("zombie = %+v, %v; want the winner's result %d", z.res, z.err, res.ProcessedFileID)
			}
			checkOnce(t, e, objsBefore, res)
		})
	}
}

// limitCommitter is a Reporter + Committer whose hard time limit already
// fired (refuse) or never fires.
type limitCommitter struct {
	recorder
	refuse bool
	ran    bool
}

func (c *limitCommitter) Commit(ctx context.Context, fn func(context.Context) error) error {
	if c.refuse {
		return worker.ErrTaskFinished
	}
	c.ran = true
	return fn(ctx)
}

// Issue 9 #3: the file task commits through the runtime's gate; a commit
// refused because the hard limit won leaves neither row nor object.
func TestCommitRefusedByTimeLimitLeavesNothing(t *testing.T) {
	e := newEnv(t, "local")
	raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
	objsBefore := e.list(t)
	deletes := &countDeletes{ObjectStore: e.objects}
	e.objects = deletes
	p := e.processor(t)
	_, err := p.Process(context.Background(), &limitCommitter{refuse: true}, Request{RawFileID: raw.ID, TaskID: "t"}, Tuning{})
	if !errors.Is(err, worker.ErrTaskFinished) {
		t.Fatalf("err = %v, want ErrTaskFinished", err)
	}
	if deletes.n != 1 {
		t.Errorf("%d deletes of the discarded upload, want 1", deletes.n)
	}
	if n := e.rowCount(t); n != 1 {
		t.Errorf("%d rows, want only the raw one", n)
	}
	if objs := e.list(t); len(objs) != len(objsBefore) {
		t.Errorf("objects %v, want only the raw one", objs)
	}
	if recs := e.pendingRecords(t); len(recs) != 0 {
		t.Errorf("pending records %+v", recs)
	}
	c := &limitCommitter{}
	res, err := p.Process(context.Background(), c, Request{RawFileID: raw.ID, TaskID: "t"}, Tuning{})
	if err != nil || !c.ran {
		t.Fatalf("Process = %v (commit ran %v)", err, c.ran)
	}
	checkOnce(t, e, objsBefore, res)
}

// countDeletes counts the Delete calls on its store.
type countDeletes struct {
	storage.ObjectStore
	n int
}

func (c *countDeletes) Delete(ctx context.Context, key string) error {
	c.n++
	return c.ObjectStore.Delete(ctx, key)
}
