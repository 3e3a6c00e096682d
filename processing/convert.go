package processing

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Options configures Convert. The zero value converts with detection,
// the default sample id and the current time.
type Options struct {
	// Name is the original file name: it drives detection and the default
	// sample id, and appears in processing_info.original_filename.
	Name string
	// Size is the size in bytes of the input as stored (compressed size
	// for gzip). 0 means unknown: it is then measured while reading (the
	// rest of the input is drained at the end) for statistics and progress.
	Size int64
	// SampleID is metadata.sample_id; "" means the Python default
	// "sample_<ProjectID>_<stem of Name>".
	SampleID string
	// ProjectID is used for the default sample id.
	ProjectID int64
	// Organism and ReferenceGenome go to metadata ("" = null) and, as in
	// the Python fallback document, to custom_fields of a not-converted
	// document.
	Organism        string
	ReferenceGenome string
	// OmicsType forces the omics type instead of detecting it.
	OmicsType OmicsType
	// Format forces the source format instead of detecting it (what the
	// Python /converters/convert/to-unified endpoint does).
	Format string
	// Progress, if set, is called with the input bytes consumed so far and
	// the total (Size, or -1 if unknown), at most every 256 KiB and once at
	// the end.
	Progress func(done, total int64)
	// Now returns the timestamps for created_at/updated_at (default
	// time.Now; they are written in UTC without zone, like Python utcnow).
	Now func() time.Time
	// TempDir is where the record spool file goes ("" = os.TempDir()).
	TempDir string
	// SpoolMemory: see DocOptions.
	SpoolMemory int
	// WriteFallback makes Convert write the Python "raw data structure"
	// document to w when the file is not converted. By default nothing is
	// written in that case (the task stores no processed file, spec §7.4).
	WriteFallback bool
	// Stream lets converters that know their headers and custom_fields
	// before the first record (the expression-matrix converters) write
	// the document straight to w instead of spooling the records first:
	// less disk I/O, but w then holds a partial document when the file
	// turns out to be malformed later (Result.Converted false, BytesOut > 0).
	Stream bool
}

// Result describes a conversion.
type Result struct {
	OmicsType OmicsType
	Format    string
	SampleID  string
	// Records is the number of records written.
	Records int
	// Converted is processing_info.converted.
	Converted bool
	// Reason is set when no converter handles the detected type/format
	// ("Unsupported format for conversion").
	Reason string
	// Err is the conversion error (a *ParseError for malformed input) when
	// the file could not be converted; processing_info.error is its text.
	Err error
	// Summary is what the converter reported.
	Summary Summary
	// ProcessingInfo is the ordered processing_info object (spec §3.2):
	// omics_type, source_format, sample_id, original_filename, converted,
	// then record_count + statistics, or reason, or error.
	ProcessingInfo []Field
	// BytesIn is the number of input bytes read (as stored, compressed
	// for gzip); BytesOut the number of bytes written to w.
	BytesIn, BytesOut int64
	// Gzip reports whether the input was gzip-compressed.
	Gzip bool
}

// ReasonUnsupported is processing_info.reason for an unsupported format.
const ReasonUnsupported = "Unsupported format for conversion"

