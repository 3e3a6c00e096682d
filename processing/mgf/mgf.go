// Package mgf converts MGF (Mascot Generic Format) peak lists into
// UnifiedData proteomics records, one per BEGIN IONS … END IONS block, as
// the Omicsomics Python ProteomicsConverter does (spec processing.md §4.10).
// Peaks are counted, not stored.
package mgf

import (
	"context"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// Headers are the fixed UnifiedData headers of an MGF document.
var Headers = []string{"title", "rtinseconds", "pepmass", "charge", "num_peaks"}

// Converter converts MGF. The zero value is ready to use.
type Converter struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

func init() {
	processing.Register(processing.Proteomics, "mgf", Converter{})
}

// spectrum is the Python current_spectrum dict: the kept keys in the order
// they were first set, then num_peaks.
type spectrum struct {
	keys [5]string
	vals [5]string
	n    int
}

func (s *spectrum) set(k, v string) {
	for i := 0; i < s.n; i++ {
		if s.keys[i] == k {
			s.vals[i] = v
			return
		}
	}
	s.keys[s.n] = k
	s.vals[s.n] = v
	s.n++
}

func (s *spectrum) get(k string) (string, bool) {
	for i := 0; i < s.n; i++ {
		if s.keys[i] == k {
			return s.vals[i], true
		}
	}
	return "", false
}

// Convert implements processing.Converter.
func (c Converter) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	lr := textio.NewLineReaderContext(ctx, textio.SkipBOM(in.R), textio.LineOptions{MaxLineBytes: c.MaxLineBytes})
	var (
		cur     spectrum
		peaks   int64
		counter int64
		n       int
		vals    = make([]processing.Field, 0, 5)
		rec     processing.Record
	)
	for lr.Next() {
		b := lr.Line()
		var line string
		if len(b) > 0 && b[0] >= '0' && b[0] <= '9' && b[len(b)-1] > ' ' && b[len(b)-1] < 0x7f {
			// Fast path for peak lines "123.4 567.8": no strip needed, and
			// a line without '=' is a peak.
			if !containsByte(b, '=') {
				peaks++
				continue
			}
			line = string(b)
		} else {
			line = pyfmt.Strip(string(b))
		}
		switch {
		case line == "BEGIN IONS":
			cur = spectrum{}
			peaks = 0
			counter++
		case line == "END IONS":
			// Python sets num_peaks in the same dict, so after an END IONS
			// without a new BEGIN IONS it keeps its earlier position.
			cur.set("num_peaks", strconv.FormatInt(peaks, 10))
			vals = vals[:0]
			for i := 0; i < cur.n; i++ {
				vals = append(vals, processing.Field{Key: cur.keys[i], Value: cur.vals[i]})
			}
			if t, ok := cur.get("title"); ok {
				rec.ID = t
			} else {
				rec.ID = "spectrum_" + strconv.FormatInt(counter, 10)
			}
			rec.Values = vals
			if err := out.WriteRecord(&rec); err != nil {
				return processing.Summary{}, err
			}
			n++
		case strings.IndexByte(line, '=') >= 0:
			i := strings.IndexByte(line, '=')
			switch k := pyfmt.PyLower(line[:i]); k {
			case "title", "rtinseconds", "pepmass", "charge":
				cur.set(k, line[i+1:])
			}
		case line != "" && line[0] != '#':
			peaks++
		}
	}
	if err := lr.Err(); err != nil {
		return processing.Summary{}, err
	}
	return processing.Summary{
		Headers:      Headers,
		CustomFields: []processing.Field{{Key: "total_spectra", Value: int64(n)}},
		Statistics:   []processing.Field{{Key: "total_spectra", Value: int64(n)}},
		Records:      n,
	}, nil
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}
