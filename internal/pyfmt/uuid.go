package pyfmt

import "crypto/rand"

// UUID is a 128-bit UUID as Python's uuid.UUID holds it.
type UUID [16]byte

// NewUUID4 is Python's uuid.uuid4(): 122 random bits from crypto/rand
// with the version (4) and variant (RFC 4122) bits set.
func NewUUID4() UUID {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails since Go 1.24
	return UUID4(b)
}

// UUID4 is uuid.UUID(bytes=b, version=4): b with the version and variant
// bits overwritten.
func UUID4(b [16]byte) UUID {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return UUID(b)
}

// String is str(uuid): 36 characters, lower-case hex in groups
// 8-4-4-4-12 ("0d3a5c1e-7b2f-4c8d-9e1a-2b3c4d5e6f70").
func (u UUID) String() string {
	out := make([]byte, 0, 36)
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return string(out)
}

// Hex is uuid.hex: the 32 lower-case hex digits without dashes.
func (u UUID) Hex() string {
	out := make([]byte, 0, 32)
	for _, c := range u {
		out = append(out, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return string(out)
}
