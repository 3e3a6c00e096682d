package tasks

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSpillDoc: the document stays in memory up to the limit and moves to
// a temporary file from the write that passes it; reading returns every
// byte either way, Reset empties it (a second conversion), Close removes
// the file.
func TestSpillDoc(t *testing.T) {
	for _, tt := range []struct {
		name   string
		writes []int
		spills bool
	}{
		{"empty", nil, false},
		{"below", []int{3, 4}, false},
		{"at the limit", []int{5, 5}, false},
		{"crossing", []int{6, 5}, true},
		{"one big write", []int{25}, true},
		{"after spilling", []int{9, 2, 7, 1}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newSpillDoc(dir, 10)
			var want []byte
			for i, n := range tt.writes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				if k, err := s.Write(p); err != nil || k != n {
					t.Fatalf("Write = %d, %v", k, err)
				}
				want = append(want, p...)
			}
			if (s.f != nil) != tt.spills {
				t.Fatalf("spilled = %v, want %v", s.f != nil, tt.spills)
			}
			for range 2 { // reading twice: Rewind
				if err := s.Rewind(); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(s)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("read %q, %v; want %q", got, err, want)
				}
			}
			if err := s.Reset(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte("xyz")); err != nil {
				t.Fatal(err)
			}
			if err := s.Rewind(); err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(s); string(got) != "xyz" {
				t.Fatalf("after Reset read %q", got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
				t.Fatalf("left %v", left)
			}
		})
	}
	// A temporary directory that cannot be used fails the spilling write.
	s := newSpillDoc(filepath.Join(t.TempDir(), "missing"), 1)
	if _, err := s.Write([]byte("ab")); !os.IsNotExist(err) {
		t.Fatalf("Write into a missing dir = %v", err)
	}
	s.Close()
}
