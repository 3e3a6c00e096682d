package tasks

// The streamed upload (stream.go): inputs of at least streamMinInput bytes
// are converted straight into the upload of the processed object.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/omicsomics/omics-worker/storage"
)

// spyStore records every Put of the run's processed objects: the key, the
// bytes its reader gave, its error. onRead (optional) is called with the
// running count of each Put's bytes, and may make the read fail.
type spyStore struct {
	storage.ObjectStore
	onRead  func(n int64) error
	mu      sync.Mutex
	puts    []spyPut
	deletes map[string]int
}

func (s *spyStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	if s.deletes == nil {
		s.deletes = map[string]int{}
	}
	s.deletes[key]++
	s.mu.Unlock()
	return s.ObjectStore.Delete(ctx, key)
}

type spyPut struct {
	key  string
	read int64
	err  error
}

type spyReader struct {
	r      io.Reader
	n      int64
	onRead func(int64) error
}

func (s *spyReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.onRead != nil {
		if ferr := s.onRead(s.n); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

func (s *spyStore) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) error {
	sr := &spyReader{r: r, onRead: s.onRead}
	err := s.ObjectStore.Put(ctx, key, sr, size, ct)
	s.mu.Lock()
	s.puts = append(s.puts, spyPut{key, sr.n, err})
	s.mu.Unlock()
	return err
}

func (s *spyStore) all() []spyPut {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]spyPut(nil), s.puts...)
}

// streamVCF is a valid VCF of at least size bytes (well above
// streamMinInput: its document spans many chunks and several 5 MiB S3
// parts), with lines lines.
func streamVCF(size int) (content []byte, lines int) {
	var b bytes.Buffer
	b.WriteString("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
	for b.Len() < size {
		lines++
		fmt.Fprintf(&b, "chr%d\t%d\trs%d\tA\tT\t%d\tPASS\tDP=%d;AF=0.%d\n", lines%22+1, lines*10, lines, lines%60, lines%97, lines%10)
	}
	return b.Bytes(), lines
}

// TestStreamedFailuresLeaveNothing: whatever ends a streamed run before
// the document is complete and authenticated (a malformed line at the
// end, a blob whose tag is wrong, an object-store outage in the middle of
// the upload, a cancelled task) leaves no processed object, no pending
// record and no row, and is reported as on the sequential path: the
// file's faults as the permanent FAILURE, the outage as a transient
// ConnectionError, the cancellation as the context's error. The upload had
// begun (the spy saw the processed object's bytes) and the store's Put
// failed: it never saw a clean end.
func TestStreamedFailuresLeaveNothing(t *testing.T) {
	good, lines := streamVCF(2 << 20)
	bad := append(append([]byte(nil), good...), "chr1\tabc\trs0\tA\tT\t50\tPASS\tDP=1\n"...)
	reset := &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	type check func(t *testing.T, e *env, raw *storage.File, err error)
	permanent := func(msg string) check {
		return func(t *testing.T, e *env, raw *storage.File, err error) {
			t.Helper()
			want := strings.ReplaceAll(msg, "%d", fmt.Sprint(raw.ID))
			_, _, pe := runtimeOutcome(e.processor(t), err, 0)
			if transientPy(err) != nil || pe == nil || pe.Type != "ValueError" || pe.Args[0] != want {
				t.Fatalf("err = %v, want the permanent ValueError %q", err, want)
			}
			if info, _ := e.metadata(t, raw.ID)["processing_info"].(map[string]any); info["converted"] != false {
				t.Errorf("processing_info %v, want converted false", info)
			}
		}
	}
	untouched := func(t *testing.T, e *env, raw *storage.File) {
		t.Helper()
		if e.metadata(t, raw.ID)["processing_info"] != nil {
			t.Error("not the file's fault, yet processing_info was written")
		}
	}
	cases := []struct {
		name    string
		content []byte
		tamper  bool                                    // flip the blob's last byte (its tag)
		onRead  func(cancel func()) func(n int64) error // the processed object's Put
		check   check
	}{
		{name: "malformed last line", content: bad,
			check: permanent(fmt.Sprintf("Processing failed: line %d: POS 'abc' is not an integer", lines+3))},
		{name: "tampered tag", content: good, tamper: true,
			check: permanent("Decryption of file %d failed: wrong key or tampered data")},
		{name: "store outage", content: good,
			onRead: func(func()) func(n int64) error {
				return func(n int64) error {
					if n >= 3<<20 {
						return reset
					}
					return nil
				}
			},
			check: func(t *testing.T, e *env, raw *storage.File, err error) {
				t.Helper()
				pe := transientPy(err)
				want := fmt.Sprintf("object storage unavailable while uploading the processed file of file %d: ", raw.ID)
				if pe == nil || pe.Type != "ConnectionError" || !strings.HasPrefix(pe.Args[0].(string), want) {
					t.Fatalf("err = %v, want a transient ConnectionError %q...", err, want)
				}
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("cause %v is not the store's", err)
				}
				untouched(t, e, raw)
			}},
		{name: "cancelled", content: good,
			onRead: func(cancel func()) func(n int64) error {
				return func(n int64) error {
					if n >= 2<<20 {
						cancel()
					}
					return nil
				}
			},
			check: func(t *testing.T, e *env, raw *storage.File, err error) {
				t.Helper()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				untouched(t, e, raw)
			}},
	}
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					raw := e.upload(t, "big.vcf", tc.content)
					if tc.tamper {
						tamperTag(t, e, raw.ObjectKey)
					}
					rows, objsBefore := e.rowCount(t), e.list(t)
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					spy := &spyStore{ObjectStore: e.objects}
					if tc.onRead != nil {
						spy.onRead = tc.onRead(cancel)
					}
					cfg := e.config()
					cfg.Objects = spy
					p, err := New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					_, err = p.Process(ctx, &recorder{}, Request{RawFileID: raw.ID, TaskID: "t"}, Tuning{})
					tc.check(t, e, raw, err)

					puts := spy.all()
					if len(puts) != 1 || puts[0].read < 1<<20 || puts[0].err == nil {
						t.Fatalf("Puts %+v, want one that read the streamed document's first MiB and failed", puts)
					}
					if n := spy.deletes[puts[0].key]; n != 1 {
						t.Errorf("%d deletes of the abandoned upload, want 1", n)
					}
					if objs := e.list(t); joinLines(objs) != joinLines(objsBefore) {
						t.Errorf("objects %v, want %v", objs, objsBefore)
					}
					if recs := e.pendingRecords(t); len(recs) != 0 {
						t.Errorf("pending records left: %+v", recs)
					}
					if n := e.rowCount(t); n != rows {
						t.Errorf("rows %d -> %d", rows, n)
					}
					if ents, _ := os.ReadDir(e.tmp); len(ents) != 0 {
						t.Errorf("temporary files left: %v", ents)
					}
				})
			}
		})
	}
}

