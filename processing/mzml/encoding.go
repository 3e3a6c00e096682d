package mzml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/processing"
)

// The document's encoding is settled here, in front of the pre-filter and
// encoding/xml, the way expat settles it: a UTF-16 byte order mark (or
// "<" encoded as UTF-16 without one) selects UTF-16, otherwise the
// encoding named in the XML declaration applies. The document is then
// handed on as UTF-8 with a declaration encoding/xml accepts
// (version="1.0", no encoding): encoding/xml itself knows only UTF-8 and
// refuses every version but 1.0, where expat (Python) reads any version
// and every single-byte encoding Python has a codec for.
//
// Supported: UTF-8 (also spelled UTF8 or utf_8), UTF-16 (LE/BE, with or
// without BOM), ISO-8859-1 (latin-1), windows-1252 (cp1252) and US-ASCII.
// Any other declared encoding is refused with a message that says to
// convert the file to UTF-8.

// maxDeclBytes bounds the XML declaration looked at; a longer one is
// passed on untouched (encoding/xml then judges it).
const maxDeclBytes = 1024

// ErrEncoding is wrapped by the errors about the document's character
// encoding (unsupported, or a byte that is not a character in it).
var ErrEncoding = errors.New("XML character encoding error")

// prologReader decodes the document to UTF-8 and normalises its XML
// declaration (see above). It settles all this on the first Read.
type prologReader struct {
	r    io.Reader
	out  io.Reader // set once the prolog is settled
	head []byte    // rewritten prolog still to hand out
}

func (p *prologReader) Read(b []byte) (int, error) {
	if p.out == nil {
		if err := p.settle(); err != nil {
			return 0, err
		}
	}
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.out.Read(b)
}

func encodingError(line int, format string, args ...any) error {
	return &processing.ParseError{Line: line, Msg: fmt.Sprintf(format, args...), Err: ErrEncoding}
}

