package processing

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// FormatVersion is UnifiedData metadata.format_version.
const FormatVersion = "1.0.0"

// DefaultSpoolMemory is how many bytes of encoded records DocWriter keeps
// in memory before it moves them to a temporary file.
const DefaultSpoolMemory = 4 << 20

// BigInt is an integer too large for int64, kept as its canonical decimal
// text (as returned by pyfmt.ParseBigInt) and written as a JSON number.
type BigInt string

// Metadata is the UnifiedData "metadata" object.
type Metadata struct {
	OmicsType       OmicsType
	SourceFormat    string
	SampleID        string
	Organism        string // "" is written as null
	ReferenceGenome string // "" is written as null
	CreatedAt       time.Time
	UpdatedAt       time.Time
	CustomFields    []Field
}

// DocOptions configures a DocWriter. The zero value is the default.
type DocOptions struct {
	// TempDir is where the record spool file is created ("" = os.TempDir()).
	TempDir string
	// SpoolMemory is the in-memory spool limit (0 = DefaultSpoolMemory,
	// negative = always spool to a file).
	SpoolMemory int
}

// DocWriter writes a UnifiedData JSON document in the byte layout of
// Python's json.dumps(model_dump(mode="json"), indent=2). Records are
// encoded as they arrive (WriteRecord) into a spool — memory up to
// DocOptions.SpoolMemory, then a temporary file — because the metadata that
// precedes them in the document is only known at the end. Finish writes
// the whole document. Close removes the spool file; always call it.
type DocWriter struct {
	opts DocOptions
	// streaming (see Stream / WriteHead)
	sw       io.Writer
	smeta    *Metadata
	headDone bool
	headSum  [sha256.Size]byte // digest of headers + custom_fields, checked in Finish
	direct   *bufio.Writer
	mem      bytes.Buffer
	file     *os.File
	fileBuf  *bufio.Writer
	buf      []byte
	keys     []cachedKey // encoded keys of the first record fields
	n        int
	spooled  int64
	err      error
}

// NewDocWriter returns an empty DocWriter.
func NewDocWriter(opts DocOptions) *DocWriter {
	if opts.SpoolMemory == 0 {
		opts.SpoolMemory = DefaultSpoolMemory
	}
	return &DocWriter{opts: opts}
}

// Records is the number of records written so far.
func (d *DocWriter) Records() int { return d.n }

// SpooledBytes is the size of the encoded records so far.
func (d *DocWriter) SpooledBytes() int64 { return d.spooled }

// recordChunk is how many encoded bytes of one record WriteRecord buffers
// before it passes them on to the spool: a record with millions of values
// or a value of many megabytes is streamed, never encoded whole in memory.
const recordChunk = 256 << 10

// WriteRecord encodes r and appends it to the spool. r may be reused by the
// caller afterwards. A record larger than recordChunk is passed on in
// pieces; if it then fails to encode, the spool is unusable and every later
// call fails too (the conversion fails with that error anyway).
func (d *DocWriter) WriteRecord(r *Record) error {
	if d.err != nil {
		return d.err
	}
	e := recEncoder{d: d, b: d.buf[:0]}
	if d.n > 0 {
		e.b = append(e.b, ',')
	}
	e.b = pyfmt.AppendIndent(e.b, 2)
	e.b = append(e.b, '{')
	e.b = pyfmt.AppendIndent(e.b, 3)
	e.b = append(e.b, `"id": `...)
	e.str(r.ID)
	e.b = append(e.b, ',')
	e.b = pyfmt.AppendIndent(e.b, 3)
	e.b = append(e.b, `"values": `...)
	if err := e.object(r.Values, 3); err != nil {
		err = fmt.Errorf("record %q: %w", r.ID, err)
		if e.flushed {
			d.err = err
		}
		d.keepBuf(e.b)
		return err
	}
	e.b = pyfmt.AppendIndent(e.b, 2)
	e.b = append(e.b, '}')
	d.n++
	err := e.flush()
	d.keepBuf(e.b)
	return err
}

