package tabular

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
)

// wideRow returns a row of n short fields joined by delim; quoted wraps the
// first field in quotes (the character-by-character path).
func wideRow(n int, delim byte, quoted bool) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(delim)
		}
		if i == 0 && quoted {
			b.WriteString(`"q"`)
			continue
		}
		b.WriteString("c")
	}
	return b.String()
}

// TestReaderColumnLimit: a row with more than MaxColumns fields is refused
// with its line before it is split into fields (issue 9 #8: a CSV of
// 3 million columns took 1 GB); a row of exactly MaxColumns is read.
func TestReaderColumnLimit(t *testing.T) {
	for _, quoted := range []bool{false, true} {
		for _, tc := range []struct {
			n  int
			ok bool
		}{{MaxColumns, true}, {MaxColumns + 1, false}, {3 * MaxColumns, false}} {
			t.Run(fmt.Sprintf("quoted=%v/%d", quoted, tc.n), func(t *testing.T) {
				rows, err := readRows("a\n"+wideRow(tc.n, ',', quoted)+"\n", ',')
				if tc.ok {
					if err != nil || len(rows) != 2 || len(rows[1]) != tc.n {
						t.Fatalf("err = %v, %d rows", err, len(rows))
					}
					return
				}
				var pe *processing.ParseError
				if !errors.Is(err, ErrTooManyColumns) || !errors.As(err, &pe) || pe.Line != 2 {
					t.Fatalf("err = %v", err)
				}
			})
		}
	}
}

// TestUniqueKeys: the sort-based duplicate detection gives the
// first-occurrence order of csv.DictReader keys (a dict) and the slot of
// every header.
func TestUniqueKeys(t *testing.T) {
	for _, h := range [][]string{
		{}, {"a"}, {"a", "b", "c"}, {"a", "a"}, {"b", "a", "b", "c", "a", ""}, {"", "", "x", "", "x"},
	} {
		keys, slot := uniqueKeys(h)
		var wantKeys []string
		seen := map[string]int{}
		wantSlot := make([]int, len(h))
		for i, s := range h {
			j, ok := seen[s]
			if !ok {
				j = len(wantKeys)
				seen[s] = j
				wantKeys = append(wantKeys, s)
			}
			wantSlot[i] = j
		}
		if slot == nil {
			slot = make([]int, len(h))
			for i := range slot {
				slot[i] = i
			}
		}
		if len(wantKeys) == 0 {
			wantKeys = keys
		}
		if !reflect.DeepEqual(keys, wantKeys) || !reflect.DeepEqual(slot, wantSlot) {
			t.Errorf("%q: keys %q slot %v, want %q %v", h, keys, slot, wantKeys, wantSlot)
		}
	}
}

// TestWideMatrixDuplicates: duplicate column names still keep the last
// cell at the first position (DictReader) on the no-map path.
func TestWideMatrixDuplicates(t *testing.T) {
	in := "gene,s,t,s\ng1,1,2,3\n"
	var c convtest.Collector
	if _, err := (Matrix{}).Convert(context.Background(), processing.Input{R: strings.NewReader(in), Format: "csv"}, &c); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(c.Recs[0].Values)
	if want := "[{gene g1} {s 3} {t 2}]"; got != want {
		t.Fatalf("values %s, want %s", got, want)
	}
}
