package pyfmt

import (
	"math/rand/v2"
	"testing"
)

// TestSafe8 compares the eight-byte test with the byte table on words
// made of safe bytes with up to two bytes of any value.
func TestSafe8(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var b [8]byte
	for iter := 0; iter < 2_000_000; iter++ {
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x5f))
		}
		for k := rng.IntN(3); k > 0; k-- {
			b[rng.IntN(8)] = byte(rng.IntN(256))
		}
		want := true
		for _, c := range b {
			want = want && jsonSafe[c]
		}
		if got := safe8(load64(string(b[:]), 0)); got != want {
			t.Fatalf("% x: safe8 %v, table %v", b, got, want)
		}
	}
	for c := range 256 { // every byte value in every position
		for pos := range 8 {
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			if got := safe8(load64(string(b[:]), 0)); got != jsonSafe[c] {
				t.Fatalf("byte %#x at %d: safe8 %v", c, pos, got)
			}
		}
	}
}
