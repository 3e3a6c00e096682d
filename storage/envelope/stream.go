package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
)

// chunkSize is the streaming buffer size; it is the whole working memory
// of an EncryptWriter or DecryptReader besides the 4 KiB GHASH table.
const chunkSize = 64 << 10

// gcmStream holds what both stream directions share: AES-CTR keystream
// starting at inc32(J0), the GHASH of the ciphertext and E(K, J0).
type gcmStream struct {
	ctr     cipher.Stream
	gh      *ghash
	tagMask [16]byte
}

func newGCMStream(key, nonce []byte) (*gcmStream, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w (got %d)", ErrKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	var j0 [16]byte
	copy(j0[:], nonce)
	j0[15] = 1
	s := &gcmStream{gh: newGHASHFast(block, h)}
	block.Encrypt(s.tagMask[:], j0[:])
	// The counter starts at inc32(J0). crypto/cipher's CTR increments the
	// whole 128-bit block, which equals GCM's inc32 as long as the low 32
	// bits do not wrap: guaranteed by MaxPlaintextSize (2^32-2 blocks).
	j0[15] = 2
	s.ctr = cipher.NewCTR(block, j0[:])
	return s, nil
}

func (s *gcmStream) tag() [16]byte {
	t := s.gh.sum()
	subtle.XORBytes(t[:], t[:], s.tagMask[:])
	return t
}

// EncryptWriter encrypts everything written to it into the blob format
// nonce || ciphertext || tag on the underlying writer. Close writes the tag
// (it does not close the underlying writer). Memory use is constant.
type EncryptWriter struct {
	w      io.Writer
	s      *gcmStream
	nonce  [NonceSize]byte
	header bool
	buf    []byte
	n      uint64
	err    error
	closed bool
}

// NewEncryptWriter returns a writer that encrypts with key under a fresh
// random nonce. Nothing is written to w before the first Write or Close.
func NewEncryptWriter(key []byte, w io.Writer) (*EncryptWriter, error) {
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("envelope: nonce: %w", err)
	}
	return newEncryptWriterNonce(key, nonce[:], w)
}

func newEncryptWriterNonce(key, nonce []byte, w io.Writer) (*EncryptWriter, error) {
	s, err := newGCMStream(key, nonce)
	if err != nil {
		return nil, err
	}
	ew := &EncryptWriter{w: w, s: s}
	copy(ew.nonce[:], nonce)
	return ew, nil
}

func (e *EncryptWriter) writeHeader() error {
	if e.header {
		return nil
	}
	e.header = true
	if _, err := e.w.Write(e.nonce[:]); err != nil {
		e.err = err
		return err
	}
	return nil
}

