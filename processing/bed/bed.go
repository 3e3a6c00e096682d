// Package bed converts BED interval files into UnifiedData genomics
// records, line by line, as the Omicsomics Python GenomicsConverter does
// (spec processing.md §4.2), except that a "." score means "no score"
// (null) instead of aborting the whole file.
package bed

import (
	"bytes"
	"context"
	"strconv"

	"github.com/omicsomics/omics-worker/processing/internal/linefields"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// Headers are the fixed UnifiedData headers of a BED document.
var Headers = []string{"CHROM", "START", "END", "NAME", "SCORE", "STRAND"}

// Converter converts BED. The zero value is ready to use.
type Converter struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

func init() {
	processing.Register(processing.Genomics, "bed", Converter{})
}

var (
	prefixComment = []byte("#")
	prefixTrack   = []byte("track")
	prefixBrowser = []byte("browser")
)

// Convert implements processing.Converter.
func (c Converter) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	lr := textio.NewLineReaderContext(ctx, in.R, textio.LineOptions{MaxLineBytes: c.MaxLineBytes})
	n := 0
	var fields []string
	rec := linefields.NewRecord(Headers)
	vals := rec.Values
	for lr.Next() {
		b := lr.Line()
		if bytes.HasPrefix(b, prefixComment) || bytes.HasPrefix(b, prefixTrack) || bytes.HasPrefix(b, prefixBrowser) {
			continue
		}
		fields = linefields.SplitTabs(linefields.StripLine(b), fields[:0])
		if len(fields) < 3 {
			continue
		}
		line := lr.LineNumber()
		start, err := linefields.ParseInt(line, "START", fields[1])
		if err != nil {
			return processing.Summary{}, err
		}
		end, err := linefields.ParseInt(line, "END", fields[2])
		if err != nil {
			return processing.Summary{}, err
		}
		rec.ID = fields[0] + ":" + fields[1] + "-" + fields[2]
		vals[0].Value = fields[0]
		vals[1].Value = start
		vals[2].Value = end
		if len(fields) > 3 {
			vals[3].Value = fields[3]
		} else {
			// Python: f"region_{idx}" with idx the 0-based physical line.
			vals[3].Value = "region_" + strconv.Itoa(line-1)
		}
		vals[4].Value = nil
		if len(fields) > 4 {
			if vals[4].Value, err = linefields.ParseOptFloat(line, "SCORE", fields[4]); err != nil {
				return processing.Summary{}, err
			}
		}
		vals[5].Value = nil
		if len(fields) > 5 {
			vals[5].Value = fields[5]
		}
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
			{Key: "total_regions", Value: int64(n)},
			{Key: "file_size_bytes", Value: in.Size},
		},
		Records: n,
	}, nil
}
