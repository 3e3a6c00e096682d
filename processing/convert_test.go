package processing_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/omicsomics/omics-worker/processing"
)

func convertString(t *testing.T, name, content string, opts processing.Options) (*processing.Result, string) {
	t.Helper()
	opts.Name = name
	var out bytes.Buffer
	res, err := processing.Convert(context.Background(), strings.NewReader(content), &out, opts)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return res, out.String()
}

func TestConvertUnknownSizeMeasured(t *testing.T) {
	content := "gene,s1\nA,1\nB,2\n"
	res, doc := convertString(t, "x.tsv", content, processing.Options{})
	if !res.Converted || res.BytesIn != int64(len(content)) {
		t.Fatalf("res = %+v", res)
	}
	if !strings.Contains(doc, `"file_size_bytes": 16`) {
		t.Fatalf("file size not measured:\n%s", doc)
	}
}

func TestConvertGzipByMagic(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "gene\ts1\nA\t1\n")
	zw.Close()
	// Named without .gz: detected by magic bytes; name "x.tsv.GZ": suffix stripped.
	for _, name := range []string{"x.tsv", "x.tsv.GZ"} {
		res, _ := convertString(t, name, gz.String(), processing.Options{Size: int64(gz.Len())})
		if !res.Converted || !res.Gzip || res.Format != "tsv" || res.Records != 1 {
			t.Fatalf("%s: %+v", name, res)
		}
		if res.SampleID != "sample_0_"+strings.TrimSuffix(name, ".GZ")[:len("x.tsv")-4] && res.SampleID != "sample_0_x" && res.SampleID != "sample_0_x.tsv" {
			t.Fatalf("%s: sample id %q", name, res.SampleID)
		}
	}
}

func TestConvertNotConvertedWritesNothing(t *testing.T) {
	res, doc := convertString(t, "notes.dat", "hello\n", processing.Options{})
	if res.Converted || res.Reason != processing.ReasonUnsupported || doc != "" || res.BytesOut != 0 {
		t.Fatalf("res=%+v doc=%q", res, doc)
	}
	res, doc = convertString(t, "a.csv", "", processing.Options{})
	if res.Converted || !errors.Is(res.Err, processing.ErrEmptyFile) || doc != "" {
		t.Fatalf("empty: res=%+v doc=%q", res, doc)
	}
}

func TestConvertParseErrorPosition(t *testing.T) {
	res, _ := convertString(t, "a.csv", "gene_id,s1\nA,1\nB,1,2\n", processing.Options{})
	var pe *processing.ParseError
	if res.Converted || !errors.As(res.Err, &pe) || pe.Line != 3 {
		t.Fatalf("res=%+v", res)
	}
	last := res.ProcessingInfo[len(res.ProcessingInfo)-1]
	if last.Key != "error" || last.Value != "line 3: this row has 3 fields but the header row has 2" {
		t.Fatalf("info %v", res.ProcessingInfo)
	}
}

func TestConvertForcedOmics(t *testing.T) {
	res, _ := convertString(t, "a.bed", "chr1\t1\t2\n", processing.Options{OmicsType: processing.Epigenomics})
	if res.Converted || res.Err == nil || res.Err.Error() != "No converter registered for OmicsType.EPIGENOMICS" {
		t.Fatalf("res=%+v", res)
	}
	// Forced format, like /converters/convert/to-unified: proteomics TSV.
	res, doc := convertString(t, "a.txt", "protein_id\tx\nP1\t1\n", processing.Options{OmicsType: processing.Proteomics, Format: "tsv"})
	if !res.Converted || !strings.Contains(doc, `"id": "P1"`) || !strings.Contains(doc, `"x": "1"`) {
		t.Fatalf("res=%+v\n%s", res, doc)
	}
}

// endless yields a never-ending TSV matrix.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	row := "G\t1\t2\t3\n"
	for i := range p {
		if e.n == 0 {
			p[i] = "g\ta\tb\tc\n"[i%8]
			if i == 7 {
				e.n = 1
			}
			continue
		}
		p[i] = row[(i)%len(row)]
	}
	return len(p), nil
}

func TestConvertCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var progressed int64
	opts := processing.Options{Name: "x.tsv", Size: 1 << 40, TempDir: t.TempDir(), Progress: func(done, total int64) {
		progressed = done
		if done > 4<<20 {
			cancel()
		}
	}}
	res, err := processing.Convert(ctx, &endless{}, io.Discard, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, res = %+v", err, res)
	}
	if progressed < 4<<20 || progressed > 16<<20 {
		t.Fatalf("progress %d", progressed)
	}
}

func TestConvertReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("gene\ts\nA\t1\n"), iotest.ErrReader(boom))
	_, err := processing.Convert(context.Background(), r, io.Discard, processing.Options{Name: "x.tsv"})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

type failWriter struct{}

var errDisk = errors.New("disk full")

func (failWriter) Write(p []byte) (int, error) { return 0, errDisk }

func TestConvertWriteError(t *testing.T) {
	_, err := processing.Convert(context.Background(), strings.NewReader("gene\ts\nA\t1\n"), failWriter{}, processing.Options{Name: "x.tsv"})
	if !errors.Is(err, errDisk) {
		t.Fatalf("err = %v", err)
	}
}

func TestConvertHugeLine(t *testing.T) {
	// A 1 GiB single line fails with ErrLineTooLong after reading at most
	// the line limit (16 MiB), without holding the whole line.
	r := io.LimitReader(repeatByte('a'), 1<<30)
	var out bytes.Buffer
	res, err := processing.Convert(context.Background(), r, &out, processing.Options{Name: "x.tsv", Size: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Converted || !errors.Is(res.Err, processing.ErrLineTooLong) {
		t.Fatalf("res = %+v", res)
	}
}

type repeatByte byte

func (b repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestConvertSpoolToFile(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("gene\ts1\n")
	for i := 0; i < 2000; i++ {
		sb.WriteString("G\t1.5\n")
	}
	dir := t.TempDir()
	var mem, file bytes.Buffer
	if _, err := processing.Convert(context.Background(), strings.NewReader(sb.String()), &mem, processing.Options{Name: "x.tsv", Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := processing.Convert(context.Background(), strings.NewReader(sb.String()), &file, processing.Options{Name: "x.tsv", Now: fixedNow, SpoolMemory: -1, TempDir: dir}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem.Bytes(), file.Bytes()) {
		t.Fatal("file spool output differs from memory spool output")
	}
	if ents, _ := readDir(dir); ents != 0 {
		t.Fatalf("%d spool files left behind", ents)
	}
}

func fixedNow() (t0 timeT) { return created }

// TestDocumentRoundTrip checks that the document parses as JSON and has
// the UnifiedData shape.
func TestDocumentRoundTrip(t *testing.T) {
	_, doc := convertString(t, "q.csv", "gene_id,v\n\"a\u00e9\U0001F600\",\"x\ny\"\n", processing.Options{Now: fixedNow})
	var v map[string]any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	rec := v["records"].([]any)[0].(map[string]any)
	if rec["id"] != "a\u00e9\U0001F600" || rec["values"].(map[string]any)["v"] != "x\ny" {
		t.Fatalf("record %v", rec)
	}
}

func FuzzJSONWriter(f *testing.F) {
	f.Add("id", "key", "value", 1.5, int64(3))
	f.Add("\u00e9\U0001F600\x7f</>&", "\"\\\n", "\x00\x1f", math.Inf(1), int64(-1))
	f.Add("", "", "\xff", math.NaN(), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, id, key, val string, fl float64, n int64) {
		dw := processing.NewDocWriter(processing.DocOptions{})
		defer dw.Close()
		vals := []processing.Field{{Key: key, Value: val}, {Key: "f", Value: fl}, {Key: "n", Value: n}, {Key: "nil", Value: nil},
			{Key: "obj", Value: []processing.Field{{Key: key, Value: true}}}}
		for i := 0; i < 2; i++ {
			if err := dw.WriteRecord(&processing.Record{ID: id, Values: vals}); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		meta := &processing.Metadata{OmicsType: processing.Genomics, SourceFormat: val, SampleID: id, CreatedAt: created, UpdatedAt: updated,
			CustomFields: []processing.Field{{Key: key, Value: n}}}
		if err := dw.Finish(&out, meta, []string{key, val}, []processing.Field{{Key: "total", Value: int64(2)}}); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Metadata map[string]any `json:"metadata"`
			Headers  []string       `json:"headers"`
			Records  []struct {
				ID     string         `json:"id"`
				Values map[string]any `json:"values"`
			} `json:"records"`
		}
		dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("invalid JSON: %v\n%s", err, out.Bytes())
		}
		fix := func(s string) string { return string([]rune(s)) } // one U+FFFD per invalid byte, like the writer
		if len(doc.Records) != 2 || doc.Records[1].ID != fix(id) || doc.Headers[0] != fix(key) || doc.Metadata["sample_id"] != fix(id) {
			t.Fatalf("round trip: %+v", doc)
		}
		got := doc.Records[0].Values
		if got[fix(key)] != fix(val) && fix(key) != "f" && fix(key) != "n" && fix(key) != "nil" && fix(key) != "obj" {
			t.Fatalf("value %q -> %v", val, got[fix(key)])
		}
		if fix(key) != "f" {
			if math.IsNaN(fl) || math.IsInf(fl, 0) {
				if got["f"] != nil {
					t.Fatalf("NaN/Inf not null: %v", got["f"])
				}
			} else {
				num, _ := got["f"].(json.Number).Float64()
				if num != fl {
					t.Fatalf("float %v -> %v", fl, got["f"])
				}
			}
		}
		for _, c := range out.Bytes() {
			if c >= 0x7f || (c < 0x20 && c != '\n') {
				t.Fatalf("byte 0x%02x in output", c)
			}
		}
	})
}

type timeT = time.Time

func readDir(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	return len(ents), err
}

// TestDocWriterLargeRecordStreamed: a record with a value of many
// megabytes or with many values is encoded in pieces (issue 9 #8: a 60 MiB
// FASTA header was encoded whole, twice) with the same bytes as the
// encoding of the whole record, including escapes and invalid UTF-8 at the
// piece boundaries.
func TestDocWriterLargeRecordStreamed(t *testing.T) {
	big := strings.Repeat("a\u00e9\U0001F600\"\\\n\xff\xe2\x82", 300<<10/12) + "tail"
	many := make([]processing.Field, 50000)
	for i := range many {
		many[i] = processing.Field{Key: "col\u0130" + strings.Repeat("x", i%7), Value: "v\xe9"}
	}
	many[100].Value = 1.5
	many[200].Value = nil
	many[300].Value = big
	recs := []processing.Record{{ID: big, Values: []processing.Field{{Key: "id", Value: big}, {Key: big, Value: int64(3)}}}, {ID: "m", Values: many}}
	var want []byte
	for i, r := range recs {
		if i > 0 {
			want = append(want, ',')
		}
		want = append(want, "\n    {\n      \"id\": "...)
		want, _ = processing.AppendJSON(want, r.ID, 3)
		want = append(want, ",\n      \"values\": "...)
		want, _ = processing.AppendJSON(want, r.Values, 3)
		want = append(want, "\n    }"...)
	}
	dw := processing.NewDocWriter(processing.DocOptions{SpoolMemory: -1, TempDir: t.TempDir()})
	defer dw.Close()
	for i := range recs {
		if err := dw.WriteRecord(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	meta := &processing.Metadata{OmicsType: processing.Genomics, CreatedAt: created, UpdatedAt: updated}
	if err := dw.Finish(&out, meta, nil, nil); err != nil {
		t.Fatal(err)
	}
	if dw.SpooledBytes() != int64(len(want)) || !bytes.Contains(out.Bytes(), want) {
		t.Fatalf("streamed record differs from the whole encoding (spooled %d, want %d)", dw.SpooledBytes(), len(want))
	}
}

// TestDocWriterStreamedHead: a header list larger than one write chunk is
// written in pieces with the same bytes in stream and spool mode, and a
// change of the headers after WriteHead is still detected (it is now
// checked by a digest instead of a second encoded copy of the headers).
func TestDocWriterStreamedHead(t *testing.T) {
	headers := make([]string, 200000)
	for i := range headers {
		headers[i] = "h\u00e9" + strings.Repeat("x", i%5)
	}
	meta := func() *processing.Metadata {
		return &processing.Metadata{OmicsType: processing.Transcriptomics, CreatedAt: created, UpdatedAt: updated, CustomFields: []processing.Field{}}
	}
	rec := &processing.Record{ID: "r", Values: []processing.Field{{Key: "h\u00e9", Value: "1"}}}
	write := func(stream bool, final []string) (string, error) {
		var out bytes.Buffer
		dw := processing.NewDocWriter(processing.DocOptions{})
		defer dw.Close()
		if stream {
			dw.Stream(&out, meta())
			if err := dw.WriteHead(headers, []processing.Field{}); err != nil {
				return "", err
			}
		}
		if err := dw.WriteRecord(rec); err != nil {
			return "", err
		}
		err := dw.Finish(&out, meta(), final, []processing.Field{{Key: "n", Value: int64(1)}})
		return out.String(), err
	}
	spooled, err := write(false, headers)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := write(true, headers)
	if err != nil {
		t.Fatal(err)
	}
	if spooled != streamed {
		t.Fatal("streamed document differs from the spooled one")
	}
	changed := append([]string(nil), headers...)
	changed[len(changed)-1] += "!"
	if _, err := write(true, changed); err == nil {
		t.Fatal("a header change after WriteHead was not detected")
	}
}

// TestConvertGzipZeroPadding: NUL bytes after a gzip member (tape/block
// padding) are skipped as Python's gzip module does (issue 9 #14: the file
// was reported corrupt), also before a following member; any other
// trailing byte is still a corrupt stream, as in Python (BadGzipFile).
func TestConvertGzipZeroPadding(t *testing.T) {
	member := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		io.WriteString(zw, s)
		zw.Close()
		return b.String()
	}
	m1, m2 := member("gene\ts1\nA\t1\n"), member("B\t2\n")
	for _, tc := range []struct {
		name, data string
		records    int // -1: not converted, corrupt gzip
	}{
		{"one NUL", m1 + "\x00", 1},
		{"1000 NULs", m1 + strings.Repeat("\x00", 1000), 1},
		{"200 KiB of NULs", m1 + strings.Repeat("\x00", 200<<10), 1},
		{"NULs then a member", m1 + strings.Repeat("\x00", 7) + m2, 2},
		{"two members", m1 + m2, 2},
		{"garbage", m1 + "xyz", -1},
		{"NULs then garbage", m1 + "\x00\x00xyzxyzxyzxyz", -1},
		{"NULs then a truncated member", m1 + "\x00" + m2[:15], -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int64{0, int64(len(tc.data))} {
				res, _ := convertString(t, "x.tsv.gz", tc.data, processing.Options{Size: size})
				if tc.records < 0 {
					if res.Converted || !errors.Is(res.Err, processing.ErrTruncated) {
						t.Fatalf("size %d: %+v", size, res)
					}
					continue
				}
				if !res.Converted || res.Records != tc.records {
					t.Fatalf("size %d: converted %v records %d err %v", size, res.Converted, res.Records, res.Err)
				}
			}
		})
	}
}

// TestConvertBOM: a leading UTF-8 BOM. FASTA, FASTQ and MGF (formats the
// Go worker converts and Python does not) read past it, so the document is
// the one of the file without BOM (issue 9 #17: detection looked past the
// BOM but the FASTA and FASTQ converters then failed on it, and MGF lost
// its first BEGIN IONS). Formats Python converts keep Python's reading:
// the BOM stays U+FEFF at the start of the first line (CSV: part of the
// first header name; VCF: the "##fileformat" line is not recognised).
func TestConvertBOM(t *testing.T) {
	const bom = "\ufeff"
	for _, tc := range []struct{ name, body string }{
		{"s.fasta", ">s1 desc\nACGT\n"},
		{"s.fa.gz", ">s1 desc\nACGT\n"},
		{"noext", ">s1 desc\nACGT\n"},
		{"r.fastq", "@r1\nACGT\n+\nIIII\n"},
		{"noext", "@r1\nACGT\n+\nIIII\n"},
		{"s.mgf", "BEGIN IONS\nPEPMASS=100\n100 10\nEND IONS\n"},
		{"noext", "BEGIN IONS\nPEPMASS=100\n100 10\nEND IONS\n"},
	} {
		gz := strings.HasSuffix(tc.name, ".gz")
		enc := func(s string) string {
			if !gz {
				return s
			}
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			io.WriteString(zw, s)
			zw.Close()
			return b.String()
		}
		// The same Size: file_size_bytes would differ by the BOM's 3 bytes.
		plainRes, plain := convertString(t, tc.name, enc(tc.body), processing.Options{Now: fixedNow, Size: 1000})
		res, doc := convertString(t, tc.name, enc(bom+tc.body), processing.Options{Now: fixedNow, Size: 1000})
		if !plainRes.Converted || !res.Converted || doc != plain {
			t.Errorf("%s %q: with BOM converted=%v err=%v, document equal to the one without BOM: %v", tc.name, tc.body, res.Converted, res.Err, doc == plain)
		}
	}
	// Python parity: the BOM is part of the first CSV header name.
	res, doc := convertString(t, "m.csv", bom+"gene,s1\ng1,1\n", processing.Options{Now: fixedNow})
	if !res.Converted || !strings.Contains(doc, `"\ufeffgene"`) {
		t.Errorf("csv: %+v\n%s", res, doc)
	}
	// VCF: Python does not see "##fileformat=" behind the BOM.
	res, doc = convertString(t, "v.vcf", bom+"##fileformat=VCFv4.2\nchr1\t1\t.\tA\tT\t.\t.\t.\n", processing.Options{Now: fixedNow})
	if !res.Converted || !strings.Contains(doc, `"vcf_version": null`) {
		t.Errorf("vcf: %+v\n%s", res, doc)
	}
}

// TestConvertUTF16: UTF-16/UTF-32 text (a spreadsheet's "Unicode text"
// export) is refused like Python refuses it (strict UTF-8), with a message
// that names the encoding and what to do, never "looks binary" (issue 9
// #18). The XML formats get the bytes: their parser decides the encoding.
func TestConvertUTF16(t *testing.T) {
	le := func(s string) string {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return string(b)
	}
	be := func(s string) string {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r>>8), byte(r))
		}
		return string(b)
	}
	gz := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		io.WriteString(zw, s)
		zw.Close()
		return b.String()
	}
	const tsv = "gene\tS1\nBRCA1\t1.5\n"
	for _, tc := range []struct {
		name, data, enc string
	}{
		{"x.tsv", "\xff\xfe" + le(tsv), "UTF-16 (little-endian)"},
		{"x.csv", "\xfe\xff" + be(strings.ReplaceAll(tsv, "\t", ",")), "UTF-16 (big-endian)"},
		{"x.txt", le(tsv), "UTF-16 (little-endian, without byte order mark)"},
		{"x.csv", be("a,b\n"), "UTF-16 (big-endian, without byte order mark)"},
		{"x.tsv.gz", gz("\xff\xfe" + le(tsv)), "UTF-16 (little-endian)"},
		{"x.vcf", "\xff\xfe" + le("##fileformat=VCFv4.2\n"), "UTF-16 (little-endian)"},
		{"x.csv", "\xff\xfe\x00\x00" + le(strings.Repeat("a\x00", 3)), "UTF-32 (little-endian)"},
		{"x.csv", "\x00\x00\xfe\xff\x00\x00\x00a", "UTF-32 (big-endian)"},
		{"x.csv", "\xff\xfe", "UTF-16 (little-endian)"},
	} {
		res, _ := convertString(t, tc.name, tc.data, processing.Options{})
		msg := ""
		if res.Err != nil {
			msg = res.Err.Error()
		}
		if res.Converted || !errors.Is(res.Err, processing.ErrUTF16) || !errors.Is(res.Err, processing.ErrInvalidUTF8) ||
			!strings.Contains(msg, "the file is "+tc.enc+" text") || strings.Contains(msg, "binary") {
			t.Errorf("%s %q: converted=%v err=%v", tc.name, tc.data[:min(len(tc.data), 12)], res.Converted, res.Err)
		}
	}
	// Still binary: NULs that are not UTF-16 text.
	for _, data := range []string{"\x00\x01\x02\x03binary", "ab\x00", "a\x00b\x00\x01\x00"} {
		res, _ := convertString(t, "x.csv", data, processing.Options{})
		if !errors.Is(res.Err, processing.ErrBinary) {
			t.Errorf("%q: err = %v, want binary", data, res.Err)
		}
	}
	// mzML: not refused as binary nor as UTF-16 by the generic check.
	res, _ := convertString(t, "x.mzML", "\xff\xfe"+le(`<?xml version="1.0" encoding="UTF-16"?><mzML/>`), processing.Options{})
	if errors.Is(res.Err, processing.ErrBinary) || errors.Is(res.Err, processing.ErrUTF16) {
		t.Errorf("mzML in UTF-16: %v", res.Err)
	}
}