// tamperTag flips the last byte of a stored blob (its GCM tag): every
// plaintext byte decrypts, the authentication fails at the very end.
func tamperTag(t *testing.T, e *env, key string) {
	t.Helper()
	rc, size, err := e.objects.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-1] ^= 1
	if err := e.objects.Put(context.Background(), key, bytes.NewReader(blob), size, ""); err != nil {
		t.Fatal(err)
	}
}

// TestStreamedHeadChangedFallsBack: a big VCF whose ##fileformat= line
// follows its first record: the streamed upload is abandoned (its Put
// fails, nothing stored), the task converts again into a temporary
// document and uploads it under the same recorded key. One processed
// object, no pending record, the states in their usual order.
func TestStreamedHeadChangedFallsBack(t *testing.T) {
	good, lines := streamVCF(2 << 20)
	late := bytes.Replace(good, []byte("\nchr3\t"), []byte("\n##fileformat=VCFv4.3\nchr3\t"), 1) // after the first record
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			raw := e.upload(t, "late.vcf", late)
			objsBefore := e.list(t)
			spy := &spyStore{ObjectStore: e.objects}
			cfg := e.config()
			cfg.Objects = spy
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			res, err := p.Process(context.Background(), rec, Request{RawFileID: raw.ID, TaskID: "t"}, Tuning{})
			if err != nil {
				t.Fatal(err)
			}
			if res.RecordCount != int64(lines) {
				t.Errorf("record_count %d, want %d", res.RecordCount, lines)
			}
			if got := joinLines(rec.coarse()); got != joinLines(wantCoarse) {
				t.Errorf("states:\n%s\nwant:\n%s", got, joinLines(wantCoarse))
			}
			pf, _ := e.files.GetFile(context.Background(), res.ProcessedFileID)
			var u struct {
				Metadata struct {
					CustomFields map[string]any `json:"custom_fields"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(e.decryptObject(t, pf.ObjectKey), &u); err != nil {
				t.Fatal(err)
			}
			if u.Metadata.CustomFields["vcf_version"] != "VCFv4.3" {
				t.Errorf("vcf_version %v", u.Metadata.CustomFields["vcf_version"])
			}
			puts := spy.all()
			if len(puts) != 2 || puts[0].err == nil || puts[1].err != nil || puts[0].key != pf.ObjectKey || puts[1].key != pf.ObjectKey {
				t.Errorf("Puts %+v, want the abandoned stream then the document, both at %s", puts, pf.ObjectKey)
			}
			checkOnce(t, e, objsBefore, res)
		})
	}
}

// TestStreamedRoundTripMatchesCLI: a file above the threshold goes
// through the streamed path; the stored object decrypts to the document
// `omics-worker convert` writes for the same file (timestamps aside), and
// the row's size and checksum are the document's.
func TestStreamedRoundTripMatchesCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the omics-worker binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "omics-worker")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/omics-worker").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	content, lines := streamVCF(3 << 20)
	in := filepath.Join(dir, "big.vcf")
	if err := os.WriteFile(in, content, 0o600); err != nil {
		t.Fatal(err)
	}
	stamps := regexp.MustCompile(`"(created_at|updated_at)": "[^"]*"`)
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			raw := e.upload(t, "big.vcf", content)
			rec := &recorder{}
			res, err := e.processor(t).Process(context.Background(), rec, Request{RawFileID: raw.ID, TaskID: "t"}, LargeFileTuning)
			if err != nil {
				t.Fatal(err)
			}
			if res.RecordCount != int64(lines) {
				t.Errorf("record_count %d, want %d", res.RecordCount, lines)
			}
			if got := joinLines(rec.coarse()); got != joinLines(wantCoarse) {
				t.Errorf("states:\n%s\nwant:\n%s", got, joinLines(wantCoarse))
			}
			pf, err := e.files.GetFile(context.Background(), res.ProcessedFileID)
			if err != nil {
				t.Fatal(err)
			}
			doc := e.decryptObject(t, pf.ObjectKey)
			sum := sha256.Sum256(doc)
			if int64(len(doc)) != pf.Size || hex.EncodeToString(sum[:]) != pf.Checksum {
				t.Errorf("row size %d checksum %s, document %d bytes", pf.Size, pf.Checksum, len(doc))
			}
			out := filepath.Join(dir, kind+".json")
			cmd := exec.Command(bin, "convert", in, "-o", out, "-q", "--project-id", fmt.Sprint(e.project))
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("omics-worker convert: %v\n%s", err, b)
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := stamps.ReplaceAll(doc, []byte(`"$1": "T"`))
			want = stamps.ReplaceAll(want, []byte(`"$1": "T"`))
			if !bytes.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Errorf("document (%d bytes) differs from the CLI's (%d bytes) at byte %d: %.80q vs %.80q",
					len(got), len(want), i, got[i:], want[i:])
			}
			checkOnce(t, e, []string{raw.ObjectKey}, res)
		})
	}
}

