package mzml

import (
	"fmt"
	"io"
)

// attrNormReader is a byte-level pre-filter in front of encoding/xml. It
// does two things.
//
// Speed: inside the root element it drops character-data bytes of the
// base64 alphabet (A-Z a-z 0-9 + / =), i.e. practically all of the binary
// data arrays, which are most of an mzML/mzXML file. Neither converter reads
// text, and such bytes can never change well-formedness or the element and
// attribute stream, so the result is the same while encoding/xml only sees
// a tenth of the bytes. Whitespace, entity references and every other byte
// are kept (so line numbers and text validation are preserved), and text
// outside the root is kept (so "junk after the document element" is still
// detected).
//
// Correctness: it applies XML attribute-value normalisation to literal
// whitespace, which encoding/xml does not do and expat does: inside an
// attribute value of an element tag, a literal TAB, LF or CR (a CR LF pair
// counting as one) becomes a space. Character references (&#9; ...) are
// left alone, so they still decode to the real character, as in expat.
// Comments, CDATA sections, processing instructions and the DOCTYPE are
// passed through untouched. The DOCTYPE's internal subset is scanned with
// the XML grammar's own units (comments, processing instructions, markup
// declarations with their quoted literals), so an apostrophe in a comment
// there cannot open a "literal" that never ends and leave the rest of the
// file unnormalised; quotes and angle brackets inside its processing
// instructions become spaces, since encoding/xml would misread them. It works on bytes, so it is correct for UTF-8,
// ISO-8859-1 and US-ASCII input.
type attrNormReader struct {
	r      io.Reader
	state  uint8
	quote  byte
	dropLF bool  // the previous byte was a CR in an attribute value
	tail   uint8 // recent bytes matched toward an end marker
	ret    uint8 // state to return to after a DOCTYPE quoted literal
	// element nesting, as seen from start/end tags
	elDepth   int
	endTag    bool // the current tag is an end tag
	lastSlash bool // the last byte of the current tag (outside quotes) was '/'
	// size of the current tag, bounded by maxTag (0: no bound), and where
	// it started, for the error
	maxTag   int64
	tagBytes int64
	maxAttrs int // attributes on one tag (0: no bound)
	attrs    int
	line     int // newlines read so far
	tagLine  int
	tagName  []byte // the first bytes of the current tag's name
	nameDone bool
}

// maxTagName is how much of a tag's name is kept for an error message.
const maxTagName = 64

// tagTooLargeError is returned when one tag exceeds the tag limit; it
// wraps ErrTokenTooLarge.
type tagTooLargeError struct {
	line  int
	name  string
	limit int64
	attrs bool // the attribute count, not the size, is over the limit
}

func (e *tagTooLargeError) Error() string {
	if e.attrs {
		return fmt.Sprintf("the tag <%s ...> has more than %d attributes, the limit for one element (is this an mzML/mzXML file?)", e.name, e.limit)
	}
	return fmt.Sprintf("the tag <%s ...> is longer than %s, the limit for one element's name and attributes (is this an mzML/mzXML file?)", e.name, sizeText(e.limit))
}

// sizeText is n bytes for a message: "16 MiB" or "1000 bytes".
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func (e *tagTooLargeError) Unwrap() error { return ErrTokenTooLarge }

const (
	anText     = iota
	anLT       // after '<'
	anBang     // after "<!"
	anTag      // inside an element tag, outside quotes
	anAttr     // inside a quoted attribute value
	anComment  // inside <!-- ... -->
	anCDATA    // inside <![CDATA[ ... ]]>
	anPI       // inside <? ... ?>
	anDoctype  // inside <!DOCTYPE ... >, outside the internal subset
	anDocQuote // quoted literal inside the DOCTYPE (returns to ret)
	anRef      // inside an entity or character reference in text
	anSubset   // inside the internal subset [ ... ], between declarations
	anSubLT    // after '<' in the internal subset
	anSubBang  // after "<!" in the internal subset
	anSubCmt   // comment in the internal subset
	anSubPI    // processing instruction in the internal subset
	anSubDecl  // markup declaration (<!ENTITY, <!ATTLIST, ...)
)

// isB64 marks the bytes dropped from character data inside the root.
var isB64 [256]bool

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		isB64[c], isB64[c+'a'-'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		isB64[c] = true
	}
	isB64['+'], isB64['/'], isB64['='] = true, true, true
}

