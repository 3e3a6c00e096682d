// Package gff converts GTF, GFF and GFF3 feature files into UnifiedData
// genomics records, line by line, as the Omicsomics Python
// GenomicsConverter does (spec processing.md §4.3). Attributes are kept as
// the raw ninth column.
package gff

import (
	"context"
	"strconv"

	"github.com/omicsomics/omics-worker/processing/internal/linefields"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// Headers are the fixed UnifiedData headers of a GTF/GFF document.
var Headers = []string{"SEQNAME", "SOURCE", "FEATURE", "START", "END", "SCORE", "STRAND", "FRAME", "ATTRIBUTES"}

// Converter converts GTF/GFF/GFF3. The zero value is ready to use.
type Converter struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

func init() {
	processing.Register(processing.Genomics, "gtf", Converter{})
	processing.Register(processing.Genomics, "gff", Converter{})
	processing.Register(processing.Genomics, "gff3", Converter{})
}

// Convert implements processing.Converter.
func (c Converter) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	lr := textio.NewLineReaderContext(ctx, in.R, textio.LineOptions{MaxLineBytes: c.MaxLineBytes})
	n := 0
	var fields []string
	rec := linefields.NewRecord(Headers)
	vals := rec.Values
	for lr.Next() {
		b := lr.Line()
		if len(b) > 0 && b[0] == '#' {
			continue
		}
		fields = linefields.SplitTabs(linefields.StripLine(b), fields[:0])
		if len(fields) < 9 {
			continue
		}
		line := lr.LineNumber()
		start, err := linefields.ParseInt(line, "START", fields[3])
		if err != nil {
			return processing.Summary{}, err
		}
		end, err := linefields.ParseInt(line, "END", fields[4])
		if err != nil {
			return processing.Summary{}, err
		}
		score, err := linefields.ParseOptFloat(line, "SCORE", fields[5])
		if err != nil {
			return processing.Summary{}, err
		}
		// Python: f"feature_{idx}" with idx the 0-based physical line.
		rec.ID = "feature_" + strconv.Itoa(line-1)
		vals[0].Value = fields[0]
		vals[1].Value = fields[1]
		vals[2].Value = fields[2]
		vals[3].Value = start
		vals[4].Value = end
		vals[5].Value = score
		vals[6].Value = fields[6]
		vals[7].Value = fields[7]
		vals[8].Value = fields[8]
		if err := out.WriteRecord(&rec); err != nil {
			return processing.Summary{}, err
		}
		n++
	}
	if err := lr.Err(); err != nil {
		return processing.Summary{}, err
	}
	return processing.Summary{
		Headers:      Headers,
		CustomFields: []processing.Field{},
		Statistics: []processing.Field{
			{Key: "total_features", Value: int64(n)},
			{Key: "file_size_bytes", Value: in.Size},
		},
		Records: n,
	}, nil
}
