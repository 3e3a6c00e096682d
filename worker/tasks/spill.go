package tasks

import (
	"io"
	"os"
)

// spillDoc holds the processed document between conversion and upload: in
// memory while it is at most limit bytes, in a temporary file in dir from
// the first write that would pass the limit. Small files (the common
// case of many small uploads) then cost no file creation, write, read and
// unlink; large documents keep flat memory. Not safe for concurrent use.
type spillDoc struct {
	dir   string
	limit int
	buf   []byte
	off   int      // read offset in buf
	f     *os.File // nil while in memory
}

// spillMemory is the largest processed document kept in memory.
const spillMemory = 1 << 20

func newSpillDoc(dir string, limit int) *spillDoc { return &spillDoc{dir: dir, limit: limit} }

// Write appends p, spilling to a temporary file past the limit.
func (s *spillDoc) Write(p []byte) (int, error) {
	if s.f == nil && len(s.buf)+len(p) <= s.limit {
		s.buf = append(s.buf, p...)
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "omics-processed-*.json")
		if err != nil {
			return 0, err
		}
		s.f = f
		if _, err := f.Write(s.buf); err != nil {
			return 0, err
		}
		s.buf = nil
	}
	return s.f.Write(p)
}

// Rewind positions reading at the start of the document.
func (s *spillDoc) Rewind() error {
	if s.f != nil {
		_, err := s.f.Seek(0, io.SeekStart)
		return err
	}
	s.off = 0
	return nil
}

// Reset empties the document for a new conversion.
func (s *spillDoc) Reset() error {
	s.buf, s.off = s.buf[:0], 0
	if s.f == nil {
		return nil
	}
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

// Read reads the document (after Rewind).
func (s *spillDoc) Read(p []byte) (int, error) {
	if s.f != nil {
		return s.f.Read(p)
	}
	if s.off >= len(s.buf) {
		return 0, io.EOF
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	return n, nil
}

// Close removes the temporary file, if any.
func (s *spillDoc) Close() error {
	s.buf = nil
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	s.f = nil
	return err
}