// settle reads the byte order mark and the XML declaration.
func (p *prologReader) settle() error {
	var start [4]byte
	n, err := io.ReadFull(p.r, start[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	rest := io.MultiReader(bytes.NewReader(start[:n]), p.r)
	s := start[:n]
	utf16BE, utf16LE := false, false
	switch {
	case bytes.HasPrefix(s, []byte{0xFE, 0xFF}):
		utf16BE = true
		rest = io.MultiReader(bytes.NewReader(start[2:n]), p.r)
	case bytes.HasPrefix(s, []byte{0xFF, 0xFE}):
		utf16LE = true
		rest = io.MultiReader(bytes.NewReader(start[2:n]), p.r)
	case bytes.HasPrefix(s, []byte{0x00, '<'}):
		utf16BE = true
	case bytes.HasPrefix(s, []byte{'<', 0x00}):
		utf16LE = true
	}
	src := rest
	if utf16BE || utf16LE {
		src = &utf16Reader{r: rest, bigEndian: utf16BE}
	}
	// Read the declaration (after a UTF-8 BOM, which is passed on).
	var bom []byte
	buf := make([]byte, 0, 64)
	one := make([]byte, 1)
	readByte := func() bool {
		k, err := io.ReadFull(src, one)
		if k == 1 {
			buf = append(buf, one[0])
			return true
		}
		_ = err
		return false
	}
	for len(buf) < 3 && readByte() {
	}
	if bytes.HasPrefix(buf, []byte("\ufeff")) {
		bom, buf = buf[:3:3], buf[3:]
	}
	for len(buf) < 6 && readByte() {
	}
	isDecl := len(buf) == 6 && string(buf[:5]) == "<?xml" && isXMLSpace(buf[5])
	end := -1
	if isDecl {
		for len(buf) < maxDeclBytes && readByte() {
			if bytes.HasSuffix(buf, []byte("?>")) {
				end = len(buf)
				break
			}
		}
	}
	p.out = io.MultiReader(bytes.NewReader(buf), src)
	if end < 0 { // no (complete) declaration: UTF-8 or UTF-16, untouched
		p.head = bom
		return nil
	}
	decl, ok := parseDecl(string(buf[6 : end-2]))
	if !ok {
		p.head = bom
		return nil // malformed: encoding/xml reports it
	}
	lines := bytes.Count(buf[:end], []byte("\n"))
	dec, err := decoderFor(decl["encoding"], utf16BE, utf16LE, lines+1)
	if err != nil {
		return err
	}
	head := append(bom, `<?xml version="1.0"`...)
	if sa := decl["standalone"]; sa == "yes" || sa == "no" {
		head = append(head, ` standalone="`+sa+`"`...) // read by walk
	}
	head = append(head, strings.Repeat("\n", lines)...)
	p.head = append(head, "?>"...)
	p.out = src
	if dec != nil {
		dec.r, dec.line = src, lines+1
		p.out = dec
	}
	return nil
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parseDecl reads the pseudo-attributes of an XML declaration (the text
// between "<?xml " and "?>"); ok is false when it is not a list of
// name="value" pairs.
func parseDecl(s string) (map[string]string, bool) {
	m := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return m, true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		name := strings.TrimRight(s[:eq], " \t\r\n")
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		if s == "" || (s[0] != '"' && s[0] != '\'') {
			return nil, false
		}
		q := strings.IndexByte(s[1:], s[0])
		if q < 0 {
			return nil, false
		}
		m[name] = s[1 : 1+q]
		s = s[2+q:]
	}
}

// encodingKey is label lower-cased without '-' and '_' ("UTF_8" -> "utf8").
func encodingKey(label string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(label)))
}

// decoderFor returns the decoder for a declared encoding of an 8-bit
// document, nil for UTF-8 (and for a UTF-16 document, already decoded).
func decoderFor(label string, utf16BE, utf16LE bool, line int) (*byteDecoder, error) {
	key := encodingKey(label)
	if utf16BE || utf16LE {
		if label == "" || key == "utf16" || (key == "utf16be" && utf16BE) || (key == "utf16le" && utf16LE) {
			return nil, nil
		}
		return nil, encodingError(line, "the XML declaration names the encoding %q but the file is UTF-16 (fix or remove the encoding declaration)", label)
	}
	switch key {
	case "", "utf8":
		return nil, nil
	case "iso88591", "latin1", "l1", "iso885911987", "cp819", "ibm819":
		return &byteDecoder{name: "ISO-8859-1", table: &latin1Table}, nil
	case "windows1252", "cp1252":
		return &byteDecoder{name: "windows-1252", table: &cp1252Table}, nil
	case "usascii", "ascii":
		return &byteDecoder{name: "US-ASCII", table: &asciiTable}, nil
	case "utf16", "utf16le", "utf16be":
		return nil, encodingError(line, "the XML declaration names the encoding %q but the file is not UTF-16 (fix the encoding declaration)", label)
	}
	return nil, encodingError(line, "unsupported XML encoding %q (UTF-8, UTF-16, ISO-8859-1, windows-1252 and US-ASCII are supported): convert the file to UTF-8, e.g. iconv -f %s -t UTF-8", label, label)
}

// byteDecoder decodes a single-byte encoding to UTF-8 through a table
// (-1: the byte is not a character of the encoding, as in Python's codec).
type byteDecoder struct {
	r     io.Reader
	name  string
	table *[256]rune
	line  int
	in    []byte
	out   []byte
	err   error
}

func (d *byteDecoder) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.in == nil {
			d.in = make([]byte, 4096)
		}
		n, err := d.r.Read(d.in[:min(len(d.in), len(p)/2+1)])
		d.out = d.out[:0]
		for _, c := range d.in[:n] {
			r := d.table[c]
			if r < 0 {
				d.err = encodingError(d.line, "byte 0x%02x is not a character in %s, the encoding the XML declaration names", c, d.name)
				break
			}
			if c == '\n' {
				d.line++
			}
			d.out = utf8.AppendRune(d.out, r)
		}
		if err != nil && d.err == nil {
			d.err = err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

var latin1Table, cp1252Table, asciiTable [256]rune

func init() {
	for i := range 256 {
		latin1Table[i] = rune(i)
		cp1252Table[i] = rune(i)
		asciiTable[i] = rune(i)
		if i >= 0x80 {
			asciiTable[i] = -1
		}
	}
	// windows-1252 0x80-0x9F as Python's cp1252 codec (five are undefined).
	hi := [32]rune{
		0x20AC, -1, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, -1, 0x017D, -1,
		-1, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, -1, 0x017E, 0x0178,
	}
	for i, r := range hi {
		cp1252Table[0x80+i] = r
	}
}

// utf16Reader decodes UTF-16 to UTF-8 (surrogate pairs joined; an
// unpaired surrogate or an odd trailing byte is an error, as in expat).
type utf16Reader struct {
	r         io.Reader
	bigEndian bool
	line      int
	in        []byte
	pend      []byte // undecoded bytes carried to the next read
	out       []byte
	err       error
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		if u.in == nil {
			u.in = make([]byte, 4096)
		}
		n, err := u.r.Read(u.in)
		u.pend = append(u.pend, u.in[:n]...)
		u.out = u.out[:0]
		i := 0
		for ; i+2 <= len(u.pend); i += 2 {
			c := u.unit(i)
			r := rune(c)
			if utf16.IsSurrogate(r) {
				if i+4 > len(u.pend) {
					if err == nil {
						break // the pair's second half is in the next read
					}
					u.err = encodingError(u.line+1, "an unpaired UTF-16 surrogate (the file is not valid UTF-16)")
					break
				}
				r = utf16.DecodeRune(r, rune(u.unit(i+2)))
				if r == utf8.RuneError {
					u.err = encodingError(u.line+1, "an unpaired UTF-16 surrogate (the file is not valid UTF-16)")
					break
				}
				i += 2
			}
			if r == '\n' {
				u.line++
			}
			u.out = utf8.AppendRune(u.out, r)
		}
		u.pend = append(u.pend[:0], u.pend[i:]...)
		if err != nil && u.err == nil {
			u.err = err
			if errors.Is(err, io.EOF) && len(u.pend) > 0 {
				u.err = encodingError(u.line+1, "the UTF-16 file ends in the middle of a character")
			}
		}
	}
	n := copy(p, u.out)
	u.out = u.out[n:]
	return n, nil
}

func (u *utf16Reader) unit(i int) uint16 {
	if u.bigEndian {
		return uint16(u.pend[i])<<8 | uint16(u.pend[i+1])
	}
	return uint16(u.pend[i+1])<<8 | uint16(u.pend[i])
}
