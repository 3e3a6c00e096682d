package tabular

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

func readRows(s string, delim byte) ([][]string, error) {
	rd := NewReader(textio.NewLineReader(strings.NewReader(s), textio.LineOptions{}), delim)
	var rows [][]string
	for {
		row, ok := rd.Read()
		if !ok {
			return rows, rd.Err()
		}
		rows = append(rows, append([]string{}, row...))
	}
}

// TestReaderPython compares with csv.reader results produced by CPython
// 3.11.7 (testdata/pycsv_cases.json, see testdata/README.md).
func TestReaderPython(t *testing.T) {
	data, err := os.ReadFile("testdata/pycsv_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases [][2]json.RawMessage
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		var in string
		var want [][]string
		json.Unmarshal(c[0], &in)
		json.Unmarshal(c[1], &want)
		got, err := readRows(in, ',')
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%q: got %q want %q", in, got, want)
			continue
		}
		for i := range got {
			if strings.Join(got[i], "\x00|") != strings.Join(want[i], "\x00|") || len(got[i]) != len(want[i]) {
				t.Errorf("%q: row %d got %q want %q", in, i, got[i], want[i])
			}
		}
	}
}

func TestReaderFieldLimit(t *testing.T) {
	ok := strings.Repeat("é", FieldLimit) // 131072 characters, 262144 bytes
	if _, err := readRows("a,"+ok+"\n", ','); err != nil {
		t.Fatalf("limit itself rejected: %v", err)
	}
	for _, in := range []string{
		"x\ny," + ok + "é\n",
		"x\n\"" + ok + "é\"\n",
		"x\n\"" + ok + "\nb\"\n",
	} {
		_, err := readRows(in, ',')
		var pe *processing.ParseError
		if !errors.As(err, &pe) || pe.Line != 2 {
			t.Errorf("err = %v", err)
		}
	}
}

func TestReaderLines(t *testing.T) {
	rd := NewReader(textio.NewLineReader(strings.NewReader("h\n\"a\nb\"\n\nc\n"), textio.LineOptions{}), ',')
	var lines []int
	for {
		_, ok := rd.Read()
		if !ok {
			break
		}
		lines = append(lines, rd.Line())
	}
	if len(lines) != 4 || lines[0] != 1 || lines[1] != 2 || lines[2] != 4 || lines[3] != 5 {
		t.Fatalf("lines %v", lines)
	}
}

// quoteAll writes fields the way csv.writer(quoting=QUOTE_ALL) does.
func quoteAll(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		for i, f := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + strings.ReplaceAll(f, `"`, `""`) + `"`)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{"a,b\n", `"x""y"z,1`, "\"a\nb\",c\r\n", "\n\n", `a"b`, `"`, "\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := readRows(s, ',')
		if err != nil {
			if errors.Is(err, textio.ErrInvalidUTF8) {
				return
			}
			var pe *processing.ParseError
			if errors.As(err, &pe) {
				return
			}
			t.Fatalf("unexpected error %v", err)
		}
		// Re-quoting what we read and reading it again is the identity
		// (fields holding '\r' cannot survive universal newlines).
		var keep [][]string
		for _, r := range rows {
			if len(r) == 0 {
				continue
			}
			bad := false
			for _, fld := range r {
				if strings.ContainsRune(fld, '\r') {
					bad = true
				}
			}
			if !bad {
				keep = append(keep, r)
			}
		}
		again, err := readRows(quoteAll(keep), ',')
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(keep) {
			t.Fatalf("rows %q -> %q", keep, again)
		}
		for i := range keep {
			if strings.Join(keep[i], "\x00") != strings.Join(again[i], "\x00") || len(keep[i]) != len(again[i]) {
				t.Fatalf("row %q -> %q", keep[i], again[i])
			}
		}
	})
}
