package mzml

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/processing"
)

// Attribute defaults from the DOCTYPE's internal subset, applied as expat
// (Python's ElementTree) applies them: an element without an attribute
// that an <!ATTLIST ...> declares with a default ("v" or #FIXED "v") gets
// it, before namespace processing (so a defaulted xmlns declares a
// namespace); the first declaration of an attribute wins; and the values of
// attributes declared with a type other than CDATA have their spaces
// collapsed. encoding/xml ignores the DTD altogether.

// MaxDTDAttrs bounds the attributes the internal subset may declare, so a
// small DOCTYPE cannot multiply into millions of attributes per element.
const MaxDTDAttrs = 1024

// attDecl is one attribute of an <!ATTLIST> declaration.
type attDecl struct {
	name       xml.Name // raw: Space is the prefix, as RawToken gives it
	value      string   // the normalised default
	hasDefault bool
	cdata      bool
}

// dtdDecls maps a raw element name ("p:spectrum") to its attributes.
type dtdDecls map[string][]attDecl

// rawName splits a qualified name the way encoding/xml does.
func rawName(s string) xml.Name {
	if p, l, ok := strings.Cut(s, ":"); ok && p != "" && l != "" {
		return xml.Name{Space: p, Local: l}
	}
	return xml.Name{Local: s}
}

// parseDoctype reads the ATTLIST declarations of a DOCTYPE directive's
// internal subset (encoding/xml has already dropped its comments).
func parseDoctype(line int, dir string, standalone bool) (dtdDecls, error) {
	fail := func(format string, args ...any) (dtdDecls, error) {
		return nil, &processing.ParseError{Line: line, Msg: "DOCTYPE: " + fmt.Sprintf(format, args...)}
	}
	if !strings.HasPrefix(dir, "DOCTYPE") {
		return nil, nil
	}
	// The internal subset starts at the first '[' outside quotes.
	i, q := 0, byte(0)
	for ; i < len(dir); i++ {
		c := dir[i]
		if q != 0 {
			if c == q {
				q = 0
			}
			continue
		}
		if c == '"' || c == '\'' {
			q = c
		} else if c == '[' {
			break
		}
	}
	if i >= len(dir) {
		return nil, nil
	}
	s := dir[i+1:]
	decls := dtdDecls{}
	total := 0
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		switch {
		case s == "" || s[0] == ']':
			return decls, nil
		case strings.HasPrefix(s, "<!ATTLIST") && len(s) > 9 && isXMLSpace(s[9]):
			rest, n, err := parseAttlist(s[9:], decls)
			if err != "" {
				return fail("%s", err)
			}
			total += n
			if total > MaxDTDAttrs {
				return fail("more than %d attribute declarations in the internal subset (not supported)", MaxDTDAttrs)
			}
			s = rest
		case strings.HasPrefix(s, "<?"):
			end := strings.Index(s, "?>")
			if end < 0 {
				return fail("unterminated processing instruction")
			}
			s = s[end+2:]
		case strings.HasPrefix(s, "<!"):
			end := declEnd(s)
			if end < 0 {
				return fail("unterminated declaration")
			}
			s = s[end+1:]
		case s[0] == '%': // parameter-entity reference
			end := strings.IndexByte(s, ';')
			if end < 0 {
				return fail("malformed parameter-entity reference")
			}
			if !standalone {
				// expat (as ElementTree runs it) reads no parameter
				// entity and, as XML requires of a processor that
				// does not, ignores the ATTLISTs after the reference.
				return decls, nil
			}
			s = s[end+1:]
		default:
			return fail("unexpected %q in the internal subset", firstRune(s))
		}
	}
}

func firstRune(s string) string {
	_, n := utf8.DecodeRuneInString(s)
	return s[:n]
}

// declEnd is the index of the '>' closing the declaration s starts with,
// outside quoted literals; -1 if none.
func declEnd(s string) int {
	q := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '>':
			return i
		}
	}
	return -1
}

// dtdName reads a name token at the start of s.
func dtdName(s string) (name, rest string) {
	i := strings.IndexAny(s, " \t\r\n>()|\"'")
	if i < 0 {
		i = len(s)
	}
	return s[:i], s[i:]
}

