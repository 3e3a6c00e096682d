package envelope

import (
	"io"
	"runtime"
	"testing"
)

// patternReader yields n deterministic bytes without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n-p.off)
	for i := range k {
		b[i] = byte((p.off + i) * 7)
	}
	p.off += k
	return int(k), nil
}

// TestStreamMemoryIndependentOfSize encrypts and decrypts 16 MiB through a
// pipe and checks that the bytes allocated stay far below the data size:
// the streaming path holds a fixed buffer, never the file.
func TestStreamMemoryIndependentOfSize(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 16 MiB")
	}
	const size = 16 << 20
	key := DeriveUserKey([]byte("mem"), 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	pr, pw := io.Pipe()
	go func() {
		w, err := NewEncryptWriter(key, pw)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := io.Copy(w, &patternReader{n: size}); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	dr, err := NewDecryptReader(key, pr, BlobSize(size))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, dr)
	if err != nil || n != size || !dr.Verified() {
		t.Fatalf("round trip: %d bytes, %v, verified=%v", n, err, dr.Verified())
	}

	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB for a %d MiB round trip", allocated>>10, size>>20)
	if allocated > 2<<20 {
		t.Errorf("allocated %d bytes for %d bytes of data: streaming is not constant-memory", allocated, size)
	}
}
