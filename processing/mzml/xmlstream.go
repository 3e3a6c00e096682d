package mzml

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/processing"
)

// DefaultMaxTokenBytes is the largest single XML token (in practice: one
// base64 binary array) accepted when MaxTokenBytes is zero. encoding/xml
// buffers a whole text node, so this bounds the memory of the parser.
const DefaultMaxTokenBytes = 64 << 20

// MaxDepth bounds the element nesting (real files nest about 10 deep); the
// decoder's element stack would otherwise grow with a garbage file of
// nothing but start tags.
const MaxDepth = 10000

// ErrTokenTooLarge is wrapped by the error returned when one XML token is
// larger than the configured limit.
var ErrTokenTooLarge = errors.New("XML token too large")

// ctxCheckTokens is how many tokens are read between two context checks
// (the budget reader also checks at every read of the underlying stream).
const ctxCheckTokens = 256

// budgetReader fails once more than limit bytes were read since the last
// reset, so that a single huge token cannot make the decoder buffer
// unbounded data; it also stops on context cancellation.
type budgetReader struct {
	ctx   context.Context
	r     io.Reader
	used  int64
	limit int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if b.used > b.limit {
		return 0, fmt.Errorf("%w: more than %d bytes in one element or text node (is this an XML file?)", ErrTokenTooLarge, b.limit)
	}
	n, err := b.r.Read(p)
	b.used += int64(n)
	return n, err
}

// handler receives the start and end elements of the document. depth is 0
// for the root element.
type handler interface {
	start(se *xml.StartElement, depth int) error
	end(depth int) error
}

// walk streams the XML document from r and calls h for every element. It
// enforces the well-formedness rules Python's expat applies and
// encoding/xml does not (one root element, nothing but whitespace,
// comments and processing instructions outside it, no duplicate
// attributes).
func walk(ctx context.Context, r io.Reader, maxToken int, h handler) error {
	if maxToken <= 0 {
		maxToken = DefaultMaxTokenBytes
	}
	// The budget is counted after the pre-filter: it bounds what
	// encoding/xml may buffer, and dropped base64 costs no memory.
	br := &budgetReader{ctx: ctx, r: &attrNormReader{r: r}, limit: int64(maxToken)}
	d := xml.NewDecoder(br)
	d.CharsetReader = charsetReader
	depth := 0
	seenRoot := false
	var ns nsScope
	declOK := true // an XML declaration is still allowed
	for tokens := 0; ; tokens++ {
		if tokens%ctxCheckTokens == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		br.used = 0
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if !seenRoot {
				return &processing.ParseError{Line: lineOf(d), Msg: "no XML element found (empty file?)"}
			}
			return nil
		}
		if err != nil {
			return xmlError(d, err)
		}
		atStart := declOK
		declOK = false
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target == "xml" && !atStart {
				return &processing.ParseError{Line: lineOf(d), Msg: "malformed XML: the <?xml ...?> declaration is not at the start of the file"}
			}
		case xml.StartElement:
			if depth == 0 && seenRoot {
				return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("junk after the document element: a second root element <%s>", t.Name.Local)}
			}
			if err := checkAttrs(d, &t); err != nil {
				return err
			}
			if err := ns.push(d, &t, depth); err != nil {
				return err
			}
			seenRoot = true
			if depth >= MaxDepth {
				return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("XML elements nested deeper than %d levels (is this an mzML/mzXML file?)", MaxDepth)}
			}
			if err := h.start(&t, depth); err != nil {
				return err
			}
			depth++
		case xml.EndElement:
			depth--
			ns.pop(depth)
			if err := h.end(depth); err != nil {
				return err
			}
		case xml.CharData:
			rest := bytes.TrimLeft(t, " \t\r\n")
			if tokens == 0 {
				// A UTF-8 byte order mark, which expat accepts (also
				// before the XML declaration).
				if string(t) == "\ufeff" {
					declOK = true
				}
				rest = bytes.TrimLeft(bytes.TrimPrefix(t, []byte("\ufeff")), " \t\r\n")
			}
			if depth == 0 && len(rest) > 0 {
				where := "before"
				if seenRoot {
					where = "after"
				}
				return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("text %s the document element (is this an XML file?)", where)}
			}
		}
	}
}