// Convert detects the type of the input read from r, converts it with the
// registered converter and writes the UnifiedData JSON document to w.
//
// A file that cannot be converted (no converter, malformed content) is not
// an error of Convert: it returns a Result with Converted=false and Reason
// or Err set, like the Python process_file. The returned error is for
// failures outside the file's content: ctx cancellation, a read error of r,
// or a write error of w or of the record spool (matching ErrOutput, see
// OutputError): a full disk is never reported as a malformed file.
func Convert(ctx context.Context, r io.Reader, w io.Writer, opts Options) (*Result, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	created := now()
	total := opts.Size
	if total <= 0 {
		total = -1
	}
	cr := &countingReader{r: r, ctx: ctx, progress: opts.Progress, total: total}
	raw := bufio.NewReaderSize(cr, 64<<10)

	res := &Result{}
	var in io.Reader = raw
	name := opts.Name
	magic, _ := raw.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		res.Gzip = true
		zr, err := gzip.NewReader(raw)
		if err != nil {
			if rerr := cr.readErr(); rerr != nil {
				return res, rerr
			}
			// Invalid header: let the content be handled as binary below.
			in = bytes.NewReader(nil)
			res.Err = &ParseError{Msg: "the file starts like gzip but its gzip header is invalid: " + err.Error(), Err: ErrTruncated}
		} else {
			defer zr.Close()
			zr.Multistream(false)
			in = &gzipErrReader{r: &gzipMembers{zr: zr, src: raw}}
		}
		if l := pyLower(name); strings.HasSuffix(l, ".gz") && !strings.HasSuffix(l, ".vcf.gz") {
			name = name[:len(name)-3]
		}
	}
	br := bufio.NewReaderSize(in, 64<<10)
	sample, _ := br.Peek(SampleSize)
	if err := cr.readErr(); err != nil {
		return res, err
	}

	omics := opts.OmicsType
	if omics == "" {
		omics = DetectOmicsType(name, sample)
	}
	format := opts.Format
	if format == "" {
		format = DetectFormat(name, sample)
	}
	sampleID := opts.SampleID
	if sampleID == "" {
		sampleID = "sample_" + strconv.FormatInt(opts.ProjectID, 10) + "_" + PyStem(opts.Name)
	}
	res.OmicsType, res.Format, res.SampleID = omics, format, sampleID

	meta := &Metadata{
		OmicsType: omics, SourceFormat: format, SampleID: sampleID,
		Organism: opts.Organism, ReferenceGenome: opts.ReferenceGenome,
		CreatedAt: created,
	}

	conv, err := chooseConverter(omics, format)
	switch {
	case res.Err != nil:
	case err != nil:
		res.Err = err
	case conv == nil:
		res.Reason = ReasonUnsupported
	case len(sample) == 0:
		if gz, ok := in.(*gzipErrReader); ok && gz.err != nil {
			res.Err = gz.err
		} else {
			res.Err = &ParseError{Msg: "the file is empty", Err: ErrEmptyFile}
		}
	default:
		if enc := utf16Encoding(sample); enc != "" && !xmlFormat(format) {
			res.Err = &ParseError{Msg: fmt.Sprintf("the file is %s text, not UTF-8; save it as UTF-8 (in a spreadsheet: \"CSV UTF-8\", not \"Unicode text\") and upload it again", enc), Err: ErrUTF16}
		} else if off, bad := binaryOffset(sample); bad && enc == "" && !xmlUTF16(format, sample) {
			res.Err = &ParseError{Msg: fmt.Sprintf("the file looks binary, not %s text (byte 0x%02x at offset %d)", format, sample[off], off), Err: ErrBinary}
		}
	}

	var dw *DocWriter
	cw := &countingWriter{w: w}
	if res.Err == nil && res.Reason == "" {
		dw = NewDocWriter(DocOptions{TempDir: opts.TempDir, SpoolMemory: opts.SpoolMemory})
		defer dw.Close()
		if opts.Stream {
			meta.UpdatedAt = now()
			dw.Stream(cw, meta)
		}
		size := opts.Size
		sum, cerr := conv.Convert(ctx, Input{R: br, Name: opts.Name, Size: size, Format: format}, dw)
		if cerr != nil {
			if rerr := cr.readErr(); rerr != nil {
				return res, rerr
			}
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if errors.Is(cerr, ErrOutput) {
				// The spool or w failed: the machine's fault, not the
				// file's (disk full...). Never a Result.Err.
				return res, cerr
			}
			var pe *ParseError
			if gz, ok := in.(*gzipErrReader); ok && gz.err != nil && !errors.As(cerr, &pe) {
				cerr = gz.err
			}
			res.Err = cerr
		} else {
			res.Summary = sum
			if gz, ok := in.(*gzipErrReader); ok {
				// Read to the end so that a truncated or corrupt gzip
				// stream is reported even if the converter stopped early.
				if _, err := io.Copy(io.Discard, br); err != nil && gz.err == nil {
					gz.err = err
				}
				if gz.err != nil {
					res.Err = gz.err
				}
			}
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if opts.Size <= 0 {
		// Measure the size: drain what the converter did not read.
		if _, err := io.Copy(io.Discard, raw); err != nil {
			return res, err
		}
		if err := cr.readErr(); err != nil {
			return res, err
		}
	}
	res.BytesIn = cr.n
	cr.report(true)

	info := []Field{
		{"omics_type", string(omics)},
		{"source_format", format},
		{"sample_id", sampleID},
		{"original_filename", opts.Name},
	}
	switch {
	case res.Err == nil && res.Reason == "":
		res.Converted = true
		res.Records = dw.Records()
		stats := res.Summary.Statistics
		if opts.Size <= 0 {
			stats = patchSize(stats, res.BytesIn)
		}
		res.Summary.Statistics = stats
		info = append(info, Field{"converted", true}, Field{"record_count", int64(res.Records)}, Field{"statistics", stats})
		res.ProcessingInfo = info
		meta.CustomFields = res.Summary.CustomFields
		if !opts.Stream {
			meta.UpdatedAt = now()
		}
		if err := dw.Finish(cw, meta, res.Summary.Headers, stats); err != nil {
			res.BytesOut = cw.n
			return res, err
		}
	default:
		info = append(info, Field{"converted", false})
		if res.Reason != "" {
			info = append(info, Field{"reason", res.Reason})
		} else {
			info = append(info, Field{"error", res.Err.Error()})
		}
		res.ProcessingInfo = info
		if opts.WriteFallback {
			meta.UpdatedAt = now()
			if err := WriteFallback(cw, meta, opts.Name); err != nil {
				res.BytesOut = cw.n
				return res, err
			}
		}
	}
	res.BytesOut = cw.n
	return res, nil
}

// chooseConverter returns the converter for (omics, format), nil when the
// Python code would give the "unsupported" fallback, or an error when it
// would give the error fallback.
func chooseConverter(omics OmicsType, format string) (Converter, error) {
	if !ValidOmicsType(omics) {
		return nil, fmt.Errorf("%q is not a valid omics type", string(omics))
	}
	if c, ok := Lookup(omics, format); ok {
		return c, nil
	}
	if !pyHasConverter(omics) {
		return nil, fmt.Errorf("No converter registered for %s", pyEnumName(omics))
	}
	if pyListed(omics, format) {
		return nil, fmt.Errorf("Unsupported source format: %s: %w", format, ErrUnsupportedFormat)
	}
	return nil, nil
}

// WriteFallback writes the Python "raw data structure" document used for
// files that were not converted (spec §3.3).
func WriteFallback(w io.Writer, meta *Metadata, filename string) error {
	m := *meta
	m.CustomFields = []Field{{"original_filename", filename}, {"processing_status", "raw"}}
	if meta.Organism != "" {
		m.CustomFields = append(m.CustomFields, Field{"organism", meta.Organism})
	}
	if meta.ReferenceGenome != "" {
		m.CustomFields = append(m.CustomFields, Field{"reference_genome", meta.ReferenceGenome})
	}
	dw := NewDocWriter(DocOptions{})
	defer dw.Close()
	return dw.Finish(w, &m, nil, []Field{{"processing_status", "raw"}, {"original_filename", filename}})
}

func patchSize(stats []Field, n int64) []Field {
	out := make([]Field, len(stats))
	copy(out, stats)
	for i := range out {
		if out[i].Key == "file_size_bytes" {
			out[i].Value = n
		}
	}
	return out
}

// utf16Encoding names the encoding of a sample that is UTF-16 or UTF-32
// text: by its byte order mark, or, without one, when its first 64 code
// units are all ASCII text characters (tab, line breaks, printable)
// encoded on two bytes. It returns "" for anything else. Python reads text
// files as strict UTF-8 and refuses these files; they are refused here too,
// with a message that says what to do instead of "looks binary".
func utf16Encoding(sample []byte) string {
	switch {
	case bytes.HasPrefix(sample, []byte{0xff, 0xfe, 0, 0}):
		return "UTF-32 (little-endian)"
	case bytes.HasPrefix(sample, []byte{0, 0, 0xfe, 0xff}):
		return "UTF-32 (big-endian)"
	case bytes.HasPrefix(sample, []byte{0xff, 0xfe}):
		return "UTF-16 (little-endian)"
	case bytes.HasPrefix(sample, []byte{0xfe, 0xff}):
		return "UTF-16 (big-endian)"
	}
	units := min(len(sample)/2, 64)
	if units < 4 {
		return ""
	}
	return utf16ASCII(sample[:2*units])
}

// utf16ASCII reports the byte order in which every 2-byte unit of b is an
// ASCII text character.
func utf16ASCII(b []byte) string {
	text := func(c byte) bool { return c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7f) }
	le, be := true, true
	for i := 0; i+1 < len(b); i += 2 {
		le = le && b[i+1] == 0 && text(b[i])
		be = be && b[i] == 0 && text(b[i+1])
	}
	switch {
	case le:
		return "UTF-16 (little-endian, without byte order mark)"
	case be:
		return "UTF-16 (big-endian, without byte order mark)"
	}
	return ""
}