// keepBuf keeps b for reuse by the next record unless it grew large.
func (d *DocWriter) keepBuf(b []byte) {
	if cap(b) > 4*recordChunk {
		b = nil
	}
	d.buf = b[:0]
}

// recEncoder encodes one record into b, passing full chunks to the spool.
type recEncoder struct {
	d       *DocWriter
	b       []byte
	flushed bool // part of the record is already in the spool
	err     error
}

func (e *recEncoder) flush() error {
	if e.err != nil {
		return e.err
	}
	if len(e.b) == 0 {
		return nil
	}
	e.d.spooled += int64(len(e.b))
	e.err = e.d.spool(e.b)
	e.b = e.b[:0]
	return e.err
}

func (e *recEncoder) maybeFlush() error {
	if len(e.b) < recordChunk {
		return nil
	}
	e.flushed = true
	return e.flush()
}

// str appends a JSON string, in pieces if it is long.
func (e *recEncoder) str(s string) {
	if len(s) < recordChunk {
		e.b = pyfmt.AppendJSONString(e.b, s)
		return
	}
	e.b = append(e.b, '"')
	for len(s) > 0 {
		p := cutRune(s, recordChunk)
		e.b = pyfmt.AppendJSONStringContent(e.b, p)
		s = s[len(p):]
		if e.maybeFlush() != nil {
			return
		}
	}
	e.b = append(e.b, '"')
}

// object is appendObject for the top level of a record.
func (e *recEncoder) object(fields []Field, level int) error {
	if len(fields) == 0 {
		e.b = append(e.b, "{}"...)
		return nil
	}
	e.b = append(e.b, '{')
	var err error
	for i := range fields {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if k := e.d.cachedKey(i, fields[i].Key, level+1); k != nil {
			e.b = append(e.b, k...)
		} else {
			e.b = pyfmt.AppendIndent(e.b, level+1)
			e.str(fields[i].Key)
			e.b = append(e.b, ':', ' ')
		}
		if s, ok := fields[i].Value.(string); ok {
			e.str(s)
		} else if e.b, err = appendValue(e.b, fields[i].Value, level+1); err != nil {
			return err
		}
		if err := e.maybeFlush(); err != nil {
			return err
		}
	}
	e.b = pyfmt.AppendIndent(e.b, level)
	e.b = append(e.b, '}')
	return nil
}

// cachedKey is the encoding of a record field's key: indentation, quoted
// key, ": ". Converters reuse the same keys in the same order for every
// record, so the first maxCachedKeys are encoded once.
type cachedKey struct {
	key   string
	level int
	enc   []byte
}

const (
	maxCachedKeys   = 64
	maxCachedKeyLen = 256
)

// cachedKey returns the encoding of key at field index i and level, or
// nil when it is not cached (the caller encodes it).
func (d *DocWriter) cachedKey(i int, key string, level int) []byte {
	if i < len(d.keys) {
		if c := &d.keys[i]; c.key == key && c.level == level {
			return c.enc
		}
	}
	if i >= maxCachedKeys || len(key) > maxCachedKeyLen || i > len(d.keys) {
		return nil
	}
	b := pyfmt.AppendIndent(nil, level)
	b = pyfmt.AppendJSONString(b, key)
	b = append(b, ':', ' ')
	if i == len(d.keys) {
		d.keys = append(d.keys, cachedKey{})
	}
	d.keys[i] = cachedKey{key: key, level: level, enc: b}
	return b
}

// HeadWriter is implemented by a RecordWriter that can write the document
// head early. A converter whose headers and custom_fields are final before
// its first record (e.g. an expression matrix) may call WriteHead once,
// before WriteRecord; records then go straight to the output instead of
// the spool.
type HeadWriter interface {
	WriteHead(headers []string, customFields []Field) error
}

