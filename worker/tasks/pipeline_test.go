package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/processing"
	_ "github.com/omicsomics/omics-worker/processing/all"
	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/worker"
)

var wantCoarse = []string{
	"STARTED:0:Starting file processing",
	"PROGRESS:10:Loading file metadata",
	"PROGRESS:20:Detecting file format",
	"PROGRESS:40:Converting to unified format",
	"PROGRESS:70:Saving processed data",
	"PROGRESS:100:Processing complete",
}

// expected converts content directly with the processing engine, as the
// task should (same name, project, sample id).
func expected(t *testing.T, name string, content []byte, project int64, sample string) *processing.Result {
	t.Helper()
	var out bytes.Buffer
	res, err := processing.Convert(context.Background(), bytes.NewReader(content), &out,
		processing.Options{Name: name, Size: int64(len(content)), ProjectID: project, SampleID: sample})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestProcessEveryDemoFormat(t *testing.T) {
	entries, err := os.ReadDir(demoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			p := e.processor(t)
			for _, ent := range entries {
				name := ent.Name()
				t.Run(name, func(t *testing.T) {
					content := readDemo(t, name)
					want := expected(t, name, content, e.project, "")
					raw := e.upload(t, name, content)
					rec := &recorder{}
					res, err := p.Process(context.Background(), rec, Request{RawFileID: raw.ID}, Tuning{})
					meta := e.metadata(t, raw.ID)
					info, _ := meta["processing_info"].(map[string]any)
					if !want.Converted {
						var pe *worker.PyError
						if !errors.As(err, &pe) || pe.Type != "ValueError" {
							t.Fatalf("err = %v, want ValueError", err)
						}
						why := want.Reason
						if why == "" {
							why = want.Err.Error()
						}
						if got := pe.Args[0]; got != "Processing failed: "+why {
							t.Errorf("FAILURE message %q, want %q", got, "Processing failed: "+why)
						}
						if info["converted"] != false || meta["omics_type"] != string(want.OmicsType) || meta["processed_file_id"] != nil {
							t.Errorf("raw metadata after failure: %v", meta)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if got := joinLines(rec.coarse()); got != joinLines(wantCoarse) {
						t.Errorf("states:\n%s\nwant:\n%s", got, joinLines(wantCoarse))
					}
					if res.OmicsType != string(want.OmicsType) || res.RecordCount != int64(want.Records) || !res.Success {
						t.Errorf("result %+v, want %s/%d", res, want.OmicsType, want.Records)
					}
					// Raw row links, processing_info, omics_type.
					if meta["processed_file_id"] != float64(res.ProcessedFileID) || meta["omics_type"] != res.OmicsType {
						t.Errorf("raw metadata %v", meta)
					}
					if info["converted"] != true || info["record_count"] != float64(want.Records) ||
						info["sample_id"] != fmt.Sprintf("sample_%d_%s", e.project, processing.PyStem(name)) {
						t.Errorf("processing_info %v", info)
					}
					// Processed row as create_datafile + links.
					pf, err := e.files.GetFile(context.Background(), res.ProcessedFileID)
					if err != nil {
						t.Fatal(err)
					}
					pm := e.metadata(t, pf.ID)
					if pf.Filename != name+".processed.json" || pm["raw_file_id"] != float64(raw.ID) || pm["is_processed"] != true ||
						pm["content_type"] != "application/json" || pm["object_key"] != pf.ObjectKey || pm["alg"] != "AES-GCM" ||
						!strings.HasPrefix(pf.ObjectKey, fmt.Sprintf("sandbox/%d/%d/", e.project, e.user)) {
						t.Errorf("processed row %+v metadata %v", pf, pm)
					}
					doc := e.decryptObject(t, pf.ObjectKey)
					if int64(len(doc)) != pf.Size {
						t.Errorf("processed size %d, row says %d", len(doc), pf.Size)
					}
					var u struct {
						Metadata map[string]any `json:"metadata"`
						Records  []any          `json:"records"`
					}
					if err := json.Unmarshal(doc, &u); err != nil {
						t.Fatalf("processed document: %v", err)
					}
					if len(u.Records) != want.Records || u.Metadata["omics_type"] != res.OmicsType {
						t.Errorf("document: %d records, metadata %v", len(u.Records), u.Metadata)
					}
				})
			}
		})
	}
}

func TestSampleIDArgument(t *testing.T) {
	e := newEnv(t, "local")
	raw := e.upload(t, "variants.vcf", readDemo(t, "variants.vcf"))
	res, err := e.processor(t).Process(context.Background(), nil, Request{RawFileID: raw.ID, SampleID: "S-42"}, Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	pf, _ := e.files.GetFile(context.Background(), res.ProcessedFileID)
	var u struct {
		Metadata struct {
			SampleID string `json:"sample_id"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(e.decryptObject(t, pf.ObjectKey), &u); err != nil || u.Metadata.SampleID != "S-42" {
		t.Errorf("sample_id %q (%v)", u.Metadata.SampleID, err)
	}
}

// failureCase is one permanent failure: what to set up, the FAILURE the
// client must see, and the raw row's processing_info afterwards.
type failureCase struct {
	name     string
	setup    func(t *testing.T, e *env) (rawID int64, cfg func(*Config))
	excType  string
	message  string // exact str(exc), or a prefix when it ends with "..."
	wantInfo map[string]any
}

func TestFailures(t *testing.T) {
	cases := []failureCase{
		{
			name: "missing row",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				return 123456, nil
			},
			excType: "ValueError", message: "File 123456 not found",
		},
		{
			name: "missing object",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				raw := e.upload(t, "variants.vcf", readDemo(t, "variants.vcf"))
				if err := e.objects.Delete(context.Background(), raw.ObjectKey); err != nil {
					t.Fatal(err)
				}
				return raw.ID, nil
			},
			excType: "FileNotFoundError", message: "Stored object of file %d not found: ...",
			wantInfo: map[string]any{"original_filename": "variants.vcf", "converted": false},
		},
		{
			name: "wrong key",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				raw := e.upload(t, "variants.vcf", readDemo(t, "variants.vcf"))
				return raw.ID, func(c *Config) {
					k, _ := NewMasterKeyring("another master key")
					c.Keys = k
				}
			},
			excType: "ValueError", message: "Decryption of file %d failed: wrong key or tampered data",
			wantInfo: map[string]any{"original_filename": "variants.vcf", "converted": false},
		},
		{
			name: "tampered blob",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
				rc, size, err := e.objects.Get(context.Background(), raw.ObjectKey)
				if err != nil {
					t.Fatal(err)
				}
				blob := make([]byte, size)
				_, _ = rc.Read(blob)
				rc.Close()
				blob[20] ^= 1
				if err := e.objects.Put(context.Background(), raw.ObjectKey, bytes.NewReader(blob), size, ""); err != nil {
					t.Fatal(err)
				}
				return raw.ID, nil
			},
			excType: "ValueError", message: "Decryption of file %d failed: wrong key or tampered data",
			wantInfo: map[string]any{"original_filename": "counts.tsv", "converted": false},
		},
		{
			name: "blob too short",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
				if err := e.objects.Put(context.Background(), raw.ObjectKey, strings.NewReader("short"), 5, ""); err != nil {
					t.Fatal(err)
				}
				return raw.ID, nil
			},
			excType: "ValueError", message: "Decryption of file %d failed: encrypted blob too short",
			wantInfo: map[string]any{"original_filename": "counts.tsv", "converted": false},
		},
		{
			name: "unsupported format",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				return e.upload(t, "instrument.raw", readDemo(t, "instrument.raw")).ID, nil
			},
			excType: "ValueError", message: "Processing failed: Unsupported format for conversion",
			wantInfo: map[string]any{"omics_type": "proteomics", "source_format": "unknown", "converted": false,
				"reason": "Unsupported format for conversion", "original_filename": "instrument.raw"},
		},
		{
			name: "malformed file",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				return e.upload(t, "broken.vcf", readDemo(t, "broken.vcf")).ID, nil
			},
			excType: "ValueError", message: "Processing failed: line ...",
			wantInfo: map[string]any{"omics_type": "genomics", "source_format": "vcf", "converted": false},
		},
		{
			// A real failing transaction: a trigger refuses the processed
			// row, the INSERT fails, the uploaded object must go. (A name
			// too long for varchar(512) no longer fails: processedName.)
			name: "database rejects the processed row",
			setup: func(t *testing.T, e *env) (int64, func(*Config)) {
				e.exec(t, `CREATE FUNCTION reject_processed() RETURNS trigger LANGUAGE plpgsql AS
					$$ BEGIN RAISE EXCEPTION 'processed rows refused by the test'; END $$`,
					`CREATE TRIGGER reject_processed BEFORE INSERT ON data_files FOR EACH ROW
					WHEN (NEW.filename LIKE '%.processed.json') EXECUTE FUNCTION reject_processed()`)
				return e.upload(t, "counts.tsv", readDemo(t, "counts.tsv")).ID, nil
			},
			excType: "RuntimeError", message: "database error while saving the processed file of file %d: ...",
		},
	}
	for _, kind := range []string{"local", "s3"} {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, kind)
				rawID, mod := tc.setup(t, e)
				cfg := e.config()
				if mod != nil {
					mod(&cfg)
				}
				p, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				rowsBefore, objsBefore := e.rowCount(t), e.list(t)
				var metaBefore map[string]any
				if tc.name != "missing row" {
					metaBefore = e.metadata(t, rawID)
				}
				rec := &recorder{}
				res, err := p.Process(context.Background(), rec, Request{RawFileID: rawID}, Tuning{})
				var pe *worker.PyError
				if !errors.As(err, &pe) {
					t.Fatalf("Process = %+v, %v; want a PyError", res, err)
				}
				msg := tc.message
				if strings.Contains(msg, "%d") {
					msg = fmt.Sprintf(msg, rawID)
				}
				got, _ := pe.Args[0].(string)
				if pe.Type != tc.excType || !matches(got, msg) {
					t.Errorf("FAILURE %s(%q), want %s(%q)", pe.Type, got, tc.excType, msg)
				}
				// Nothing left behind.
				if n := e.rowCount(t); n != rowsBefore {
					t.Errorf("rows %d -> %d", rowsBefore, n)
				}
				if objs := e.list(t); joinLines(objs) != joinLines(objsBefore) {
					t.Errorf("objects %v -> %v", objsBefore, objs)
				}
				if metaBefore == nil {
					return
				}
				meta := e.metadata(t, rawID)
				if meta["processed_file_id"] != nil {
					t.Errorf("raw row links a processed row: %v", meta)
				}
				info, _ := meta["processing_info"].(map[string]any)
				if tc.wantInfo == nil {
					if info != nil {
						t.Errorf("processing_info written: %v", info)
					}
					return
				}
				for k, v := range tc.wantInfo {
					if info[k] != v {
						t.Errorf("processing_info[%q] = %v, want %v (%v)", k, info[k], v, info)
					}
				}
				if e, r := info["error"], info["reason"]; e == nil && r == nil {
					t.Errorf("processing_info has neither error nor reason: %v", info)
				}
				for k, v := range metaBefore {
					if fmt.Sprint(meta[k]) != fmt.Sprint(v) {
						t.Errorf("raw metadata %q changed: %v -> %v", k, v, meta[k])
					}
				}
			})
		}
	}
}

func matches(got, want string) bool {
	if p, ok := strings.CutSuffix(want, "..."); ok {
		return strings.HasPrefix(got, p)
	}
	return got == want
}

func TestDuplicateDelivery(t *testing.T) {
	e := newEnv(t, "s3")
	p := e.processor(t)
	content := readDemo(t, "variants.vcf")
	raw := e.upload(t, "variants.vcf", content)
	ctx := context.Background()

	first, err := p.Process(ctx, nil, Request{RawFileID: raw.ID}, Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	rows, objs := e.rowCount(t), e.list(t)
	rec := &recorder{}
	second, err := p.Process(ctx, rec, Request{RawFileID: raw.ID}, Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	if *second != *first {
		t.Errorf("second delivery %+v, first %+v", second, first)
	}
	if e.rowCount(t) != rows || joinLines(e.list(t)) != joinLines(objs) {
		t.Errorf("second delivery wrote something: rows %d->%d objects %v->%v", rows, e.rowCount(t), objs, e.list(t))
	}
	want := []string{wantCoarse[0], wantCoarse[1], wantCoarse[5]}
	if joinLines(rec.steps()) != joinLines(want) {
		t.Errorf("states of the duplicate:\n%s", joinLines(rec.steps()))
	}
}

func TestConcurrentDuplicateDelivery(t *testing.T) {
	e := newEnv(t, "local")
	raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
	const n = 4
	var wg sync.WaitGroup
	results := make([]*Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate processors: separate worker processes.
			results[i], errs[i] = e.processor(t).Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if *results[i] != *results[0] {
			t.Errorf("delivery %d: %+v, delivery 0: %+v", i, results[i], results[0])
		}
	}
	if rows := e.rowCount(t); rows != 2 {
		t.Errorf("%d rows, want raw + one processed", rows)
	}
	if objs := e.list(t); len(objs) != 2 {
		t.Errorf("objects %v, want raw + one processed", objs)
	}
}

func TestProgressIsFineGrainedAndMonotone(t *testing.T) {
	e := newEnv(t, "local")
	// ~6 MB of VCF so that the converter reports many times.
	var b bytes.Buffer
	b.WriteString("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
	for i := 0; b.Len() < 6<<20; i++ {
		fmt.Fprintf(&b, "chr1\t%d\trs%d\tA\tG\t30\tPASS\tDP=10\n", i+1, i)
	}
	raw := e.upload(t, "big.vcf", b.Bytes())
	cfg := e.config()
	var tick time.Time
	var mu sync.Mutex
	cfg.Now = func() time.Time { // each call advances 1 s: no throttling by time
		mu.Lock()
		defer mu.Unlock()
		tick = tick.Add(time.Second)
		return tick
	}
	p, _ := New(cfg)
	rec := &recorder{}
	if _, err := p.Process(context.Background(), rec, Request{RawFileID: raw.ID}, Tuning{}); err != nil {
		t.Fatal(err)
	}
	if got := joinLines(rec.coarse()); got != joinLines(wantCoarse) {
		t.Errorf("coarse states:\n%s", got)
	}
	last, fine := -1, 0
	for _, s := range rec.states {
		if s.Meta.Progress < last {
			t.Errorf("progress went back: %v", rec.steps())
		}
		last = s.Meta.Progress
		if s.Meta.BytesDone != nil {
			fine++
			if s.Meta.Progress <= 40 || s.Meta.Progress >= 70 || s.Meta.Status != StatusConverting ||
				s.Meta.BytesTotal == nil || *s.Meta.BytesTotal != int64(b.Len()) || s.Meta.ETASeconds == nil {
				t.Errorf("fine update %+v", s.Meta)
			}
		}
	}
	if fine < 5 {
		t.Errorf("only %d fine-grained updates: %v", fine, rec.steps())
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		want        int
	}{
		{0, 100, 40}, {1, 100, 40}, {50, 100, 55}, {99, 100, 69}, {100, 100, 69}, {5, 0, 40}, {200, 100, 69},
	} {
		if got := percent(tc.done, tc.total); got != tc.want {
			t.Errorf("percent(%d, %d) = %d, want %d", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestNewNeedsStores(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New(Config{}) succeeded")
	}
}

func TestAlreadyProcessedBySyncPath(t *testing.T) {
	// A raw row the synchronous upload already processed: the task must
	// not create anything and must report the linked row.
	e := newEnv(t, "local")
	raw := e.upload(t, "counts.tsv", readDemo(t, "counts.tsv"))
	proc := e.upload(t, "counts.tsv.processed.json", []byte(`{}`))
	info := json.RawMessage(`{"omics_type":"transcriptomics","converted":true,"record_count":5}`)
	if _, err := e.files.SaveProcessed(context.Background(), raw, storage.NewFile{
		Filename: "x", ObjectKey: proc.ObjectKey + ".2", Size: 2, Checksum: "c", ProjectID: e.project, UploadedByID: e.user,
	}, []storage.MetadataField{{Key: "processing_info", Value: info}, storage.StringField("omics_type", "transcriptomics")}); err != nil {
		t.Fatal(err)
	}
	rows := e.rowCount(t)
	res, err := e.processor(t).Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordCount != 5 || res.OmicsType != "transcriptomics" || res.ProcessedFileID == 0 {
		t.Errorf("result %+v", res)
	}
	if e.rowCount(t) != rows {
		t.Error("rows added")
	}
}

// TestLargeFileOnS3 goes through multipart uploads (the document is well
// above the 5 MiB part size of the test store) for both task tunings.
func TestLargeFileOnS3(t *testing.T) {
	e := newEnv(t, "s3")
	var b bytes.Buffer
	b.WriteString("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
	n := 0
	for ; b.Len() < 3<<20; n++ {
		fmt.Fprintf(&b, "chr2\t%d\t.\tC\tT\t50\tPASS\tDP=3\n", n+1)
	}
	for _, tun := range []Tuning{{}, LargeFileTuning} {
		raw := e.upload(t, "big.vcf", b.Bytes())
		res, err := e.processor(t).Process(context.Background(), nil, Request{RawFileID: raw.ID}, tun)
		if err != nil {
			t.Fatal(err)
		}
		if res.RecordCount != int64(n) {
			t.Errorf("%d records, want %d", res.RecordCount, n)
		}
		pf, _ := e.files.GetFile(context.Background(), res.ProcessedFileID)
		doc := e.decryptObject(t, pf.ObjectKey)
		if int64(len(doc)) != pf.Size || pf.Size < 10<<20 {
			t.Errorf("document %d bytes, row %d", len(doc), pf.Size)
		}
	}
}

// TestLateFileformatConvertsAgain: the task streams the document; a VCF
// whose ##fileformat= line follows a record changes the head after it was
// written, so the task reads the object again and converts without
// streaming: the stored document has the last version, like Python's.
func TestLateFileformatConvertsAgain(t *testing.T) {
	e := newEnv(t, "local")
	in := "##fileformat=VCFv4.1\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" +
		"chr1\t10\trs1\tA\tG\t50\tPASS\tDP=3\n##fileformat=VCFv4.3\nchr2\t20\t.\tC\tT\t.\tq10\tDP=4\n"
	raw := e.upload(t, "late.vcf", []byte(in))
	res, err := e.processor(t).Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordCount != 2 {
		t.Errorf("record_count %d", res.RecordCount)
	}
	pf, _ := e.files.GetFile(context.Background(), res.ProcessedFileID)
	var u struct {
		Metadata struct {
			CustomFields map[string]any `json:"custom_fields"`
		} `json:"metadata"`
		Records []any `json:"records"`
	}
	if err := json.Unmarshal(e.decryptObject(t, pf.ObjectKey), &u); err != nil {
		t.Fatal(err)
	}
	if u.Metadata.CustomFields["vcf_version"] != "VCFv4.3" || len(u.Records) != 2 {
		t.Errorf("vcf_version %v, %d records", u.Metadata.CustomFields["vcf_version"], len(u.Records))
	}
}