// nsScope tracks the namespace URIs in scope, to reject names with an
// undeclared prefix as expat does ("unbound prefix"). encoding/xml leaves
// such a prefix untranslated in Name.Space, so a Space that is not a URI in
// scope marks an unbound prefix.
type nsScope struct {
	bound []nsBinding
}

type nsBinding struct {
	uri   string
	depth int
}

const xmlNamespaceURL = "http://www.w3.org/XML/1998/namespace"

func (s *nsScope) push(d *xml.Decoder, t *xml.StartElement, depth int) error {
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" && a.Value == "" {
			return &processing.ParseError{Line: lineOf(d), Field: a.Name.Local,
				Msg: fmt.Sprintf("malformed XML: namespace prefix %q must not be undeclared (xmlns:%s=\"\")", a.Name.Local, a.Name.Local)}
		}
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			s.bound = append(s.bound, nsBinding{a.Value, depth})
		}
	}
	if !s.inScope(t.Name.Space) {
		return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("malformed XML: unbound namespace prefix %q on <%s>", t.Name.Space, t.Name.Local)}
	}
	for _, a := range t.Attr {
		if a.Name.Space != "xmlns" && !s.inScope(a.Name.Space) {
			return &processing.ParseError{Line: lineOf(d), Field: a.Name.Local,
				Msg: fmt.Sprintf("malformed XML: unbound namespace prefix %q on attribute %q", a.Name.Space, a.Name.Local)}
		}
	}
	return nil
}

func (s *nsScope) inScope(space string) bool {
	if space == "" || space == xmlNamespaceURL {
		return true
	}
	for i := len(s.bound) - 1; i >= 0; i-- {
		if s.bound[i].uri == space {
			return true
		}
	}
	return false
}

func (s *nsScope) pop(depth int) {
	for len(s.bound) > 0 && s.bound[len(s.bound)-1].depth >= depth {
		s.bound = s.bound[:len(s.bound)-1]
	}
}

func lineOf(d *xml.Decoder) int {
	line, _ := d.InputPos()
	return line
}

func checkAttrs(d *xml.Decoder, t *xml.StartElement) error {
	for i := 1; i < len(t.Attr); i++ {
		for j := 0; j < i; j++ {
			if t.Attr[i].Name == t.Attr[j].Name {
				return &processing.ParseError{Line: lineOf(d), Field: t.Attr[i].Name.Local,
					Msg: fmt.Sprintf("duplicate attribute %q on <%s>", t.Attr[i].Name.Local, t.Name.Local)}
			}
		}
	}
	return nil
}

func xmlError(d *xml.Decoder, err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return &processing.ParseError{Line: se.Line, Msg: "malformed XML: " + se.Msg, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *processing.ParseError
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, ErrTokenTooLarge) {
		return &processing.ParseError{Line: lineOf(d), Msg: err.Error(), Err: err}
	}
	return err
}

// charsetReader supports the 8-bit encodings expat knows besides UTF-8.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "iso-8859-1", "latin-1", "latin1", "iso_8859-1", "l1":
		return &latin1Reader{r: in}, nil
	case "us-ascii", "ascii":
		return &asciiReader{r: in}, nil
	}
	return nil, fmt.Errorf("unsupported XML encoding %q (UTF-8, ISO-8859-1 and US-ASCII are supported)", label)
}

// latin1Reader converts ISO-8859-1 bytes to UTF-8.
type latin1Reader struct {
	r   io.Reader
	buf []byte
	out []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if cap(l.buf) == 0 {
			l.buf = make([]byte, 4096)
		}
		n, err := l.r.Read(l.buf[:min(len(l.buf), len(p)/2+1)])
		l.out = l.out[:0]
		for _, c := range l.buf[:n] {
			l.out = utf8.AppendRune(l.out, rune(c))
		}
		if n == 0 && err != nil {
			return 0, err
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

// asciiReader passes ASCII through and fails on any other byte.
type asciiReader struct{ r io.Reader }

func (a *asciiReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	for _, c := range p[:n] {
		if c >= 0x80 {
			return 0, fmt.Errorf("byte 0x%02x in a document declared as US-ASCII", c)
		}
	}
	return n, err
}
