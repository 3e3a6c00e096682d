package textio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

type lineOut struct {
	text string
	term bool
}

func readAll(t testing.TB, r io.Reader, opts LineOptions) ([]lineOut, error) {
	t.Helper()
	lr := NewLineReader(r, opts)
	var out []lineOut
	for lr.Next() {
		out = append(out, lineOut{lr.Text(), lr.Terminated()})
		if lr.LineNumber() != len(out) {
			t.Fatalf("LineNumber %d, want %d", lr.LineNumber(), len(out))
		}
	}
	return out, lr.Err()
}

// pySplit is the reference: Python universal-newline splitting.
func pySplit(s string) []lineOut {
	var out []lineOut
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			out = append(out, lineOut{s, false})
			break
		}
		n := 1
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			n = 2
		}
		out = append(out, lineOut{s[:i], true})
		s = s[i+n:]
	}
	return out
}

func TestLineReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"one", "abc"},
		{"one nl", "abc\n"},
		{"lf", "a\nb\nc"},
		{"crlf", "a\r\nb\r\n"},
		{"cr", "a\rb\rc\r"},
		{"mixed", "a\r\n\r\nb\r\rc\n\nd"},
		{"blank lines", "\n\n\n"},
		{"bom", "\ufeffid,x\n1,2\n"},
		{"utf8", "é\u4e2d\U0001F600\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := pySplit(tc.in)
			for _, rd := range []struct {
				name string
				r    io.Reader
			}{
				{"plain", strings.NewReader(tc.in)},
				{"onebyte", iotest.OneByteReader(strings.NewReader(tc.in))},
				{"dataerr", iotest.DataErrReader(strings.NewReader(tc.in))},
			} {
				got, err := readAll(t, rd.r, LineOptions{})
				if err != nil {
					t.Fatalf("%s: %v", rd.name, err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: got %+v want %+v", rd.name, got, want)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s: line %d got %+v want %+v", rd.name, i+1, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestLineReaderLongLines(t *testing.T) {
	// Lines around and across the buffer size, with CR at boundaries.
	for _, n := range []int{bufSize - 2, bufSize - 1, bufSize, bufSize + 1, 3*bufSize + 7} {
		for _, nl := range []string{"\n", "\r\n", "\r"} {
			in := strings.Repeat("x", n) + nl + "y" + nl + strings.Repeat("z", n)
			got, err := readAll(t, strings.NewReader(in), LineOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := pySplit(in)
			if len(got) != len(want) {
				t.Fatalf("n=%d nl=%q: %d lines want %d", n, nl, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("n=%d nl=%q line %d differs (len %d vs %d)", n, nl, i+1, len(got[i].text), len(want[i].text))
				}
			}
		}
	}
}

func TestLineReaderBytesRead(t *testing.T) {
	in := "ab\r\ncd\ref\n\ngh"
	lr := NewLineReader(iotest.HalfReader(strings.NewReader(in)), LineOptions{})
	var offs []int64
	for lr.Next() {
		offs = append(offs, lr.Offset())
	}
	if lr.BytesRead() != int64(len(in)) {
		t.Fatalf("BytesRead %d want %d", lr.BytesRead(), len(in))
	}
	want := []int64{0, 4, 7, 10, 11}
	if len(offs) != len(want) {
		t.Fatalf("offsets %v want %v", offs, want)
	}
	for i := range want {
		if offs[i] != want[i] {
			t.Fatalf("offsets %v want %v", offs, want)
		}
	}
}

func TestLineReaderTooLong(t *testing.T) {
	in := "short\n" + strings.Repeat("x", 1000) + "\nmore\n"
	_, err := readAll(t, strings.NewReader(in), LineOptions{MaxLineBytes: 100})
	var le *LineTooLongError
	if !errors.As(err, &le) || !errors.Is(err, ErrLineTooLong) || le.Line != 2 {
		t.Fatalf("err = %v", err)
	}
	// A huge line without newline from an endless reader fails cleanly.
	_, err = readAll(t, io.LimitReader(repeatReader('a'), 1<<30), LineOptions{MaxLineBytes: 1 << 20})
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v", err)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestLineReaderUTF8(t *testing.T) {
	in := "ok\nbad \xff here\n"
	_, err := readAll(t, strings.NewReader(in), LineOptions{})
	var ue *UTF8Error
	if !errors.As(err, &ue) || ue.Line != 2 || ue.Column != 5 || ue.Off != 7 || ue.Byte != 0xff {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, ErrInvalidUTF8) {
		t.Fatal("not ErrInvalidUTF8")
	}
	// Surrogates encoded in UTF-8 are invalid for Python too.
	_, err = readAll(t, strings.NewReader("\xed\xa0\x80"), LineOptions{})
	if !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("surrogate: %v", err)
	}
	if _, err := readAll(t, strings.NewReader("\xff"), LineOptions{SkipUTF8Check: true}); err != nil {
		t.Fatal(err)
	}
}

func TestLineReaderContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lr := NewLineReaderContext(ctx, repeatLines{}, LineOptions{})
	n := 0
	for lr.Next() {
		n++
		if n == 10 {
			cancel()
		}
	}
	if !errors.Is(lr.Err(), context.Canceled) {
		t.Fatalf("err = %v", lr.Err())
	}
	if n > 10+ctxCheckLines {
		t.Fatalf("read %d lines after cancel", n)
	}
}

type repeatLines struct{}

func (repeatLines) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "ab\n"[i%3]
	}
	return len(p), nil
}

func TestLineReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom))
	got, err := readAll(t, r, LineOptions{})
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Fatalf("got %v err %v", got, err)
	}
}

