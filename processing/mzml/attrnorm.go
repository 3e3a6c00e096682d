package mzml

import "io"

// attrNormReader applies XML attribute-value normalisation to literal
// whitespace, which encoding/xml does not do and expat does: inside an
// attribute value of an element tag, a literal TAB, LF or CR (a CR LF pair
// counting as one) becomes a space. Character references (&#9; ...) are
// left alone, so they still decode to the real character, as in expat.
// Comments, CDATA sections, processing instructions and the DOCTYPE are
// passed through untouched. It works on bytes, so it is correct for UTF-8,
// ISO-8859-1 and US-ASCII input.
type attrNormReader struct {
	r      io.Reader
	state  uint8
	quote  byte
	dropLF bool  // the previous byte was a CR in an attribute value
	tail   uint8 // recent bytes matched toward an end marker
	depth  int   // '[' nesting inside a DOCTYPE
}

const (
	anText     = iota
	anLT       // after '<'
	anBang     // after "<!"
	anTag      // inside an element tag, outside quotes
	anAttr     // inside a quoted attribute value
	anComment  // inside <!-- ... -->
	anCDATA    // inside <![CDATA[ ... ]]>
	anPI       // inside <? ... ?>
	anDoctype  // inside <!DOCTYPE ... >
	anDocQuote // quoted string inside the DOCTYPE
)

func (a *attrNormReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	w := 0
	for i := 0; i < n; i++ {
		c := p[i]
		switch a.state {
		case anText:
			if c == '<' {
				a.state = anLT
			}
		case anLT:
			switch c {
			case '!':
				a.state = anBang
			case '?':
				a.state, a.tail = anPI, 0
			default:
				a.state = anTag
				if c == '>' {
					a.state = anText
				}
			}
		case anBang:
			switch c {
			case '-':
				a.state, a.tail = anComment, 0
			case '[':
				a.state, a.tail = anCDATA, 0
			default:
				a.state, a.depth = anDoctype, 0
			}
		case anTag:
			switch c {
			case '"', '\'':
				a.state, a.quote = anAttr, c
			case '>':
				a.state = anText
			}
		case anAttr:
			if a.dropLF {
				a.dropLF = false
				if c == '\n' {
					continue // second half of CR LF: already a space
				}
			}
			switch c {
			case a.quote:
				a.state = anTag
			case '\t', '\n':
				c = ' '
			case '\r':
				c = ' '
				a.dropLF = true
			}
		case anComment: // ends at "-->" (the opening "<!-" was consumed)
			a.tail = endMatch(a.tail, c, '-', '-', '>')
			if a.tail == 3 {
				a.state = anText
			}
		case anCDATA: // ends at "]]>"
			a.tail = endMatch(a.tail, c, ']', ']', '>')
			if a.tail == 3 {
				a.state = anText
			}
		case anPI: // ends at "?>"
			switch {
			case c == '?':
				a.tail = 1
			case c == '>' && a.tail == 1:
				a.state = anText
			default:
				a.tail = 0
			}
		case anDoctype:
			switch c {
			case '"', '\'':
				a.state, a.quote = anDocQuote, c
			case '[':
				a.depth++
			case ']':
				a.depth--
			case '>':
				if a.depth <= 0 {
					a.state = anText
				}
			}
		case anDocQuote:
			if c == a.quote {
				a.state = anDoctype
			}
		}
		p[w] = c
		w++
	}
	return w, err
}

// endMatch advances a match of the three-byte end marker x y z given the
// number of bytes already matched.
func endMatch(matched uint8, c, x, y, z byte) uint8 {
	switch {
	case matched == 2 && c == z:
		return 3
	case matched >= 1 && c == y && x == y:
		return 2 // "]]]>" / "--->": stay at two
	case matched == 1 && c == y:
		return 2
	case c == x:
		return 1
	}
	return 0
}
