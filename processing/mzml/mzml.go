// Package mzml converts mzML and mzXML mass-spectrometry files into
// UnifiedData proteomics records, one per spectrum (mzML) or scan (mzXML),
// reproducing the output of the Omicsomics Python ElementTree fallback
// parser (spec processing.md §4.8–4.9) while streaming the document with
// encoding/xml: memory does not grow with the number of spectra, and binary
// data arrays are never decoded.
package mzml

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/processing"
)

// PSINamespace is the mzML namespace assumed when the root element has none.
const PSINamespace = "http://psi.hupo.org/ms/mzml"

// MzMLHeaders and MzXMLHeaders are the fixed UnifiedData headers.
var (
	MzMLHeaders  = []string{"spectrum_id", "ms_level", "retention_time", "base_peak_mz", "base_peak_intensity", "total_ion_current"}
	MzXMLHeaders = []string{"scan_num", "ms_level", "retention_time", "base_peak_mz", "base_peak_intensity", "total_ion_current"}
)

func init() {
	processing.Register(processing.Proteomics, "mzml", MzML{})
	processing.Register(processing.Proteomics, "mzxml", MzXML{})
	processing.Register(processing.Metabolomics, "mzml", MzML{Metabolomics: true})
}

// MzML converts mzML (plain or indexedmzML). The zero value is ready to use.
type MzML struct {
	// Metabolomics selects the output of the Python MetabolomicsConverter
	// (same records; custom_fields {"data_type": "metabolomics",
	// "total_spectra": N} without "parser") instead of the
	// ProteomicsConverter's.
	Metabolomics bool
	// MaxTokenBytes bounds one XML token (e.g. one base64 binary array);
	// 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int
	// MaxTagBytes bounds one tag with all its attributes; 0 means
	// DefaultMaxTagBytes.
	MaxTagBytes int
}

// spectrumState is one open <spectrum> element.
type spectrumState struct {
	id, msLevel          string
	rt, bpMz, bpInt, tic string
	depth                int
	done                 bool
}

type mzmlHandler struct {
	out   processing.RecordWriter
	ns    string
	count int // spectra started (pre-order index)
	// open spectra, innermost last; pending holds started spectra in
	// document order until they (and all before them) are complete, since
	// ElementTree lists nested spectra in pre-order.
	open    []*spectrumState
	pending []*spectrumState
	written int
	vals    []processing.Field
	rec     processing.Record
}

func (h *mzmlHandler) start(se *xml.StartElement, depth int) error {
	if depth == 0 {
		h.ns = se.Name.Space
		if h.ns == "" {
			h.ns = PSINamespace
		}
		return nil // findall(".//…") does not include the root itself
	}
	if se.Name.Space != h.ns {
		return nil
	}
	switch se.Name.Local {
	case "spectrum":
		s := &spectrumState{msLevel: "1", depth: depth}
		for _, a := range se.Attr {
			if a.Name.Space != "" {
				continue
			}
			switch a.Name.Local {
			case "id":
				s.id = a.Value
			case "msLevel":
				s.msLevel = a.Value
			}
		}
		h.count++
		h.open = append(h.open, s)
		h.pending = append(h.pending, s)
	case "cvParam":
		if len(h.open) == 0 {
			return nil
		}
		var name, value string
		for _, a := range se.Attr {
			if a.Name.Space != "" {
				continue
			}
			switch a.Name.Local {
			case "name":
				name = a.Value
			case "value":
				value = a.Value
			}
		}
		var slot func(s *spectrumState) *string
		lname := pyfmt.PyLower(name)
		switch {
		case strings.Contains(lname, "scan start time"):
			slot = func(s *spectrumState) *string { return &s.rt }
		case strings.Contains(lname, "base peak m/z"):
			slot = func(s *spectrumState) *string { return &s.bpMz }
		case strings.Contains(lname, "base peak intensity"):
			slot = func(s *spectrumState) *string { return &s.bpInt }
		case strings.Contains(lname, "total ion current"):
			slot = func(s *spectrumState) *string { return &s.tic }
		default:
			return nil
		}
		for _, s := range h.open {
			*slot(s) = value
		}
	}
	return nil
}