// parseAttlist parses one ATTLIST after its keyword, records its
// attributes and returns the text after it, the number of attributes, and
// a message if it is malformed.
func parseAttlist(s string, decls dtdDecls) (string, int, string) {
	elem, s := dtdName(strings.TrimLeft(s, " \t\r\n"))
	if elem == "" {
		return "", 0, "ATTLIST without an element name"
	}
	n := 0
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return "", 0, "unterminated ATTLIST " + elem
		}
		if s[0] == '>' {
			return s[1:], n, ""
		}
		var att, typ string
		att, s = dtdName(s)
		s = strings.TrimLeft(s, " \t\r\n")
		if att == "" || s == "" {
			return "", 0, "malformed ATTLIST " + elem
		}
		if s[0] != '(' {
			typ, s = dtdName(s)
			s = strings.TrimLeft(s, " \t\r\n")
		}
		if (typ == "" || typ == "NOTATION") && strings.HasPrefix(s, "(") {
			end := strings.IndexByte(s, ')')
			if end < 0 {
				return "", 0, "unterminated enumeration in ATTLIST " + elem
			}
			s = strings.TrimLeft(s[end+1:], " \t\r\n")
		} else if typ == "" || typ == "NOTATION" {
			return "", 0, "malformed ATTLIST " + elem
		}
		d := attDecl{name: rawName(att), cdata: typ == "CDATA"}
		switch {
		case strings.HasPrefix(s, "#REQUIRED"), strings.HasPrefix(s, "#IMPLIED"):
			_, s = dtdName(s)
		default:
			if strings.HasPrefix(s, "#FIXED") {
				s = strings.TrimLeft(s[6:], " \t\r\n")
			}
			if s == "" || (s[0] != '"' && s[0] != '\'') {
				return "", 0, fmt.Sprintf("malformed default of attribute %s in ATTLIST %s", att, elem)
			}
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return "", 0, fmt.Sprintf("unterminated default of attribute %s in ATTLIST %s", att, elem)
			}
			v, msg := defaultValue(s[1:1+end], d.cdata)
			if msg != "" {
				return "", 0, fmt.Sprintf("default of attribute %s in ATTLIST %s: %s", att, elem, msg)
			}
			d.value, d.hasDefault = v, true
			s = s[2+end:]
		}
		n++
		known := false
		for _, o := range decls[elem] {
			known = known || o.name == d.name
		}
		if !known { // the first declaration binds
			decls[elem] = append(decls[elem], d)
		}
	}
}

// defaultValue normalises a default as an attribute value: line ends and
// tabs become spaces, character references and the predefined entities
// are replaced, and for a non-CDATA type spaces are collapsed. A reference
// to any other entity is refused (not supported).
func defaultValue(lit string, cdata bool) (string, string) {
	lit = strings.ReplaceAll(lit, "\r\n", "\n")
	var b strings.Builder
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch c {
		case '\t', '\n', '\r':
			b.WriteByte(' ')
		case '&':
			end := strings.IndexByte(lit[i:], ';')
			if end < 0 {
				return "", "an '&' that starts no reference"
			}
			ref := lit[i+1 : i+end]
			i += end
			if r, ok := charRef(ref); ok {
				b.WriteRune(r)
				continue
			}
			v, ok := map[string]string{"lt": "<", "gt": ">", "amp": "&", "apos": "'", "quot": `"`}[ref]
			if !ok {
				return "", fmt.Sprintf("the entity reference &%s; is not supported in a default value", ref)
			}
			b.WriteString(v)
		case '<':
			return "", "a '<' in a default value"
		default:
			b.WriteByte(c)
		}
	}
	v := b.String()
	if !cdata {
		v = collapse(v)
	}
	return v, ""
}

func charRef(ref string) (rune, bool) {
	if !strings.HasPrefix(ref, "#") {
		return 0, false
	}
	var n uint64
	var err error
	if strings.HasPrefix(ref, "#x") {
		n, err = strconv.ParseUint(ref[2:], 16, 32)
	} else {
		n, err = strconv.ParseUint(ref[1:], 10, 32)
	}
	if err != nil || n == 0 || n > utf8.MaxRune {
		return 0, false
	}
	return rune(n), true
}

// collapse trims spaces and reduces inner runs to one (the normalisation
// of a non-CDATA attribute value).
func collapse(v string) string {
	if !strings.Contains(v, "  ") && !strings.HasPrefix(v, " ") && !strings.HasSuffix(v, " ") {
		return v
	}
	return strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' }), " ")
}

// apply adds the declared defaults missing from t (raw names) and
// collapses the values of declared non-CDATA attributes.
func (dd dtdDecls) apply(t *xml.StartElement) error {
	decls := dd[qname(t.Name)]
	if len(decls) == 0 {
		return nil
	}
	var present map[xml.Name]int
	if len(t.Attr) > smallAttrs {
		present = make(map[xml.Name]int, len(t.Attr))
		for i, a := range t.Attr {
			if _, dup := present[a.Name]; !dup {
				present[a.Name] = i
			}
		}
	}
	find := func(n xml.Name) int {
		if present != nil {
			if i, ok := present[n]; ok {
				return i
			}
			return -1
		}
		for i, a := range t.Attr {
			if a.Name == n {
				return i
			}
		}
		return -1
	}
	for _, d := range decls {
		switch i := find(d.name); {
		case i >= 0 && !d.cdata:
			t.Attr[i].Value = collapse(t.Attr[i].Value)
		case i < 0 && d.hasDefault:
			t.Attr = append(t.Attr, xml.Attr{Name: d.name, Value: d.value})
		}
	}
	if len(t.Attr) > MaxAttrs {
		return fmt.Errorf("more than %d attributes on <%s> with the DOCTYPE's defaults", MaxAttrs, qname(t.Name))
	}
	return nil
}
