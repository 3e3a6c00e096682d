// Package convtest is the test harness shared by the format converter
// packages (vcf, bed, gff, mzml, mgf, fastx): golden files, the Python
// oracle, Differential tests against Python, fuzzing and Robustness
// checks. It is imported by tests only.
//
//	go test ./processing/vcf -run Golden            compare with the goldens
//	go test ./processing/vcf -run Golden -update    rewrite goldens from Go
//	go test ./processing/vcf -run Golden -oracle=DIR
//	    rewrite goldens from the Python converters (DIR holds the
//	    Omicsomics backend "app" package, see spec §10); inputs Python
//	    rejects get a Go-produced golden that records Python's error.
//	go test ./processing/vcf -run Differential -oracle=DIR [-diff-n N]
//	    compare with Python on N generated inputs.
package convtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/omicsomics/omics-worker/processing"
)

var (
	update = flag.Bool("update", false, "rewrite golden files from the Go output")
	diffN  = flag.Int("diff-n", 0, "number of generated inputs for the Differential tests (0 = each test's default)")
	oracle = flag.String("oracle", "", "directory holding the Python Omicsomics 'app' package; rewrite golden files from the Python converters")
)

// golden is the stored expectation for one input file.
type golden struct {
	// Producer is "python" when the document was written by the Python
	// converter, "go" when by this package (Python rejects the input or
	// does not support the format).
	Producer     string          `json:"producer"`
	PythonError  string          `json:"python_error,omitempty"`
	Error        string          `json:"error,omitempty"`
	Headers      json.RawMessage `json:"headers,omitempty"`
	Records      json.RawMessage `json:"records,omitempty"`
	Statistics   json.RawMessage `json:"statistics,omitempty"`
	CustomFields json.RawMessage `json:"custom_fields,omitempty"`
}

// Collector keeps deep copies of the records written to it.
type Collector struct{ Recs []processing.Record }

func (c *Collector) WriteRecord(r *processing.Record) error {
	v := make([]processing.Field, len(r.Values))
	copy(v, r.Values)
	c.Recs = append(c.Recs, processing.Record{ID: r.ID, Values: v})
	return nil
}

// Run converts the file with conv and returns the records and summary.
func Run(t testing.TB, conv processing.Converter, path, format string) ([]processing.Record, processing.Summary, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c Collector
	sum, err := conv.Convert(context.Background(), processing.Input{
		R: bytes.NewReader(data), Name: filepath.Base(path), Size: int64(len(data)), Format: format,
	}, &c)
	return c.Recs, sum, err
}

// jsonValue renders a record value the way the Python serializer types it:
// ints without a fraction, floats always with one, NaN/Inf as null.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case processing.BigInt:
		return json.Number(string(x))
	case int:
		return json.Number(strconv.Itoa(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return json.Number(s)
	case []processing.Field:
		return fieldsJSON(x)
	default:
		return x
	}
}

type orderedObject []processing.Field

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(jsonValue(f.Value))
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func fieldsJSON(f []processing.Field) orderedObject { return orderedObject(f) }

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goGolden(t testing.TB, recs []processing.Record, sum processing.Summary, err error) golden {
	g := golden{Producer: "go"}
	if err != nil {
		g.Error = err.Error()
		return g
	}
	type rec struct {
		ID     string        `json:"id"`
		Values orderedObject `json:"values"`
	}
	rs := make([]rec, len(recs))
	for i, r := range recs {
		rs[i] = rec{r.ID, r.Values}
	}
	g.Headers = mustJSON(t, sum.Headers)
	g.Records = mustJSON(t, rs)
	g.Statistics = mustJSON(t, orderedObject(sum.Statistics))
	g.CustomFields = mustJSON(t, orderedObject(sum.CustomFields))
	return g
}

