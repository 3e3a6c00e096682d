package envelope

import (
	"crypto/cipher"
	"encoding/binary"
)

// fieldElement is an element of GF(2^128) in GCM's bit order: hi holds
// bytes 0..7 of the block big-endian, lo bytes 8..15, so the coefficient
// of x^0 is the most significant bit of hi.
type fieldElement struct{ hi, lo uint64 }

// mulX multiplies by x (a right shift in GCM's reflected bit order),
// reducing modulo x^128 + x^7 + x^2 + x + 1.
func (e fieldElement) mulX() fieldElement {
	carry := e.lo & 1
	e.lo = e.lo>>1 | e.hi<<63
	e.hi >>= 1
	if carry != 0 {
		e.hi ^= 0xe1 << 56
	}
	return e
}

// reduce8 holds, for the 8 bits shifted out of lo by a multiplication by
// x^8, what they contribute back to hi: x^(128+m) = x^m (1 + x + x^2 + x^7).
var reduce8 = func() (t [256]uint64) {
	for w := 0; w < 256; w++ {
		for i := 0; i < 8; i++ {
			if w&(1<<i) == 0 {
				continue
			}
			m := 7 - i // the bit at position 127-i moves to 128+m
			for _, p := range []int{m, m + 1, m + 2, m + 7} {
				t[w] ^= 1 << (63 - p)
			}
		}
	}
	return t
}()

// ghash is an incremental GHASH over the ciphertext only (GCM without
// associated data), using Shoup's 8-bit table method: 256 precomputed
// multiples of H (4 KiB) and 16 table steps per block.
//
// With a fast GHASH (newGHASHFast) runs of whole blocks are hashed by the
// standard library's AES-GCM (PCLMULQDQ/PMULL assembly where the CPU has
// it) instead: GHASH is X_i = (X_{i-1} xor B_i)·H, so sealing an empty
// plaintext with the associated data (y xor B_1) || B_2 .. B_n under a
// fixed nonce N gives T = ((y_n xor L)·H) xor E(K, N||1), where y_n is the
// running value after the n blocks and L the length block of that
// associated data; hence y_n = ((T xor E(K, N||1))·H^-1) xor L, one table
// multiplication by H^-1 per run. The tag is the same as with the table
// method alone (tested against it and against the Python blobs).
type ghash struct {
	table  [256]fieldElement
	y      fieldElement
	buf    [16]byte
	nbuf   int
	length uint64 // ciphertext bytes hashed so far

	// fast path (nil blk: table method only), set up by initFast at its
	// first use, so that short blobs never pay for the inverse
	blk  cipher.Block
	aead cipher.AEAD
	e0   [16]byte // E(K, fastNonce || 0^31 || 1)
	inv  *[256]fieldElement
	tag  []byte
}

// fastNonce is the nonce of the GHASH-only GCM calls of the fast path. No
// plaintext is ever encrypted under it: those calls only authenticate
// associated data, and their tags never leave the process.
var fastNonce [12]byte

// fastMin is the shortest run of blocks given to the fast path: below it
// the table method is cheaper than the call and the inverse step.
const fastMin = 256

// fastAfter is how much ciphertext the table method hashes before the
// fast path is set up: the set-up (mostly the inverse of H, bit by bit)
// costs about as much as hashing this with the table, so small blobs
// (the many-small-files case) never pay for it.
const fastAfter = 16 << 10

func shoupTable(t *[256]fieldElement, e fieldElement) {
	// t[0x80>>j] = x^j * e; the byte bit 0x80 is the lowest power.
	for bit := 0x80; bit > 0; bit >>= 1 {
		t[bit] = e
		e = e.mulX()
	}
	for v := 2; v < 256; v++ {
		if v&(v-1) == 0 {
			continue // a single bit, already set
		}
		low := v & -v
		t[v] = fieldElement{t[low].hi ^ t[v^low].hi, t[low].lo ^ t[v^low].lo}
	}
}

func newGHASH(h [16]byte) *ghash {
	g := &ghash{}
	shoupTable(&g.table, fieldElement{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])})
	return g
}

// newGHASHFast returns a ghash for the key of block (h = E(K, 0)) that
// hashes long runs with the standard library's GCM.
func newGHASHFast(block cipher.Block, h [16]byte) *ghash {
	g := newGHASH(h)
	g.blk = block
	return g
}