// xmlFormat reports the formats whose converter is an XML parser: the XML
// declaration and byte order mark decide their encoding there.
func xmlFormat(format string) bool { return format == "mzml" || format == "mzxml" }

// binaryOffset reports the offset of a NUL byte in the sample: text
// formats never contain one, binary data (including other compression
// formats) almost always does within 10 000 bytes. Other invalid UTF-8 is
// left to the converter, which reports it with its line number.
func binaryOffset(sample []byte) (int, bool) {
	if i := bytes.IndexByte(sample, 0); i >= 0 {
		return i, true
	}
	return 0, false
}

// xmlUTF16 reports an mzML/mzXML sample that starts as UTF-16 text (a
// byte order mark, or "<" as a UTF-16 unit): its NULs are not binary, and
// the XML converters decode it.
func xmlUTF16(format string, sample []byte) bool {
	if !xmlFormat(format) || len(sample) < 2 {
		return false
	}
	switch string(sample[:2]) {
	case "\xfe\xff", "\xff\xfe", "\x00<", "<\x00":
		return true
	}
	return false
}

// PyStem is Python PurePath(name).stem: the last path component without
// its last suffix, where a suffix starts at the last dot that is neither
// the first nor the last character ("a.tar.gz" → "a.tar", ".bashrc" →
// ".bashrc", "x." → "x.").
func PyStem(name string) string {
	base := pyName(name)
	i := strings.LastIndexByte(base, '.')
	if i > 0 && i < len(base)-1 {
		return base[:i]
	}
	return base
}

