package fastx

import (
	"context"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// FASTA converts FASTA (nucleotide) files. The zero value is ready to use.
//
// Record: id = the first word of the header (or "sequence_<i>", i the
// 0-based sequence index, when the header is empty); values id,
// description, length (residues, int), gc_fraction (float or null).
// Statistics: total_sequences, total_bases, n50, file_size_bytes.
type FASTA struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

// Convert implements processing.Converter.
func (c FASTA) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	lr := textio.NewLineReaderContext(ctx, in.R, textio.LineOptions{MaxLineBytes: c.MaxLineBytes})
	var (
		hist   lengthHist
		cur    seqCounts
		open   bool
		n      int
		id     string
		desc   string
		vals   = make([]processing.Field, len(FASTAHeaders))
		rec    = processing.Record{Values: vals}
		gcAll  seqCounts
		sawAny bool
	)
	for i, h := range FASTAHeaders {
		vals[i].Key = h
	}
	flush := func() error {
		if !open {
			return nil
		}
		rec.ID = id
		vals[0].Value = id
		vals[1].Value = desc
		vals[2].Value = cur.length
		vals[3].Value = cur.gcFraction()
		hist.add(cur.length)
		gcAll.gc += cur.gc
		gcAll.at += cur.at
		n++
		return out.WriteRecord(&rec)
	}
	for lr.Next() {
		b := lr.Line()
		if len(b) == 0 {
			continue
		}
		sawAny = true
		switch b[0] {
		case '>':
			if err := flush(); err != nil {
				return processing.Summary{}, err
			}
			id, desc = splitHeader(string(b[1:]))
			if id == "" {
				id = "sequence_" + itoa(n)
			}
			cur = seqCounts{}
			open = true
		case ';':
			// Old-style comment line.
		default:
			if !open {
				if isBlank(b) {
					continue
				}
				return processing.Summary{}, &processing.ParseError{Line: lr.LineNumber(), Column: 1,
					Msg: "sequence data before the first '>' header line; is this a FASTA file?"}
			}
			if i := cur.add(b); i >= 0 {
				return processing.Summary{}, badChar(lr.LineNumber(), i+1, b[i], "sequence")
			}
		}
	}
	if err := lr.Err(); err != nil {
		return processing.Summary{}, err
	}
	if err := flush(); err != nil {
		return processing.Summary{}, err
	}
	if !sawAny {
		return processing.Summary{}, &processing.ParseError{Line: 0, Msg: "the file is empty: no FASTA records", Err: processing.ErrEmptyFile}
	}
	return processing.Summary{
		Headers:      FASTAHeaders,
		CustomFields: []processing.Field{},
		Statistics: []processing.Field{
			{Key: "total_sequences", Value: int64(n)},
			{Key: "total_bases", Value: hist.total},
			{Key: "n50", Value: hist.n50()},
			{Key: "gc_fraction", Value: gcAll.gcFraction()},
			{Key: "file_size_bytes", Value: in.Size},
		},
		Records: n,
	}, nil
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if residue[c] != resSpace {
			return false
		}
	}
	return true
}