// TestAheadWriter: chunks arrive in order and whole; the destination's
// error reaches the writer; Close flushes the last partial chunk.
func TestAheadWriter(t *testing.T) {
	data := make([]byte, 1<<20+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	boom := errors.New("boom")
	cases := []struct {
		name    string
		failAt  int // destination fails once it holds this many bytes (0: never)
		writes  []int
		wantErr bool
	}{
		{name: "small writes", writes: []int{1, 100, 4096, 7}},
		{name: "big writes", writes: []int{1 << 19, 3 << 18}},
		{name: "destination fails", failAt: 300 << 10, writes: []int{1000}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dst failingBuffer
			dst.failAt, dst.err = tc.failAt, boom
			a := newAheadWriter(&dst, 64<<10, 2)
			var werr error
			for off, i := 0, 0; off < len(data) && werr == nil; i++ {
				n := min(tc.writes[i%len(tc.writes)], len(data)-off)
				_, werr = a.Write(data[off : off+n])
				off += n
			}
			cerr := a.Close()
			if tc.wantErr {
				if !errors.Is(werr, boom) && !errors.Is(cerr, boom) {
					t.Errorf("write error %v, close error %v, want boom", werr, cerr)
				}
				return
			}
			if werr != nil || cerr != nil || !bytes.Equal(dst.b.Bytes(), data) {
				t.Errorf("write %v close %v, %d bytes arrived of %d", werr, cerr, dst.b.Len(), len(data))
			}
		})
	}
}

type failingBuffer struct {
	b      bytes.Buffer
	failAt int
	err    error
}

func (f *failingBuffer) Write(p []byte) (int, error) {
	if f.failAt > 0 && f.b.Len()+len(p) > f.failAt {
		return 0, f.err
	}
	return f.b.Write(p)
}
