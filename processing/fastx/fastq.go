package fastx

import (
	"context"
	"fmt"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// FASTQ converts FASTQ files (Sanger / Illumina 1.8+ Phred+33 qualities).
// The zero value is ready to use. Multi-line sequences and qualities are
// accepted (the quality is read until it is as long as the sequence).
//
// Record: id = the first word of the header (or "read_<i>" when empty);
// values id, description, length (int), mean_quality (float or null for
// an empty read), gc_fraction (float or null).
// Statistics: total_reads, total_bases, mean_quality (over all bases),
// gc_fraction, file_size_bytes. custom_fields: quality_encoding.
type FASTQ struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

type fqState int

const (
	fqHeader fqState = iota
	fqSeq
	fqQual
)

// Convert implements processing.Converter.
func (c FASTQ) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	lr := textio.NewLineReaderContext(ctx, textio.SkipBOM(in.R), textio.LineOptions{MaxLineBytes: c.MaxLineBytes})
	var (
		state     fqState
		cur       seqCounts
		qlen      int64
		qsum      int64
		n         int
		totalQ    int64
		totalB    int64
		gcAll     seqCounts
		id, desc  string
		headerAt  int
		vals      = make([]processing.Field, len(FASTQHeaders))
		rec       = processing.Record{Values: vals}
		sawHeader bool
	)
	for i, h := range FASTQHeaders {
		vals[i].Key = h
	}
	emit := func() error {
		rec.ID = id
		vals[0].Value = id
		vals[1].Value = desc
		vals[2].Value = cur.length
		if cur.length > 0 {
			vals[3].Value = float64(qsum) / float64(cur.length)
		} else {
			vals[3].Value = nil
		}
		vals[4].Value = cur.gcFraction()
		totalQ += qsum
		totalB += cur.length
		gcAll.gc += cur.gc
		gcAll.at += cur.at
		n++
		return out.WriteRecord(&rec)
	}
	for lr.Next() {
		b := lr.Line()
		line := lr.LineNumber()
		switch state {
		case fqHeader:
			if len(b) == 0 || isBlank(b) {
				continue
			}
			if b[0] != '@' {
				return processing.Summary{}, &processing.ParseError{Line: line, Column: 1, Field: "header",
					Msg: fmt.Sprintf("a FASTQ record must start with '@', found %s; is this a FASTQ file?", shownByte(b[0]))}
			}
			sawHeader = true
			id, desc = splitHeader(string(b[1:]))
			if id == "" {
				id = "read_" + itoa(n)
			}
			headerAt = line
			cur = seqCounts{}
			qlen, qsum = 0, 0
			state = fqSeq
		case fqSeq:
			if len(b) > 0 && b[0] == '+' {
				state = fqQual
				continue
			}
			if i := cur.add(b); i >= 0 {
				return processing.Summary{}, badChar(line, i+1, b[i], "sequence")
			}
		case fqQual:
			var sum int64
			lo, hi := byte('~'), byte('!')
			for _, ch := range b {
				sum += int64(ch)
				lo = min(lo, ch)
				hi = max(hi, ch)
			}
			if lo < '!' || hi > '~' {
				for i, ch := range b {
					if ch < '!' || ch > '~' {
						return processing.Summary{}, badChar(line, i+1, ch, "quality")
					}
				}
			}
			qsum += sum - int64(len(b))*'!'
			qlen += int64(len(b))
			if qlen > cur.length {
				return processing.Summary{}, &processing.ParseError{Line: line, Field: "quality",
					Msg: fmt.Sprintf("quality string is longer (%d) than the sequence (%d) of the read starting at line %d", qlen, cur.length, headerAt)}
			}
			if qlen == cur.length {
				if err := emit(); err != nil {
					return processing.Summary{}, err
				}
				state = fqHeader
			}
		}
	}
	if err := lr.Err(); err != nil {
		return processing.Summary{}, err
	}
	switch {
	case state == fqQual && cur.length == 0 && qlen == 0:
		// Empty read whose empty quality line is the (missing) last line.
		if err := emit(); err != nil {
			return processing.Summary{}, err
		}
	case state != fqHeader:
		return processing.Summary{}, &processing.ParseError{Line: lr.LineNumber(),
			Msg: fmt.Sprintf("the file ends inside the read that starts at line %d (truncated file?)", headerAt), Err: processing.ErrTruncated}
	case !sawHeader:
		return processing.Summary{}, &processing.ParseError{Line: 0, Msg: "the file is empty: no FASTQ records", Err: processing.ErrEmptyFile}
	}
	var meanQ any
	if totalB > 0 {
		meanQ = float64(totalQ) / float64(totalB)
	}
	return processing.Summary{
		Headers:      FASTQHeaders,
		CustomFields: []processing.Field{{Key: "quality_encoding", Value: "phred+33"}},
		Statistics: []processing.Field{
			{Key: "total_reads", Value: int64(n)},
			{Key: "total_bases", Value: totalB},
			{Key: "mean_quality", Value: meanQ},
			{Key: "gc_fraction", Value: gcAll.gcFraction()},
			{Key: "file_size_bytes", Value: in.Size},
		},
		Records: n,
	}, nil
}

func shownByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("'%c'", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
