package envelope

import "encoding/binary"

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
type ghash struct {
	table  [256]fieldElement
	y      fieldElement
	buf    [16]byte
	nbuf   int
	length uint64 // ciphertext bytes hashed so far
}

func newGHASH(h [16]byte) *ghash {
	g := &ghash{}
	e := fieldElement{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])}
	// table[0x80>>j] = x^j * H; the byte bit 0x80 is the lowest power.
	for bit := 0x80; bit > 0; bit >>= 1 {
		g.table[bit] = e
		e = e.mulX()
	}
	for v := 2; v < 256; v++ {
		if v&(v-1) == 0 {
			continue // a single bit, already set
		}
		low := v & -v
		g.table[v] = fieldElement{g.table[low].hi ^ g.table[v^low].hi, g.table[low].lo ^ g.table[v^low].lo}
	}
	return g
}

// mulH sets y = y * H.
func (g *ghash) mulH() {
	y := g.y
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
		t := &g.table[v]
		z.hi ^= t.hi
		z.lo ^= t.lo
	}
	g.y = z
}

func (g *ghash) block(p []byte) {
	g.y.hi ^= binary.BigEndian.Uint64(p[:8])
	g.y.lo ^= binary.BigEndian.Uint64(p[8:16])
	g.mulH()
}

// write hashes more ciphertext.
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