// canon parses JSON keeping key order and number kinds, and renders it in
// a canonical form: "i:<int>" / "f:<float>" for numbers.
func canon(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	if len(raw) == 0 {
		return ""
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var b strings.Builder
	var walkTok func() error
	walkTok = func() error {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch x := tok.(type) {
		case json.Delim:
			b.WriteString(x.String())
			for d.More() {
				if x == '{' {
					k, err := d.Token()
					if err != nil {
						return err
					}
					fmt.Fprintf(&b, "%q:", k)
				}
				if err := walkTok(); err != nil {
					return err
				}
				b.WriteByte(',')
			}
			end, err := d.Token()
			if err != nil {
				return err
			}
			b.WriteString(end.(json.Delim).String())
		case json.Number:
			s := x.String()
			if strings.ContainsAny(s, ".eE") {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "f:%s", strconv.FormatFloat(f, 'g', -1, 64))
			} else {
				fmt.Fprintf(&b, "i:%s", s)
			}
		case string:
			fmt.Fprintf(&b, "%q", x)
		case nil:
			b.WriteString("null")
		default:
			fmt.Fprintf(&b, "%v", x)
		}
		return nil
	}
	if err := walkTok(); err != nil {
		t.Fatalf("canon: %v", err)
	}
	return b.String()
}

// pythonDriver is our own helper script: it runs one Omicsomics converter
// on one file and prints the parts of the UnifiedData document we compare.
const pythonDriver = `
import asyncio, json, sys, os, logging, types
sys.path.insert(0, sys.argv[1])
sys.modules.setdefault("pandas", types.ModuleType("pandas"))
logging.disable(logging.CRITICAL)
from pathlib import Path
import app.converters
from app.converters.base import ConverterFactory
from app.schemas.unified_format import OmicsType
conv = ConverterFactory.create(OmicsType(sys.argv[2]))
try:
    ud = asyncio.run(conv.to_unified(Path(sys.argv[4]), "S", sys.argv[3]))
except Exception as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(0)
d = ud.model_dump(mode="json")
print(json.dumps({"headers": d["headers"], "records": d["records"],
                  "statistics": d["statistics"], "custom_fields": d["metadata"]["custom_fields"]}))
`