func (h *mzmlHandler) end(depth int) error {
	if n := len(h.open); n > 0 && h.open[n-1].depth == depth {
		h.open[n-1].done = true
		h.open = h.open[:n-1]
		return h.flush()
	}
	return nil
}

func (h *mzmlHandler) flush() error {
	for len(h.pending) > 0 && h.pending[0].done {
		s := h.pending[0]
		h.pending[0] = nil
		h.pending = h.pending[1:]
		if s.id != "" {
			h.rec.ID = s.id
		} else {
			h.rec.ID = "spectrum_" + strconv.Itoa(h.written)
		}
		h.written++
		v := h.vals
		v[0].Value, v[1].Value, v[2].Value = s.id, s.msLevel, s.rt
		v[3].Value, v[4].Value, v[5].Value = s.bpMz, s.bpInt, s.tic
		if err := h.out.WriteRecord(&h.rec); err != nil {
			return err
		}
	}
	if len(h.pending) == 0 {
		h.pending = h.pending[:0:0] // let the backing array go
	}
	return nil
}

// Convert implements processing.Converter.
func (c MzML) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	h := &mzmlHandler{out: out, vals: fieldsFor(MzMLHeaders)}
	h.rec.Values = h.vals
	if err := walk(ctx, in.R, limits{token: c.MaxTokenBytes, tag: c.MaxTagBytes}, h); err != nil {
		return processing.Summary{}, err
	}
	n := int64(h.written)
	custom := []processing.Field{
		{Key: "total_spectra", Value: n},
		{Key: "parser", Value: "xml_fallback"},
	}
	if c.Metabolomics {
		custom = []processing.Field{
			{Key: "data_type", Value: "metabolomics"},
			{Key: "total_spectra", Value: n},
		}
	}
	return processing.Summary{
		Headers:      MzMLHeaders,
		CustomFields: custom,
		Statistics:   []processing.Field{{Key: "total_spectra", Value: n}},
		Records:      h.written,
	}, nil
}

// MzXML converts mzXML. The zero value is ready to use.
type MzXML struct {
	// MaxTokenBytes bounds one XML token (e.g. one base64 peaks element);
	// 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int
	// MaxTagBytes bounds one tag with all its attributes (so one attribute
	// value, where mzXML keeps its scan data); 0 means DefaultMaxTagBytes.
	MaxTagBytes int
}

type mzxmlHandler struct {
	out  processing.RecordWriter
	ns   string
	n    int
	vals []processing.Field
	rec  processing.Record
}

func (h *mzxmlHandler) start(se *xml.StartElement, depth int) error {
	if depth == 0 {
		h.ns = se.Name.Space // root.iter() includes the root itself
	}
	if se.Name.Space != h.ns || se.Name.Local != "scan" {
		return nil
	}
	var num, rt, bpMz, bpInt, tic string
	msLevel := "1"
	for _, a := range se.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "num":
			num = a.Value
		case "msLevel":
			msLevel = a.Value
		case "retentionTime":
			rt = a.Value
		case "basePeakMz":
			bpMz = a.Value
		case "basePeakIntensity":
			bpInt = a.Value
		case "totIonCurrent":
			tic = a.Value
		}
	}
	h.rec.ID = "scan_" + num
	v := h.vals
	v[0].Value, v[1].Value, v[2].Value = num, msLevel, rt
	v[3].Value, v[4].Value, v[5].Value = bpMz, bpInt, tic
	h.n++
	return h.out.WriteRecord(&h.rec)
}

func (h *mzxmlHandler) end(int) error { return nil }

// Convert implements processing.Converter.
func (c MzXML) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	h := &mzxmlHandler{out: out, vals: fieldsFor(MzXMLHeaders)}
	h.rec.Values = h.vals
	if err := walk(ctx, in.R, limits{token: c.MaxTokenBytes, tag: c.MaxTagBytes}, h); err != nil {
		return processing.Summary{}, err
	}
	n := int64(h.n)
	return processing.Summary{
		Headers:      MzXMLHeaders,
		CustomFields: []processing.Field{{Key: "total_scans", Value: n}},
		Statistics:   []processing.Field{{Key: "total_scans", Value: n}},
		Records:      h.n,
	}, nil
}

func fieldsFor(headers []string) []processing.Field {
	f := make([]processing.Field, len(headers))
	for i, h := range headers {
		f[i].Key = h
	}
	return f
}