// initFast sets the fast path up (the GCM, E(K, J0) of fastNonce and the
// table of H^-1); false, leaving the table method only, if the block
// cannot make a GCM.
func (g *ghash) initFast() bool {
	aead, err := cipher.NewGCM(g.blk)
	if err != nil {
		g.blk = nil
		return false
	}
	var j [16]byte
	copy(j[:], fastNonce[:])
	j[15] = 1
	g.blk.Encrypt(g.e0[:], j[:])
	g.inv = new([256]fieldElement)
	shoupTable(g.inv, gfInverse(g.table[0x80])) // table[0x80] = H
	g.aead = aead
	g.tag = make([]byte, 0, 16)
	return true
}

// gfMul multiplies two field elements bit by bit (slow; set-up only).
func gfMul(a, b fieldElement) fieldElement {
	var z fieldElement
	v := b
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = a.hi >> (63 - i) & 1
		} else {
			bit = a.lo >> (127 - i) & 1
		}
		if bit != 0 {
			z.hi ^= v.hi
			z.lo ^= v.lo
		}
		v = v.mulX()
	}
	return z
}

// gfInverse returns a^-1 = a^(2^128-2) (a != 0).
func gfInverse(a fieldElement) fieldElement {
	r := fieldElement{hi: 1 << 63} // 1
	s := a
	for i := 1; i < 128; i++ {
		s = gfMul(s, s)
		r = gfMul(r, s)
	}
	return r
}

// mulH sets y = y * H.
func (g *ghash) mulH() { g.y = mulTable(&g.table, g.y) }

// mulTable returns y times the element t was built for.
func mulTable(t *[256]fieldElement, y fieldElement) fieldElement {
	var z fieldElement
	for b := 15; b >= 0; b-- {
		var v byte
		if b >= 8 {
			v = byte(y.lo >> (56 - 8*(b-8)))
		} else {
			v = byte(y.hi >> (56 - 8*b))
		}
		out := z.lo & 0xff
		z.lo = z.lo>>8 | z.hi<<56
		z.hi = z.hi>>8 ^ reduce8[out]
		e := &t[v]
		z.hi ^= e.hi
		z.lo ^= e.lo
	}
	return z
}

// run hashes p (whole blocks, len(p) >= 16) with the standard library's
// GCM. p is modified during the call and restored before it returns.
func (g *ghash) run(p []byte) {
	var first [16]byte
	copy(first[:], p[:16])
	binary.BigEndian.PutUint64(p[:8], binary.BigEndian.Uint64(first[:8])^g.y.hi)
	binary.BigEndian.PutUint64(p[8:16], binary.BigEndian.Uint64(first[8:])^g.y.lo)
	g.tag = g.aead.Seal(g.tag[:0], fastNonce[:], nil, p)
	copy(p[:16], first[:])
	t := fieldElement{
		binary.BigEndian.Uint64(g.tag[:8]) ^ binary.BigEndian.Uint64(g.e0[:8]),
		binary.BigEndian.Uint64(g.tag[8:]) ^ binary.BigEndian.Uint64(g.e0[8:]),
	}
	y := mulTable(g.inv, t)
	y.hi ^= uint64(len(p)) * 8 // the length block: bits of associated data, 0 of ciphertext
	g.y = y
}

func (g *ghash) block(p []byte) {
	g.y.hi ^= binary.BigEndian.Uint64(p[:8])
	g.y.lo ^= binary.BigEndian.Uint64(p[8:16])
	g.mulH()
}

// write hashes more ciphertext. With the fast path p is modified during
// the call (and restored before it returns).
func (g *ghash) write(p []byte) {
	g.length += uint64(len(p))
	if g.nbuf > 0 {
		n := copy(g.buf[g.nbuf:], p)
		g.nbuf += n
		p = p[n:]
		if g.nbuf < 16 {
			return
		}
		g.block(g.buf[:])
		g.nbuf = 0
	}
	if g.blk != nil && len(p) >= fastMin && (g.aead != nil || g.length >= fastAfter && g.initFast()) {
		k := len(p) &^ 15
		g.run(p[:k])
		p = p[k:]
	}
	for len(p) >= 16 {
		g.block(p[:16])
		p = p[16:]
	}
	g.nbuf = copy(g.buf[:], p)
}

// sum pads the last partial block, hashes the length block (no associated
// data) and returns the GHASH value. The ghash must not be used afterwards.
func (g *ghash) sum() [16]byte {
	if g.nbuf > 0 {
		clear(g.buf[g.nbuf:])
		g.block(g.buf[:])
		g.nbuf = 0
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[8:], g.length*8)
	g.block(lens[:])
	var out [16]byte
	binary.BigEndian.PutUint64(out[:8], g.y.hi)
	binary.BigEndian.PutUint64(out[8:], g.y.lo)
	return out
}