// TestVCFStreamsWithoutSpool: a streamed VCF conversion writes its records
// straight to the output (issue 13 #4): it needs no spool, so a missing
// spool directory does not matter, and the bytes equal the spooled ones.
func TestVCFStreamsWithoutSpool(t *testing.T) {
	in := "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" +
		"chr1\t10\trs1\tA\tG\t50\tPASS\tDP=3\nchr2\t20\t.\tC\tT\t.\tq10\tDP=4\n"
	opts := processing.Options{Name: "x.vcf", Size: int64(len(in)), Now: fixedNow,
		TempDir: filepath.Join(t.TempDir(), "gone"), SpoolMemory: -1}
	var spooled bytes.Buffer
	if _, err := processing.Convert(context.Background(), strings.NewReader(in), &spooled, opts); !errors.Is(err, processing.ErrOutput) {
		t.Fatalf("spooled conversion without a spool directory: err %v, want ErrOutput", err)
	}
	opts.Stream = true
	var streamed bytes.Buffer
	res, err := processing.Convert(context.Background(), strings.NewReader(in), &streamed, opts)
	if err != nil || !res.Converted || res.Records != 2 {
		t.Fatalf("streamed: %v %+v", err, res)
	}
	opts.Stream, opts.TempDir, opts.SpoolMemory = false, "", 0
	spooled.Reset()
	if _, err := processing.Convert(context.Background(), strings.NewReader(in), &spooled, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(streamed.Bytes(), spooled.Bytes()) {
		t.Errorf("streamed document differs:\n%s\nspooled:\n%s", streamed.Bytes(), spooled.Bytes())
	}
}

// TestVCFLateFileformatStream: a ##fileformat= line after the first record
// changes vcf_version (the last one wins, as in Python). Streamed, the head
// is already written: Convert reports ErrHeadChanged (the caller converts
// again without Stream), never a document with the wrong version.
func TestVCFLateFileformatStream(t *testing.T) {
	in := "##fileformat=VCFv4.1\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" +
		"chr1\t10\trs1\tA\tG\t50\tPASS\tDP=3\n##fileformat=VCFv4.3\nchr2\t20\t.\tC\tT\t.\tq10\tDP=4\n"
	opts := processing.Options{Name: "x.vcf", Size: int64(len(in)), Now: fixedNow, Stream: true}
	var out bytes.Buffer
	_, err := processing.Convert(context.Background(), strings.NewReader(in), &out, opts)
	if !errors.Is(err, processing.ErrHeadChanged) {
		t.Fatalf("streamed: err %v, want ErrHeadChanged", err)
	}
	opts.Stream = false
	out.Reset()
	res, err := processing.Convert(context.Background(), strings.NewReader(in), &out, opts)
	if err != nil || !res.Converted {
		t.Fatalf("%v %+v", err, res)
	}
	if !strings.Contains(out.String(), `"vcf_version": "VCFv4.3"`) {
		t.Errorf("vcf_version is not the last one:\n%s", out.String())
	}
}
