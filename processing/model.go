// Package processing converts omics files into the Omicsomics "UnifiedData"
// JSON document. It has no Celery and no network inside: detection, the
// UnifiedData model and its Python-compatible JSON writer, and one
// sub-package per format family, all streaming.
package processing

import (
	"context"
	"io"
)

// OmicsType is the UnifiedData metadata.omics_type enum.
type OmicsType string

// The omics types of the Python OmicsType enum.
const (
	Genomics        OmicsType = "genomics"
	Transcriptomics OmicsType = "transcriptomics"
	Proteomics      OmicsType = "proteomics"
	Metabolomics    OmicsType = "metabolomics"
	Epigenomics     OmicsType = "epigenomics"
	SingleCell      OmicsType = "single_cell"
	MultiOmics      OmicsType = "multi_omics"
)

// Field is one key/value pair of an ordered JSON object. Value is one of:
// nil, string, int64, float64 (NaN/Inf are written as null), bool, or []Field
// for a nested object.
type Field struct {
	Key   string
	Value any
}

// Record is one UnifiedData record: {"id": ..., "values": {...}} with the
// values in header order.
type Record struct {
	ID     string
	Values []Field
}

// RecordWriter receives records as a converter produces them. The record
// and its slices may be reused by the converter after WriteRecord returns.
type RecordWriter interface {
	WriteRecord(r *Record) error
}

// Summary is what a converter knows once the whole input was read: the
// parts of the document that are written around the records.
type Summary struct {
	Headers      []string
	CustomFields []Field
	Statistics   []Field
	Records      int
}

// Input is what a format converter reads. R is already decompressed.
type Input struct {
	R io.Reader
	// Name is the original file name (for messages and detection only).
	Name string
	// Size is the size in bytes of the file as uploaded (compressed size
	// for gzip input), used for statistics.file_size_bytes.
	Size int64
	// Format is the detected source format string ("vcf", "gff", ...).
	Format string
}

// Converter turns one source format into records.
type Converter interface {
	Convert(ctx context.Context, in Input, out RecordWriter) (Summary, error)
}