func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"", "a\nb", "a\r\nb\r", "\r\r\n\n", "\ufeffx", "\xff\n", "abc\r"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var r io.Reader = bytes.NewReader(data)
		if chunk%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		got, err := readAll(t, r, LineOptions{MaxLineBytes: 64})
		want := pySplit(string(data))
		if err != nil {
			if errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrInvalidUTF8) {
				return
			}
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %+v want %+v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("line %d: got %+v want %+v", i+1, got[i], want[i])
			}
		}
	})
}

func BenchmarkLineReader(b *testing.B) {
	data := bytes.Repeat([]byte("chr1\t12345\trs1\tA\tG\t30\tPASS\tDP=10;AF=0.5\n"), 100000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		lr := NewLineReader(bytes.NewReader(data), LineOptions{})
		for lr.Next() {
		}
	}
}

// allocated returns the bytes allocated on the heap while f runs.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestLineReaderMemoryBound: the long-line accumulator never grows past
// the limit, so a refused line costs at most about the limit (issue 9 #8:
// a refused 100 MiB line peaked at 304 MB), and an accepted line of
// exactly the limit does not over-allocate either.
func TestLineReaderMemoryBound(t *testing.T) {
	const limit = 3<<20 + 12345
	cases := []struct {
		name string
		line int
		ok   bool
	}{
		{"refused 40 MiB line", 40 << 20, false},
		{"accepted line at the limit", limit, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := io.MultiReader(io.LimitReader(repeatReader('a'), int64(tc.line)), strings.NewReader("\nnext\n"))
			var err error
			n := allocated(func() {
				lr := NewLineReader(in, LineOptions{MaxLineBytes: limit})
				for lr.Next() {
				}
				err = lr.Err()
			})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			// The accumulator doubles up to the limit: all its buffers
			// together are less than three times the limit (the live peak
			// is at most 1.5 times), plus the 64 KiB read buffer. Growth by
			// append (x1.25, past the limit) allocated about five times.
			if max := uint64(limit)*3 + 4*bufSize; n > max {
				t.Fatalf("allocated %d bytes for a %d-byte line with limit %d; want <= %d", n, tc.line, limit, max)
			}
		})
	}
}

func TestSkipBOM(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"\xef", "\xef"}, {"\xef\xbb", "\xef\xbb"}, {BOM, ""}, {BOM + ">x\n", ">x\n"},
		{BOM + BOM + "a", BOM + "a"}, {"a" + BOM, "a" + BOM}, {"\xef\xbb\xbe", "\xef\xbb\xbe"},
	} {
		got, err := io.ReadAll(iotest.OneByteReader(SkipBOM(strings.NewReader(tc.in))))
		if err != nil || string(got) != tc.want {
			t.Errorf("SkipBOM(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	r := SkipBOM(io.MultiReader(strings.NewReader(BOM+"abc"), iotest.ErrReader(iotest.ErrTimeout)))
	if got, err := io.ReadAll(r); string(got) != "abc" || !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("read error lost: %q, %v", got, err)
	}
}