// PySuffix is Python PurePath(name).suffix.
func PySuffix(name string) string {
	base := pyName(name)
	i := strings.LastIndexByte(base, '.')
	if i > 0 && i < len(base)-1 {
		return base[i:]
	}
	return ""
}

// pyName is PurePosixPath(name).name: the last non-empty component that is
// not ".".
func pyName(name string) string {
	parts := strings.Split(name, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i] != "" && parts[i] != "." {
			return parts[i]
		}
	}
	return ""
}

// countingReader counts bytes, reports progress, remembers the first read
// error of the underlying reader (an infrastructure error, not a content
// error) and stops when ctx is done.
type countingReader struct {
	r        io.Reader
	ctx      context.Context
	n        int64
	last     int64
	total    int64
	progress func(done, total int64)
	err      error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	c.report(false)
	return n, err
}

func (c *countingReader) readErr() error {
	if c.err != nil {
		return fmt.Errorf("reading input: %w", c.err)
	}
	return nil
}

func (c *countingReader) report(final bool) {
	if c.progress == nil {
		return
	}
	if final || c.n-c.last >= 256<<10 {
		c.last = c.n
		c.progress(c.n, c.total)
	}
}

// gzipErrReader turns gzip stream errors into content errors with a clear
// message and remembers the first one.
type gzipErrReader struct {
	r   io.Reader
	err error
}

func (g *gzipErrReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			err = &ParseError{Msg: "the gzip stream is truncated (the file ends before the compressed data does)", Err: ErrTruncated}
		case errors.Is(err, gzip.ErrChecksum):
			err = &ParseError{Msg: "the gzip stream is corrupt (checksum mismatch)", Err: ErrTruncated}
		case errors.Is(err, gzip.ErrHeader):
			err = &ParseError{Msg: "the gzip stream is corrupt (invalid header of a following member)", Err: ErrTruncated}
		default:
			var ce interface{ Error() string }
			if errors.As(err, &ce) && strings.Contains(err.Error(), "flate") {
				err = &ParseError{Msg: "the gzip stream is corrupt: " + err.Error(), Err: ErrTruncated}
			}
		}
		g.err = err
	}
	return n, err
}

// gzipMembers reads the members of a gzip stream one after the other, and
// skips NUL bytes before a member and at the end, as Python's gzip module
// does (and gzip -t accepts): tape and block devices pad files with zeros.
// Any other byte after a member must start a valid member.
type gzipMembers struct {
	zr  *gzip.Reader
	src *bufio.Reader
	eof bool
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		if g.eof {
			return 0, io.EOF
		}
		n, err := g.zr.Read(p)
		if !errors.Is(err, io.EOF) {
			return n, err
		}
		// End of a member: skip padding, then the next member or the end.
		more, perr := g.skipZeros()
		if perr != nil {
			return n, perr
		}
		if !more {
			g.eof = true
		} else if m, _ := g.src.Peek(2); len(m) < 2 || m[0] != 0x1f || m[1] != 0x8b {
			// Not the start of a member (Python: "Not a gzipped file").
			return n, gzip.ErrHeader
		} else if err := g.zr.Reset(g.src); err != nil {
			return n, err
		} else {
			g.zr.Multistream(false)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// skipZeros discards NUL bytes and reports whether more input follows.
func (g *gzipMembers) skipZeros() (bool, error) {
	for {
		b, err := g.src.Peek(1)
		if len(b) == 0 {
			if err == io.EOF {
				return false, nil
			}
			return false, err
		}
		if b[0] != 0 {
			return true, nil
		}
		buf, _ := g.src.Peek(g.src.Buffered())
		i := 0
		for i < len(buf) && buf[i] == 0 {
			i++
		}
		_, _ = g.src.Discard(i) // i bytes are buffered: Discard cannot fail
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, outputErr(opWriteDoc, err)
}
