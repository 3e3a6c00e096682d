package fastx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// FASTA converts FASTA (nucleotide) files. The zero value is ready to use.
//
// Record: id = the first word of the header (or "sequence_<i>", i the
// 0-based sequence index, when the header is empty); values id,
// description, length (residues, int), gc_fraction (float or null).
// Statistics: total_sequences, total_bases, n50, gc_fraction,
// file_size_bytes.
//
// Sequence lines may be of any length (an unwrapped chromosome is one
// line): they are counted as they stream by, never buffered. Lines end at
// "\n", "\r\n" or a lone "\r".
type FASTA struct {
	// MaxLineBytes bounds the length of a header line; 0 means
	// textio.DefaultMaxLineBytes. Sequence lines are not limited.
	MaxLineBytes int
}

const fastaChunk = 64 << 10

type fastaMode int

const (
	fmLineStart fastaMode = iota // nothing of the current line seen yet
	fmHeader                     // in a '>' line
	fmComment                    // in a ';' line
	fmSeq                        // in a sequence line
)

// fastaState is the streaming parser.
type fastaState struct {
	out    processing.RecordWriter
	maxHdr int

	mode   fastaMode
	line   int  // 1-based current line
	col    int  // bytes of the current line already consumed
	cr     bool // the last chunk ended with '\r' (skip a following '\n')
	hdr    []byte
	open   bool // a record is open
	sawAny bool // any non-empty line
	cur    seqCounts
	id     string
	desc   string
	n      int
	hist   lengthHist
	gcAll  seqCounts
	vals   []processing.Field
	rec    processing.Record
}

// Convert implements processing.Converter.
func (c FASTA) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	max := c.MaxLineBytes
	if max <= 0 {
		max = textio.DefaultMaxLineBytes
	}
	s := &fastaState{out: out, maxHdr: max, line: 1, vals: make([]processing.Field, len(FASTAHeaders))}
	for i, h := range FASTAHeaders {
		s.vals[i].Key = h
	}
	s.rec.Values = s.vals
	buf := make([]byte, fastaChunk)
	src := textio.SkipBOM(in.R)
	for {
		if err := ctx.Err(); err != nil {
			return processing.Summary{}, err
		}
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if err := s.feed(buf[:nr]); err != nil {
				return processing.Summary{}, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return processing.Summary{}, rerr
		}
	}
	if err := s.endLine(); err != nil {
		return processing.Summary{}, err
	}
	if err := s.flush(); err != nil {
		return processing.Summary{}, err
	}
	if !s.sawAny {
		return processing.Summary{}, &processing.ParseError{Line: 0, Msg: "the file is empty: no FASTA records", Err: processing.ErrEmptyFile}
	}
	return processing.Summary{
		Headers:      FASTAHeaders,
		CustomFields: []processing.Field{},
		Statistics: []processing.Field{
			{Key: "total_sequences", Value: int64(s.n)},
			{Key: "total_bases", Value: s.hist.total},
			{Key: "n50", Value: s.hist.n50()},
			{Key: "gc_fraction", Value: s.gcAll.gcFraction()},
			{Key: "file_size_bytes", Value: in.Size},
		},
		Records: s.n,
	}, nil
}

// feed processes one chunk of input.
func (s *fastaState) feed(data []byte) error {
	for len(data) > 0 {
		if s.cr {
			s.cr = false
			if data[0] == '\n' {
				data = data[1:]
				continue
			}
		}
		e := indexEOL(data)
		seg := data
		if e >= 0 {
			seg = data[:e]
		}
		if err := s.segment(seg); err != nil {
			return err
		}
		if e < 0 {
			return nil
		}
		if err := s.endLine(); err != nil {
			return err
		}
		s.line++
		if data[e] == '\r' {
			if e+1 == len(data) {
				s.cr = true
			} else if data[e+1] == '\n' {
				e++
			}
		}
		data = data[e+1:]
	}
	return nil
}

// indexEOL returns the index of the first '\r' or '\n' in b, or -1.
func indexEOL(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	lim := b
	if i >= 0 {
		lim = b[:i]
	}
	if j := bytes.IndexByte(lim, '\r'); j >= 0 {
		return j
	}
	return i
}

// segment handles a piece of the current line (no line terminator inside).
func (s *fastaState) segment(seg []byte) error {
	if len(seg) == 0 {
		return nil
	}
	if s.mode == fmLineStart {
		s.sawAny = true
		switch seg[0] {
		case '>':
			if err := s.flush(); err != nil {
				return err
			}
			s.mode = fmHeader
			s.hdr = s.hdr[:0]
			seg = seg[1:]
			s.col++
		case ';':
			s.mode = fmComment
		default:
			s.mode = fmSeq
		}
	}
	switch s.mode {
	case fmHeader:
		if len(s.hdr)+len(seg) > s.maxHdr {
			return &processing.ParseError{Line: s.line, Field: "header",
				Msg: fmt.Sprintf("header line is longer than %d bytes", s.maxHdr), Err: processing.ErrLineTooLong}
		}
		s.hdr = textio.AppendCapped(s.hdr, seg, s.maxHdr)
	case fmSeq:
		if !s.open {
			if i := firstNonBlank(seg); i >= 0 {
				return &processing.ParseError{Line: s.line, Column: s.col + i + 1,
					Msg: "sequence data before the first '>' header line; is this a FASTA file?"}
			}
			break
		}
		if i := s.cur.add(seg); i >= 0 {
			return badChar(s.line, s.col+i+1, seg[i], "sequence")
		}
	}
	s.col += len(seg)
	return nil
}

// endLine finishes the current line.
func (s *fastaState) endLine() error {
	if s.mode == fmHeader {
		if !utf8.Valid(s.hdr) {
			i := invalidAt(s.hdr)
			return &processing.ParseError{Line: s.line, Column: i + 2, Field: "header",
				Msg: fmt.Sprintf("invalid UTF-8 byte 0x%02x in the header; the file must be UTF-8 text", s.hdr[i]), Err: processing.ErrInvalidUTF8}
		}
		s.id, s.desc = splitHeader(string(s.hdr))
		if s.id == "" {
			s.id = "sequence_" + itoa(s.n)
		}
		s.cur = seqCounts{}
		s.open = true
	}
	s.mode = fmLineStart
	s.col = 0
	return nil
}

// flush emits the open record.
func (s *fastaState) flush() error {
	if !s.open {
		return nil
	}
	s.open = false
	s.rec.ID = s.id
	s.vals[0].Value = s.id
	s.vals[1].Value = s.desc
	s.vals[2].Value = s.cur.length
	s.vals[3].Value = s.cur.gcFraction()
	s.hist.add(s.cur.length)
	s.gcAll.gc += s.cur.gc
	s.gcAll.at += s.cur.at
	s.n++
	return s.out.WriteRecord(&s.rec)
}

func firstNonBlank(b []byte) int {
	for i, c := range b {
		if residue[c] != resSpace {
			return i
		}
	}
	return -1
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return 0
}