// Stream enables WriteHead: the head and the records are written to w as
// soon as they are known. meta must be complete except CustomFields.
// Then w receives a partial document if the conversion fails later.
func (d *DocWriter) Stream(w io.Writer, meta *Metadata) {
	d.sw, d.smeta = w, meta
}

// WriteHead implements HeadWriter. Without Stream, or after a record, it
// does nothing (the head is written by Finish).
func (d *DocWriter) WriteHead(headers []string, customFields []Field) error {
	if d.sw == nil || d.n > 0 || d.headDone || d.err != nil {
		return nil
	}
	m := *d.smeta
	m.CustomFields = customFields
	d.direct = bufio.NewWriterSize(d.sw, 256<<10)
	emit := func(p []byte) error { _, err := d.direct.Write(p); return outputErr(opWriteDoc, err) }
	b, err := appendHead(make([]byte, 0, 4096), &m, headers, emit)
	if err != nil {
		d.err = err
		return err
	}
	d.headSum = tailSum(customFields, headers)
	if _, err := d.direct.Write(append(b, '[')); err != nil {
		d.err = outputErr(opWriteDoc, err)
		return d.err
	}
	d.headDone = true
	return nil
}

// tailSum is a digest of what must not change after WriteHead.
func tailSum(custom []Field, headers []string) [sha256.Size]byte {
	h := sha256.New()
	b, err := appendObject(nil, custom, 0)
	if err != nil {
		b = append(b, 0xff) // never equal to a valid encoding
	}
	h.Write(b)
	var n [8]byte
	for _, s := range headers {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func (d *DocWriter) spool(b []byte) error {
	if d.direct != nil {
		if _, err := d.direct.Write(b); err != nil {
			d.err = outputErr(opWriteDoc, err)
			return d.err
		}
		return nil
	}
	if d.file == nil && (d.opts.SpoolMemory < 0 || d.mem.Len()+len(b) > d.opts.SpoolMemory) {
		f, err := os.CreateTemp(d.opts.TempDir, "omics-records-*.json")
		if err != nil {
			d.err = outputErr("creating record spool", err)
			return d.err
		}
		d.file = f
		d.fileBuf = bufio.NewWriterSize(f, 256<<10)
		if _, err := d.fileBuf.Write(d.mem.Bytes()); err != nil {
			d.err = outputErr(opWriteSpool, err)
			return d.err
		}
		d.mem = bytes.Buffer{}
	}
	if d.file != nil {
		if _, err := d.fileBuf.Write(b); err != nil {
			d.err = outputErr(opWriteSpool, err)
			return d.err
		}
		return nil
	}
	d.mem.Write(b)
	return nil
}

// Finish writes the complete document to w: metadata, headers, the spooled
// records and statistics. It can be called once.
func (d *DocWriter) Finish(w io.Writer, meta *Metadata, headers []string, stats []Field) error {
	if d.err != nil {
		return d.err
	}
	if d.headDone {
		if tailSum(meta.CustomFields, headers) != d.headSum {
			return ErrHeadChanged
		}
		if d.n == 0 {
			if _, err := d.direct.Write([]byte("]")); err != nil {
				return outputErr(opWriteDoc, err)
			}
		} else {
			b := pyfmt.AppendIndent(nil, 1)
			if _, err := d.direct.Write(append(b, ']')); err != nil {
				return outputErr(opWriteDoc, err)
			}
		}
		b, err := appendStats(nil, stats)
		if err != nil {
			return err
		}
		if _, err := d.direct.Write(b); err != nil {
			return outputErr(opWriteDoc, err)
		}
		return outputErr(opWriteDoc, d.direct.Flush())
	}
	emit := func(p []byte) error { _, err := w.Write(p); return outputErr(opWriteDoc, err) }
	b, err := appendHead(make([]byte, 0, 4096), meta, headers, emit)
	if err != nil {
		return err
	}
	if d.n == 0 {
		b = append(b, "[]"...)
		if _, err := w.Write(b); err != nil {
			return outputErr(opWriteDoc, err)
		}
	} else {
		b = append(b, '[')
		if _, err := w.Write(b); err != nil {
			return outputErr(opWriteDoc, err)
		}
		if err := d.copySpool(w); err != nil {
			return err
		}
		b = pyfmt.AppendIndent(b[:0], 1)
		b = append(b, ']')
		if _, err := w.Write(b); err != nil {
			return outputErr(opWriteDoc, err)
		}
	}
	if b, err = appendStats(b[:0], stats); err != nil {
		return err
	}
	_, err = w.Write(b)
	return outputErr(opWriteDoc, err)
}

func (d *DocWriter) copySpool(w io.Writer) error {
	if d.file == nil {
		_, err := w.Write(d.mem.Bytes())
		return outputErr(opWriteDoc, err)
	}
	if err := d.fileBuf.Flush(); err != nil {
		return outputErr(opWriteSpool, err)
	}
	if _, err := d.file.Seek(0, io.SeekStart); err != nil {
		return outputErr(opReadSpool, err)
	}
	// A write error of w is already an *OutputError (see writeDoc); what
	// is left is a read error of the spool.
	_, err := io.Copy(outputWriter{w}, d.file)
	return outputErr(opReadSpool, err)
}

// Close removes the spool file, if any.
func (d *DocWriter) Close() error {
	d.mem = bytes.Buffer{}
	if d.file == nil {
		return nil
	}
	name := d.file.Name()
	err := d.file.Close()
	d.file = nil
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// appendHead appends the document up to and including `"records": `. If
// emit is not nil, the part encoded so far is passed to it (and dropped
// from b) whenever it reaches recordChunk bytes, so that a header list of
// millions of names is never encoded whole in memory.
func appendHead(b []byte, meta *Metadata, headers []string, emit func([]byte) error) ([]byte, error) {
	b = append(b, '{')
	b = pyfmt.AppendIndent(b, 1)
	b = append(b, `"metadata": {`...)
	b = pyfmt.AppendIndent(b, 2)
	b = append(b, `"omics_type": `...)
	b = pyfmt.AppendJSONString(b, string(meta.OmicsType))
	b = appendMember(b, 2, "format_version")
	b = pyfmt.AppendJSONString(b, FormatVersion)
	b = appendMember(b, 2, "source_format")
	b = pyfmt.AppendJSONString(b, meta.SourceFormat)
	b = appendMember(b, 2, "sample_id")
	b = pyfmt.AppendJSONString(b, meta.SampleID)
	b = appendMember(b, 2, "organism")
	b = appendOptString(b, meta.Organism)
	b = appendMember(b, 2, "reference_genome")
	b = appendOptString(b, meta.ReferenceGenome)
	b = appendMember(b, 2, "created_at")
	b = appendTime(b, meta.CreatedAt)
	b = appendMember(b, 2, "updated_at")
	b = appendTime(b, meta.UpdatedAt)
	b = appendMember(b, 2, "processing_steps")
	b = append(b, "[]"...)
	b = appendMember(b, 2, "custom_fields")
	var err error
	if b, err = appendObject(b, meta.CustomFields, 2); err != nil {
		return b, fmt.Errorf("custom_fields: %w", err)
	}
	b = pyfmt.AppendIndent(b, 1)
	b = append(b, '}')
	b = appendMember(b, 1, "headers")
	if len(headers) == 0 {
		b = append(b, "[]"...)
	} else {
		b = append(b, '[')
		for i, h := range headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = pyfmt.AppendIndent(b, 2)
			b = pyfmt.AppendJSONString(b, h)
			if emit != nil && len(b) >= recordChunk {
				if err := emit(b); err != nil {
					return b[:0], err
				}
				b = b[:0]
			}
		}
		b = pyfmt.AppendIndent(b, 1)
		b = append(b, ']')
	}
	b = appendMember(b, 1, "records")
	return b, nil
}

// appendStats appends `,\n  "statistics": {...}\n}`.
func appendStats(b []byte, stats []Field) ([]byte, error) {
	b = append(b, ',')
	b = pyfmt.AppendIndent(b, 1)
	b = append(b, `"statistics": `...)
	b, err := appendObject(b, stats, 1)
	if err != nil {
		return b, fmt.Errorf("statistics: %w", err)
	}
	return append(b, '\n', '}'), nil
}

func appendMember(b []byte, level int, key string) []byte {
	b = append(b, ',')
	b = pyfmt.AppendIndent(b, level)
	b = pyfmt.AppendJSONString(b, key)
	return append(b, ':', ' ')
}

func appendOptString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return pyfmt.AppendJSONString(b, s)
}

// errBadValue reports a Field value of a type the writer does not know.
var errBadValue = errors.New("unsupported JSON value type")

// appendObject appends fields as a JSON object whose opening brace is at
// indentation level.
func appendObject(b []byte, fields []Field, level int) ([]byte, error) {
	if len(fields) == 0 {
		return append(b, "{}"...), nil
	}
	b = append(b, '{')
	var err error
	for i := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = pyfmt.AppendIndent(b, level+1)
		b = pyfmt.AppendJSONString(b, fields[i].Key)
		b = append(b, ':', ' ')
		if b, err = appendValue(b, fields[i].Value, level+1); err != nil {
			return b, err
		}
	}
	b = pyfmt.AppendIndent(b, level)
	return append(b, '}'), nil
}

