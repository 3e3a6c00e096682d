package tabular

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

func init() {
	for _, f := range []string{"csv", "tsv", "txt"} {
		processing.Register(processing.Transcriptomics, f, Matrix{})
		processing.Register(processing.Proteomics, f, Proteomics)
		processing.Register(processing.Metabolomics, f, Metabolomics)
	}
}

// Delimiter returns the delimiter the Python converters use for a format:
// ',' for "csv", TAB for anything else.
func Delimiter(format string) byte {
	if strings.EqualFold(format, "csv") {
		return ','
	}
	return '\t'
}

// table reads a header row and data rows with csv.DictReader semantics.
type table struct {
	rd      *Reader
	headers []string // header row as read (duplicates kept)
	keys    []string // unique header names, first-occurrence order
	slot    []int    // header index -> index in keys (nil: identity)
	vals    []processing.Field
	idx     int // 0-based data row index (enumerate(reader))
}

func newTable(ctx context.Context, in processing.Input) (*table, error) {
	lr := textio.NewLineReaderContext(ctx, in.R, textio.LineOptions{})
	t := &table{rd: NewReader(lr, Delimiter(in.Format))}
	row, ok := t.rd.Read()
	if !ok {
		if err := t.rd.Err(); err != nil {
			return nil, err
		}
		return t, nil
	}
	t.headers = append([]string(nil), row...)
	t.keys, t.slot = uniqueKeys(t.headers)
	t.vals = make([]processing.Field, len(t.keys))
	return t, nil
}

// uniqueKeys returns the distinct names of headers in first-occurrence
// order and, when there are duplicates, the index in keys of each header
// (slot is nil and keys is headers itself when all names differ, the usual
// case, so that a header row of a million names is not copied again).
// Duplicates are found by sorting indices: 4 bytes per column instead of a
// map entry.
func uniqueKeys(headers []string) (keys []string, slot []int) {
	idx := make([]int32, len(headers))
	for i := range idx {
		idx[i] = int32(i)
	}
	sort.SliceStable(idx, func(a, b int) bool { return headers[idx[a]] < headers[idx[b]] })
	dup := false
	for i := 1; i < len(idx); i++ {
		if headers[idx[i]] == headers[idx[i-1]] {
			dup = true
			break
		}
	}
	if !dup {
		return headers, nil
	}
	// first[i] = index of the first header with the name of header i.
	first := make([]int, len(headers))
	for i := 0; i < len(idx); i++ {
		j := int(idx[i])
		if i > 0 && headers[j] == headers[idx[i-1]] {
			first[j] = first[idx[i-1]]
		} else {
			first[j] = j
		}
	}
	slot = make([]int, len(headers))
	for i, h := range headers {
		if first[i] == i {
			slot[i] = len(keys)
			keys = append(keys, h)
		} else {
			slot[i] = slot[first[i]]
		}
	}
	return keys, slot
}

// next fills t.vals for the next non-empty row (DictReader: missing cells
// are None, duplicate names keep the last cell at the first position).
func (t *table) next() (bool, error) {
	for {
		row, ok := t.rd.Read()
		if !ok {
			return false, t.rd.Err()
		}
		if len(row) == 0 {
			continue // DictReader skips empty rows
		}
		if len(row) > len(t.headers) {
			return false, &processing.ParseError{
				Line: t.rd.Line(), Column: len(t.headers) + 1,
				Msg: fmt.Sprintf("this row has %d fields but the header row has %d", len(row), len(t.headers)),
			}
		}
		for i, k := range t.keys {
			t.vals[i] = processing.Field{Key: k}
		}
		for i := range t.headers {
			var v any
			if i < len(row) {
				v = row[i]
			}
			k := i
			if t.slot != nil {
				k = t.slot[i]
			}
			t.vals[k].Value = v
		}
		return true, nil
	}
}

// Matrix is the transcriptomics converter (spec §4.4, §4.5): an expression
// matrix whose first column is the feature id. With format "csv" every
// value is a string; otherwise (tsv, txt) every cell that Python float()
// accepts becomes a number. The record id is the first column's raw text.
type Matrix struct{}