// pythonGolden runs the Python converter. The file is copied to a temp
// file with the same suffix (as FileProcessor does).
func pythonGolden(t testing.TB, path, omics, format string) (golden, bool) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "driver.py")
	if err := os.WriteFile(script, []byte(pythonDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "input"+pySuffix(filepath.Base(path)))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("python3", script, *oracle, omics, format, tmp).Output()
	if err != nil {
		t.Fatalf("python oracle on %s: %v", path, err)
	}
	var res struct {
		Error        *string         `json:"error"`
		Headers      json.RawMessage `json:"headers"`
		Records      json.RawMessage `json:"records"`
		Statistics   json.RawMessage `json:"statistics"`
		CustomFields json.RawMessage `json:"custom_fields"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python oracle output: %v\n%s", err, out)
	}
	if res.Error != nil {
		return golden{PythonError: *res.Error}, false
	}
	return golden{Producer: "python", Headers: res.Headers, Records: res.Records,
		Statistics: res.Statistics, CustomFields: res.CustomFields}, true
}

// pySuffix is Python's PurePath.suffix of a file name.
func pySuffix(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return ""
	}
	return name[i:]
}

// Case names one input and how the Python side converts it.
type Case struct {
	Path   string // input file under testdata/
	Omics  string // Python OmicsType value; "" = Python has no converter
	Format string // source format string given to both sides
}

// Golden compares conv's output for every case with its golden file
// (<input>.golden.json), rewriting the goldens first under -update or
// -oracle.
func Golden(t *testing.T, conv processing.Converter, cases []Case) {
	for _, gc := range cases {
		t.Run(filepath.Base(gc.Path), func(t *testing.T) {
			recs, sum, err := Run(t, conv, gc.Path, gc.Format)
			got := goGolden(t, recs, sum, err)
			gpath := gc.Path + ".golden.json"
			switch {
			case *oracle != "" && gc.Omics != "":
				want, ok := pythonGolden(t, gc.Path, gc.Omics, gc.Format)
				if !ok {
					got.PythonError = want.PythonError
					want = got
				}
				writeGolden(t, gpath, want)
			case *update:
				if old, err := readGolden(gpath); err == nil && old.Producer == "python" {
					t.Logf("%s: keeping the Python-produced golden (use -oracle to regenerate)", gpath)
				} else {
					if err == nil {
						got.PythonError = old.PythonError
					}
					writeGolden(t, gpath, got)
				}
			}
			want, err := readGolden(gpath)
			if err != nil {
				t.Fatalf("%v (run with -update or -oracle)", err)
			}
			if want.Error != "" || got.Error != "" {
				if want.Error != got.Error {
					t.Fatalf("error:\n got %q\nwant %q", got.Error, want.Error)
				}
				return
			}
			for _, part := range []struct {
				name      string
				got, want json.RawMessage
			}{
				{"headers", got.Headers, want.Headers},
				{"records", got.Records, want.Records},
				{"statistics", got.Statistics, want.Statistics},
				{"custom_fields", got.CustomFields, want.CustomFields},
			} {
				if g, w := canon(t, part.got), canon(t, part.want); g != w {
					t.Errorf("%s differ from %s (%s):\n got %s\nwant %s", part.name, gpath, want.Producer, g, w)
				}
			}
		})
	}
}

func readGolden(path string) (golden, error) {
	var g golden
	b, err := os.ReadFile(path)
	if err != nil {
		return g, err
	}
	return g, json.Unmarshal(b, &g)
}

func writeGolden(t testing.TB, path string, g golden) {
	t.Helper()
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Counter counts records and checks their shape.
type Counter struct {
	N       int // records written
	headers int
}

func (c *Counter) WriteRecord(r *processing.Record) error {
	c.N++
	if c.headers > 0 && len(r.Values) > c.headers {
		return fmt.Errorf("record %q has %d values for %d headers", r.ID, len(r.Values), c.headers)
	}
	return nil
}

// Fuzz seeds f with the files matching glob and checks that conv
// never panics, and that a successful run reports as many records as it
// wrote.
func Fuzz(f *testing.F, conv processing.Converter, globs ...string) {
	for _, g := range globs {
		files, _ := filepath.Glob(g)
		for _, p := range files {
			if strings.HasSuffix(p, ".golden.json") {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Counter
		sum, err := conv.Convert(context.Background(), processing.Input{R: bytes.NewReader(data), Size: int64(len(data))}, &c)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if sum.Records != c.N {
			t.Fatalf("summary says %d records, %d written", sum.Records, c.N)
		}
		for _, h := range sum.Headers {
			if h == "" {
				t.Fatal("empty header")
			}
		}
	})
}

// ErrStop is the error FailWriter returns.
var ErrStop = errors.New("stop")

// FailWriter fails every WriteRecord with ErrStop.
type FailWriter struct{}

func (FailWriter) WriteRecord(*processing.Record) error { return ErrStop }

// Robustness checks behaviours every converter must have, given one valid
// input holding at least one record.
func Robustness(t *testing.T, conv processing.Converter, valid []byte) {
	t.Run("writer error", func(t *testing.T) {
		_, err := conv.Convert(context.Background(), processing.Input{R: bytes.NewReader(valid)}, FailWriter{})
		if !errors.Is(err, ErrStop) {
			t.Fatalf("got %v, want the writer's error", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		big := bytes.Repeat(valid, 1+(1<<20)/len(valid))
		_, err := conv.Convert(ctx, processing.Input{R: bytes.NewReader(big)}, &Counter{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	t.Run("truncated gzip", func(t *testing.T) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(bytes.Repeat(valid, 50))
		zw.Close()
		zr, err := gzip.NewReader(bytes.NewReader(z.Bytes()[:z.Len()/2]))
		if err != nil {
			t.Fatal(err)
		}
		_, err = conv.Convert(context.Background(), processing.Input{R: zr}, &Counter{})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(valid), iotest.ErrReader(ErrStop))
		_, err := conv.Convert(context.Background(), processing.Input{R: r}, &Counter{})
		if !errors.Is(err, ErrStop) {
			t.Fatalf("got %v, want the reader's error", err)
		}
	})
}

// pythonBatchDriver converts many files in one Python process and prints
// one JSON result per line (same shape as pythonDriver).
const pythonBatchDriver = `
import asyncio, json, sys, os, logging, types
sys.path.insert(0, sys.argv[1])
sys.modules.setdefault("pandas", types.ModuleType("pandas"))
logging.disable(logging.CRITICAL)
from pathlib import Path
import app.converters
from app.converters.base import ConverterFactory
from app.schemas.unified_format import OmicsType
conv = ConverterFactory.create(OmicsType(sys.argv[2]))
for path in sys.argv[4:]:
    try:
        ud = asyncio.run(conv.to_unified(Path(path), "S", sys.argv[3]))
    except Exception as e:
        print(json.dumps({"error": str(e)}))
        continue
    d = ud.model_dump(mode="json")
    print(json.dumps({"headers": d["headers"], "records": d["records"],
                      "statistics": d["statistics"], "custom_fields": d["metadata"]["custom_fields"]}))
`

// Differential converts n generated inputs with conv and with the Python
// converter (only with -oracle) and requires identical documents whenever
// Python accepts the input, and an error from conv whenever Python fails,
// unless deliberate(pythonError) says the difference is intended.
func Differential(t *testing.T, conv processing.Converter, omics, format, ext string, n int,
	generate func(r *rand.Rand) []byte, deliberate func(pyErr string) bool) {
	if *oracle == "" {
		t.Skip("Differential test against the Python converters: run with -oracle=DIR")
	}
	if *diffN > 0 {
		n = *diffN
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "driver.py")
	if err := os.WriteFile(script, []byte(pythonBatchDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(n), 42))
	inputs := make([][]byte, n)
	args := []string{script, *oracle, omics, format}
	for i := range inputs {
		inputs[i] = generate(r)
		p := filepath.Join(dir, fmt.Sprintf("in%05d%s", i, ext))
		if err := os.WriteFile(p, inputs[i], 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	out, err := exec.Command("python3", args...).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) != n {
		t.Fatalf("python gave %d results for %d inputs", len(lines), n)
	}
	accepted, failures := 0, 0
	for i, line := range lines {
		var res struct {
			Error        *string         `json:"error"`
			Headers      json.RawMessage `json:"headers"`
			Records      json.RawMessage `json:"records"`
			Statistics   json.RawMessage `json:"statistics"`
			CustomFields json.RawMessage `json:"custom_fields"`
		}
		if err := json.Unmarshal(line, &res); err != nil {
			t.Fatal(err)
		}
		var c Collector
		sum, gerr := conv.Convert(context.Background(), processing.Input{
			R: bytes.NewReader(inputs[i]), Size: int64(len(inputs[i])), Format: format}, &c)
		fail := func(format string, args ...any) {
			failures++
			if failures <= 5 {
				t.Errorf("input %q: "+format, append([]any{inputs[i]}, args...)...)
			}
		}
		if res.Error != nil {
			if gerr == nil && !(deliberate != nil && deliberate(*res.Error)) {
				fail("Python fails (%s) but Go accepts it", *res.Error)
			}
			continue
		}
		accepted++
		if gerr != nil {
			fail("Python accepts it but Go fails: %v", gerr)
			continue
		}
		got := goGolden(t, c.Recs, sum, nil)
		for _, part := range []struct {
			name      string
			got, want json.RawMessage
		}{
			{"headers", got.Headers, res.Headers},
			{"records", got.Records, res.Records},
			{"statistics", got.Statistics, res.Statistics},
			{"custom_fields", got.CustomFields, res.CustomFields},
		} {
			if g, w := canon(t, part.got), canon(t, part.want); g != w {
				fail("%s differ:\n got %s\nwant %s", part.name, g, w)
			}
		}
	}
	t.Logf("%d inputs, %d accepted by Python, %d mismatches", n, accepted, failures)
}

// Pick returns a random element of pool.
func Pick(r *rand.Rand, pool []string) string { return pool[r.IntN(len(pool))] }

// RandomLines builds a document of up to maxLines lines from line(r),
// with random line terminators.
func RandomLines(r *rand.Rand, maxLines int, line func(r *rand.Rand) string) []byte {
	var b strings.Builder
	for i, n := 0, r.IntN(maxLines+1); i < n; i++ {
		b.WriteString(line(r))
		switch r.IntN(10) {
		case 0:
			b.WriteString("\r\n")
		case 1:
			b.WriteString("\r")
		default:
			b.WriteString("\n")
		}
	}
	return []byte(b.String())
}
