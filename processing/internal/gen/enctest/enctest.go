// Package enctest encodes test inputs the way other tools write them
// (UTF-16 with or without BOM), for the encoding tests of package
// processing and its format packages. Unlike convtest it registers no
// flags, so package processing's own tests may import it.
//
// Only _test.go files import this package.
package enctest

import "unicode/utf16"

// UTF16 encodes s as UTF-16, big- or little-endian, with a leading byte
// order mark when bom is set (the XML and text inputs of the encoding
// tests).
func UTF16(s string, bigEndian, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	b := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}