func (a *attrNormReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	w := 0
	for i := 0; i < n; i++ {
		c := p[i]
		if c == '\n' {
			a.line++
		}
		if a.state == anTag || a.state == anAttr {
			a.tagBytes++
			if a.maxTag > 0 && a.tagBytes > a.maxTag {
				return w, &tagTooLargeError{line: a.tagLine + 1, name: string(a.tagName), limit: a.maxTag}
			}
		}
		switch a.state {
		case anText:
			switch {
			case c == '<':
				a.state = anLT
			case c == '&':
				a.state = anRef
			case a.elDepth > 0 && isB64[c]:
				continue // dropped (see the type comment)
			}
		case anRef:
			if c == ';' || c == '<' {
				a.state = anText
				if c == '<' {
					a.state = anLT
				}
			}
		case anLT:
			a.endTag, a.lastSlash = false, false
			a.tagBytes, a.tagLine, a.attrs = 2, a.line, 0
			a.tagName, a.nameDone = a.tagName[:0], false
			switch c {
			case '!':
				a.state = anBang
			case '?':
				a.state, a.tail = anPI, 0
			case '/':
				a.state, a.endTag = anTag, true
				a.tagName = append(a.tagName, '/')
			default:
				a.state = anTag
				a.tagName = append(a.tagName, c)
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
				a.state = anDoctype
			}
		case anTag:
			if !a.nameDone {
				if c <= ' ' || c == '>' || c == '/' || c == '"' || c == '\'' || len(a.tagName) >= maxTagName {
					a.nameDone = true
				} else {
					a.tagName = append(a.tagName, c)
				}
			}
			switch c {
			case '"', '\'':
				a.state, a.quote = anAttr, c
				a.lastSlash = false
				a.attrs++
				if a.maxAttrs > 0 && a.attrs > a.maxAttrs {
					return w, &tagTooLargeError{line: a.tagLine + 1, name: string(a.tagName), limit: int64(a.maxAttrs), attrs: true}
				}
			case '>':
				a.state = anText
				switch {
				case a.endTag:
					a.elDepth--
				case !a.lastSlash:
					a.elDepth++
				}
			case '/':
				a.lastSlash = true
			case ' ', '\t', '\n', '\r':
			default:
				a.lastSlash = false
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
			a.closeAt(c, '-', '-', '>', anText)
		case anCDATA: // ends at "]]>"
			a.closeAt(c, ']', ']', '>', anText)
		case anPI: // ends at "?>"
			a.closePI(c, anText)
		case anDoctype:
			switch c {
			case '"', '\'':
				a.state, a.quote, a.ret = anDocQuote, c, anDoctype
			case '[':
				a.state = anSubset
			case '>':
				a.state = anText
			}
		case anDocQuote:
			if c == a.quote {
				a.state = a.ret
			}
		case anSubset:
			switch c {
			case '<':
				a.state = anSubLT
			case ']':
				a.state = anDoctype
			}
		case anSubLT:
			switch c {
			case '!':
				a.state = anSubBang
			case '?':
				a.state, a.tail = anSubPI, 0
			default:
				a.state = anSubDecl
			}
		case anSubBang:
			if c == '-' {
				a.state, a.tail = anSubCmt, 0
			} else {
				a.state = anSubDecl
			}
		case anSubCmt: // ends at "-->" (the opening "<!-" was consumed)
			a.closeAt(c, '-', '-', '>', anSubset)
		case anSubPI: // ends at "?>"
			// encoding/xml reads a DOCTYPE's quotes and angle brackets
			// inside processing instructions as markup (an apostrophe
			// there made it fail with "unexpected EOF"); their content
			// means nothing to the converters.
			if !a.closePI(c, anSubset) && (c == '\'' || c == '"' || c == '<' || c == '>') {
				c = ' '
			}
		case anSubDecl:
			switch c {
			case '"', '\'':
				a.state, a.quote, a.ret = anDocQuote, c, anSubDecl
			case '>':
				a.state = anSubset
			}
		}
		p[w] = c
		w++
	}
	return w, err
}

// closeAt advances the match of the end marker x y z by c and moves to
// state next once it is complete (comments, CDATA sections).
func (a *attrNormReader) closeAt(c, x, y, z byte, next uint8) {
	a.tail = endMatch(a.tail, c, x, y, z)
	if a.tail == 3 {
		a.state = next
	}
}

// closePI advances the match of a processing instruction's "?>" by c and
// moves to state next once it is complete; false when c is content.
func (a *attrNormReader) closePI(c byte, next uint8) bool {
	switch {
	case c == '?':
		a.tail = 1
	case c == '>' && a.tail == 1:
		a.state = next
	default:
		a.tail = 0
		return false
	}
	return true
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