// appendValue appends one value. Supported: nil, string, bool, int, int64,
// float64 (NaN/Inf → null), BigInt, []Field (object), []string, []any,
// *string (nil → null).
func appendValue(b []byte, v any, level int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return pyfmt.AppendJSONString(b, x), nil
	case float64:
		return pyfmt.AppendJSONFloat(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case BigInt:
		return append(b, x...), nil
	case *string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return pyfmt.AppendJSONString(b, *x), nil
	case float32:
		return pyfmt.AppendJSONFloat(b, float64(x)), nil
	case []Field:
		return appendObject(b, x, level)
	case []string:
		if len(x) == 0 {
			return append(b, "[]"...), nil
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = pyfmt.AppendIndent(b, level+1)
			b = pyfmt.AppendJSONString(b, s)
		}
		b = pyfmt.AppendIndent(b, level)
		return append(b, ']'), nil
	case []any:
		if len(x) == 0 {
			return append(b, "[]"...), nil
		}
		b = append(b, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = pyfmt.AppendIndent(b, level+1)
			if b, err = appendValue(b, e, level+1); err != nil {
				return b, err
			}
		}
		b = pyfmt.AppendIndent(b, level)
		return append(b, ']'), nil
	}
	if f, ok := v.(interface{ Float64() float64 }); ok {
		return pyfmt.AppendJSONFloat(b, f.Float64()), nil
	}
	return b, fmt.Errorf("%w %T", errBadValue, v)
}

// AppendJSON appends v (any value DocWriter accepts in Field.Value) as
// indented Python-style JSON at indentation level; useful for
// processing_info and other small documents.
func AppendJSON(b []byte, v any, level int) ([]byte, error) {
	return appendValue(b, v, level)
}

// appendTime appends t, converted to UTC, as a JSON string holding
// Python's naive datetime.isoformat() ("2025-01-02T03:04:05" with
// ".ffffff" only when the microseconds are not zero), which is what
// pydantic writes for the naive UTC datetimes of the Python model.
func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = pyfmt.AppendISONaive(dst, t.UTC())
	return append(dst, '"')
}

// cutRune returns the longest prefix of s of at most n bytes (n >= 4) that
// does not end inside a UTF-8 sequence.
func cutRune(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for k := 0; k < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); k++ {
		i--
	}
	if i == 0 {
		i = n
	}
	return s[:i]
}