// Write encrypts p and writes the ciphertext.
func (e *EncryptWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.closed {
		return 0, errors.New("envelope: write after close")
	}
	if e.n+uint64(len(p)) > MaxPlaintextSize {
		e.err = ErrTooLarge
		return 0, e.err
	}
	if err := e.writeHeader(); err != nil {
		return 0, err
	}
	if e.buf == nil {
		e.buf = make([]byte, chunkSize)
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), len(e.buf))
		c := e.buf[:n]
		e.s.ctr.XORKeyStream(c, p[:n])
		e.s.gh.write(c)
		if _, err := e.w.Write(c); err != nil {
			e.err = err
			return written, err
		}
		e.n += uint64(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// ReadFrom encrypts everything from r (so io.Copy uses one buffer).
func (e *EncryptWriter) ReadFrom(r io.Reader) (int64, error) {
	if e.buf == nil {
		e.buf = make([]byte, chunkSize)
	}
	in := make([]byte, chunkSize)
	var total int64
	for {
		n, err := r.Read(in)
		if n > 0 {
			if _, werr := e.Write(in[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close writes the authentication tag. It does not close the underlying
// writer. Calling Close twice is a no-op.
func (e *EncryptWriter) Close() error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return nil
	}
	if err := e.writeHeader(); err != nil {
		return err
	}
	e.closed = true
	t := e.s.tag()
	if _, err := e.w.Write(t[:]); err != nil {
		e.err = err
		return err
	}
	return nil
}

// PlaintextSize returns the number of plaintext bytes written so far.
func (e *EncryptWriter) PlaintextSize() int64 { return int64(e.n) }

// DecryptReader decrypts a blob read from an underlying reader in constant
// memory. The last 16 bytes of the stream (the tag) are held back; the tag
// is checked when the underlying reader reaches EOF.
//
// Trade-off: the plaintext returned by Read is NOT authenticated until
// Read returns io.EOF. If the blob was tampered with or the key is wrong,
// the final Read returns ErrDecrypt instead of io.EOF after garbage has
// already been handed out. A consumer may only act on the plaintext
// (commit rows, publish objects) after it has seen io.EOF (or Verified()
// reports true). When the plaintext must be trusted before it is consumed,
// use DecryptToFile, which spools to a temporary file and releases it
// only after verification.
type DecryptReader struct {
	r        io.Reader
	key      []byte
	size     int64
	s        *gcmStream
	in       []byte // held-back tail (in[:nhold]) followed by fresh input
	out      []byte // plaintext buffer
	nhold    int
	pending  []byte // decrypted, not yet returned
	total    int64  // blob bytes read so far (nonce included)
	err      error
	verified bool
}

// NewDecryptReader returns a reader of the plaintext of the blob read from
// r. size is the blob's length when known (the object size), or -1; when
// known, a blob of another length is rejected as truncated/extended.
func NewDecryptReader(key []byte, r io.Reader, size int64) (*DecryptReader, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w (got %d)", ErrKeySize, len(key))
	}
	if size >= 0 && size < minBlobSize {
		return nil, ErrBlobTooShort
	}
	return &DecryptReader{r: r, key: key, size: size}, nil
}

// Verified reports whether the whole blob was read and its tag verified.
func (d *DecryptReader) Verified() bool { return d.verified }

func (d *DecryptReader) start() error {
	var nonce [NonceSize]byte
	n, err := io.ReadFull(d.r, nonce[:])
	d.total += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrBlobTooShort
	}
	if err != nil {
		return fmt.Errorf("envelope: read blob: %w", err)
	}
	d.s, err = newGCMStream(d.key, nonce[:])
	if err != nil {
		return err
	}
	d.in = make([]byte, TagSize+chunkSize)
	d.out = make([]byte, chunkSize+TagSize)
	return nil
}

// fill reads the next chunk and decrypts all but the last 16 bytes seen.
func (d *DecryptReader) fill() error {
	if d.s == nil {
		if err := d.start(); err != nil {
			return err
		}
	}
	n, err := d.r.Read(d.in[d.nhold:])
	d.total += int64(n)
	if d.size >= 0 && d.total > d.size {
		return fmt.Errorf("%w: blob longer than its declared %d bytes", ErrDecrypt, d.size)
	}
	m := d.nhold + n
	if m > TagSize {
		k := m - TagSize
		ct := d.in[:k]
		if d.s.gh.length+uint64(k) > MaxPlaintextSize {
			return fmt.Errorf("%w: blob exceeds the AES-GCM size limit", ErrDecrypt)
		}
		d.s.gh.write(ct)
		d.s.ctr.XORKeyStream(d.out[:k], ct)
		d.pending = d.out[:k]
		copy(d.in, d.in[k:m])
		d.nhold = TagSize
	} else {
		d.nhold = m
	}
	switch {
	case err == io.EOF:
		return d.finish()
	case err != nil:
		return fmt.Errorf("envelope: read blob: %w", err)
	}
	return nil
}

func (d *DecryptReader) finish() error {
	if d.total < minBlobSize {
		return ErrBlobTooShort
	}
	if d.size >= 0 && d.total != d.size {
		return fmt.Errorf("%w: blob truncated (%d of %d bytes): %w", ErrDecrypt, d.total, d.size, io.ErrUnexpectedEOF)
	}
	if d.nhold < TagSize {
		return ErrDecrypt
	}
	want := d.s.tag()
	if subtle.ConstantTimeCompare(want[:], d.in[:TagSize]) != 1 {
		return ErrDecrypt
	}
	d.verified = true
	return io.EOF
}

// Read returns decrypted bytes. See the type documentation: the data is
// authenticated only once Read has returned io.EOF.
func (d *DecryptReader) Read(p []byte) (int, error) {
	for {
		if len(d.pending) > 0 {
			n := copy(p, d.pending)
			d.pending = d.pending[n:]
			return n, nil
		}
		if d.err != nil {
			return 0, d.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		d.err = d.fill()
		if d.err != nil && !errors.Is(d.err, io.EOF) {
			// Never hand out the chunk that came with a failure.
			d.pending = nil
		}
	}
}

// PlainFile is a verified plaintext spooled to an (already unlinked where
// the OS allows it) temporary file. Close releases it.
type PlainFile struct {
	*os.File
	size int64
	path string
}

// Size returns the plaintext length.
func (f *PlainFile) Size() int64 { return f.size }

// Close closes and removes the temporary file.
func (f *PlainFile) Close() error {
	err := f.File.Close()
	if f.path != "" {
		_ = os.Remove(f.path)
	}
	return err
}

// DecryptToFile decrypts the blob read from r (size as for
// NewDecryptReader) into a temporary file in dir (os.TempDir() when
// empty) and returns it positioned at the start, only after the tag has
// been verified. Memory use is constant; disk use is the plaintext size.
// The file is created with mode 0600 and unlinked at once on systems that
// allow it, so a crash leaves no plaintext behind by name.
func DecryptToFile(ctx context.Context, key []byte, r io.Reader, size int64, dir string) (*PlainFile, error) {
	dr, err := NewDecryptReader(key, r, size)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "omics-plain-*")
	if err != nil {
		return nil, fmt.Errorf("envelope: spool file: %w", err)
	}
	pf := &PlainFile{File: f, path: f.Name()}
	if os.Remove(f.Name()) == nil {
		pf.path = ""
	}
	fail := func(err error) (*PlainFile, error) {
		_ = pf.Close()
		return nil, err
	}
	buf := make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, rerr := dr.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return fail(fmt.Errorf("envelope: spool file: %w", err))
			}
			pf.size += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fail(rerr)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("envelope: spool file: %w", err))
	}
	return pf, nil
}