// Convert implements processing.Converter.
func (Matrix) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	var sum processing.Summary
	t, err := newTable(ctx, in)
	if err != nil {
		return sum, err
	}
	numeric := !strings.EqualFold(in.Format, "csv")
	if hw, ok := out.(processing.HeadWriter); ok {
		if err := hw.WriteHead(nonNil(t.headers), []processing.Field{}); err != nil {
			return sum, err
		}
	}
	var rec processing.Record
	n := 0
	for {
		ok, err := t.next()
		if err != nil {
			return sum, err
		}
		if !ok {
			break
		}
		id, isStr := t.vals[0].Value.(string)
		if !isStr {
			return sum, &processing.ParseError{Line: t.rd.Line(), Field: t.headers[0], Column: 1,
				Msg: fmt.Sprintf("the id column %s has no value in this row", pyfmt.ReprString(t.headers[0]))}
		}
		if numeric {
			for i := range t.vals {
				if s, ok := t.vals[i].Value.(string); ok {
					if f, ok := pyfmt.ParseFloat(s); ok {
						t.vals[i].Value = f
					}
				}
			}
		}
		rec.ID = id
		rec.Values = t.vals
		if err := out.WriteRecord(&rec); err != nil {
			return sum, err
		}
		n++
		t.idx++
	}
	samples := 0
	if len(t.headers) > 0 {
		samples = len(t.headers) - 1
	}
	sum.Headers = nonNil(t.headers)
	sum.Records = n
	sum.CustomFields = []processing.Field{}
	sum.Statistics = []processing.Field{
		{Key: "total_features", Value: int64(n)},
		{Key: "total_samples", Value: int64(samples)},
		{Key: "file_size_bytes", Value: in.Size},
	}
	return sum, nil
}

// IDTable is the proteomics / metabolomics tabular converter (spec §4.6,
// §4.7): all values are strings; the record id is the value of the first
// of IDKeys present in the header row, else "record_<row index>".
type IDTable struct {
	// IDKeys are the candidate id columns, in order of preference.
	IDKeys []string
	// CountField is the custom_fields key holding the record count.
	CountField string
}

// Proteomics is the proteomics tabular converter.
var Proteomics = IDTable{IDKeys: []string{"id", "protein_id", "peptide_id"}, CountField: "total_proteins"}

// Metabolomics is the metabolomics tabular converter.
var Metabolomics = IDTable{IDKeys: []string{"id", "metabolite_id", "compound_id"}, CountField: "total_metabolites"}

// Convert implements processing.Converter.
func (c IDTable) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	var sum processing.Summary
	t, err := newTable(ctx, in)
	if err != nil {
		return sum, err
	}
	idSlot := -1
	for _, k := range c.IDKeys {
		for i, h := range t.keys {
			if h == k {
				idSlot = i
				break
			}
		}
		if idSlot >= 0 {
			break
		}
	}
	var rec processing.Record
	n := 0
	var idBuf []byte
	for {
		ok, err := t.next()
		if err != nil {
			return sum, err
		}
		if !ok {
			break
		}
		if idSlot >= 0 {
			id, isStr := t.vals[idSlot].Value.(string)
			if !isStr {
				return sum, &processing.ParseError{Line: t.rd.Line(), Field: t.keys[idSlot],
					Msg: fmt.Sprintf("the id column %s has no value in this row", pyfmt.ReprString(t.keys[idSlot]))}
			}
			rec.ID = id
		} else {
			idBuf = strconv.AppendInt(append(idBuf[:0], "record_"...), int64(t.idx), 10)
			rec.ID = string(idBuf)
		}
		rec.Values = t.vals
		if err := out.WriteRecord(&rec); err != nil {
			return sum, err
		}
		n++
		t.idx++
	}
	sum.Headers = nonNil(t.headers)
	sum.Records = n
	sum.CustomFields = []processing.Field{{Key: c.CountField, Value: int64(n)}}
	sum.Statistics = []processing.Field{{Key: "total_records", Value: int64(n)}}
	return sum, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
