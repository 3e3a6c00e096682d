package envelope

import (
	"crypto/aes"
	"math/rand/v2"
	"testing"
)

// TestGHASHFastMatchesTable feeds the same data, cut at random places, to
// the table-only GHASH and to the one with the standard-library fast path:
// the sums must be equal, and the fast path must leave its input intact.
func TestGHASHFastMatchesTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 200 {
		key := make([]byte, KeySize)
		for i := range key {
			key[i] = byte(rng.IntN(256))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		var h [16]byte
		block.Encrypt(h[:], h[:])
		slow, fast := newGHASH(h), newGHASHFast(block, h)
		if fast.blk == nil {
			t.Fatal("no fast path")
		}
		data := make([]byte, rng.IntN(5000))
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		orig := append([]byte(nil), data...)
		for p := data; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(1200))
			slow.write(p[:n])
			fast.write(p[:n])
			p = p[n:]
		}
		if string(data) != string(orig) {
			t.Fatalf("iteration %d: the fast path changed its input", iter)
		}
		if s, f := slow.sum(), fast.sum(); s != f {
			t.Fatalf("iteration %d (%d bytes): table %x, fast %x", iter, len(data), s, f)
		}
	}
}

// TestGHASHFastLazy: the fast path (GCM and the table of H^-1) is set up
// only after fastAfter bytes, so a small blob never pays for the inverse;
// the result is the table method's either way.
func TestGHASHFastLazy(t *testing.T) {
	block, err := aes.NewCipher(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	slow, fast := newGHASH(h), newGHASHFast(block, h)
	short := make([]byte, fastAfter-1)
	slow.write(short)
	fast.write(short)
	if fast.aead != nil || fast.inv != nil {
		t.Fatal("fast path set up for a short run")
	}
	long := make([]byte, 4*fastMin+3)
	for i := range long {
		long[i] = byte(i)
	}
	slow.write(long)
	fast.write(long)
	if fast.aead == nil {
		t.Fatal("fast path not used for a long run")
	}
	if s, f := slow.sum(), fast.sum(); s != f {
		t.Fatalf("table %x, fast %x", s, f)
	}
}
