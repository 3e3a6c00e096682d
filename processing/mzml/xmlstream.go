package mzml

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/omicsomics/omics-worker/processing"
)

// DefaultMaxTokenBytes is the largest single XML token (in practice: one
// base64 binary array) accepted when MaxTokenBytes is zero. encoding/xml
// buffers a whole text node, so this bounds the memory of the parser.
const DefaultMaxTokenBytes = 64 << 20

// DefaultMaxTagBytes is the largest start or end tag (the element name
// and all its attributes, hence also the largest attribute value) accepted
// when MaxTagBytes is zero. It is checked before encoding/xml buffers the
// tag, so a hostile 60 MiB attribute in a tiny .gz costs no memory. Real
// mzML/mzXML tags are under a kilobyte.
const DefaultMaxTagBytes = 16 << 20

// MaxAttrs bounds the number of attributes of one element (real mzML and
// mzXML elements have fewer than 30). With DefaultMaxTagBytes it bounds the
// memory of one start tag: encoding/xml allocates each attribute apart.
const MaxAttrs = 1 << 17

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
// for the root element. Names are namespace-translated as by
// xml.Decoder.Token: Space holds the namespace URI ("" for none).
type handler interface {
	start(se *xml.StartElement, depth int) error
	end(depth int) error
}

// walk streams the XML document from r and calls h for every element. It
// enforces the well-formedness rules Python's expat applies and
// encoding/xml does not (one root element, nothing but whitespace,
// comments and processing instructions outside it, no duplicate
// attributes, no unbound namespace prefix). Namespaces and start/end tag
// matching are handled here on top of xml.Decoder.RawToken, with costs
// linear in the input (see nsScope and checkAttrs).
func walk(ctx context.Context, r io.Reader, lim limits, h handler) error {
	lim = lim.withDefaults()
	// The budget is counted after the pre-filter: it bounds what
	// encoding/xml may buffer, and dropped base64 costs no memory.
	br := &budgetReader{ctx: ctx, r: &attrNormReader{r: &prologReader{r: r}, maxTag: int64(lim.tag), maxAttrs: MaxAttrs}, limit: int64(lim.token)}
	d := xml.NewDecoder(br)
	d.CharsetReader = charsetReader
	w := &walker{ctx: ctx, d: d, h: h, ns: newNSScope()}
	return w.run(br)
}

// limits are the per-token bounds of one walk.
type limits struct {
	token int // one XML token (text node, comment, ...): DefaultMaxTokenBytes
	tag   int // one start or end tag with all its attributes: DefaultMaxTagBytes
}

func (l limits) withDefaults() limits {
	if l.token <= 0 {
		l.token = DefaultMaxTokenBytes
	}
	if l.tag <= 0 {
		l.tag = DefaultMaxTagBytes
	}
	return l
}

// walker is the state of one walk.
type walker struct {
	ctx      context.Context
	d        *xml.Decoder
	h        handler
	ns       *nsScope
	open     []openElement // raw names of the open elements, root first
	seenRoot bool
	dtd      dtdDecls // attribute defaults of the internal subset, if any
	// standalone="yes" in the XML declaration
	standalone bool
}

// openElement is one open element: its raw (untranslated) name, to match
// the end tag as expat does, and the namespace bindings mark to undo.
type openElement struct {
	raw  xml.Name
	mark int
}

func (w *walker) run(br *budgetReader) error {
	d := w.d
	declOK := true // an XML declaration is still allowed
	for tokens := 0; ; tokens++ {
		if tokens%ctxCheckTokens == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		br.used = 0
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			if len(w.open) > 0 {
				return &processing.ParseError{Line: lineOf(d), Msg: "malformed XML: unexpected EOF"}
			}
			if !w.seenRoot {
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
			if t.Target == "xml" {
				w.standalone = bytes.Contains(t.Inst, []byte(`standalone="yes"`))
			}
		case xml.Directive:
			if !w.seenRoot && w.dtd == nil {
				if w.dtd, err = parseDoctype(lineOf(d), string(t), w.standalone); err != nil {
					return err
				}
			}
		case xml.StartElement:
			if err := w.startElement(&t); err != nil {
				return err
			}
		case xml.EndElement:
			if err := w.endElement(&t); err != nil {
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
			if len(w.open) == 0 && len(rest) > 0 {
				where := "before"
				if w.seenRoot {
					where = "after"
				}
				return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("text %s the document element (is this an XML file?)", where)}
			}
		}
	}
}

func (w *walker) startElement(t *xml.StartElement) error {
	d := w.d
	depth := len(w.open)
	if depth == 0 && w.seenRoot {
		return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("junk after the document element: a second root element <%s>", t.Name.Local)}
	}
	if depth >= MaxDepth {
		return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("XML elements nested deeper than %d levels (is this an mzML/mzXML file?)", MaxDepth)}
	}
	w.seenRoot = true
	raw := t.Name
	if w.dtd != nil {
		if err := w.dtd.apply(t); err != nil {
			return &processing.ParseError{Line: lineOf(d), Msg: err.Error()}
		}
	}
	mark := w.ns.mark()
	if err := w.ns.declare(w.ctx, d, t); err != nil {
		return err
	}
	if err := w.ns.translate(w.ctx, d, t); err != nil {
		return err
	}
	if err := checkAttrs(w.ctx, d, t); err != nil {
		return err
	}
	w.open = append(w.open, openElement{raw: raw, mark: mark})
	return w.h.start(t, depth)
}

func (w *walker) endElement(t *xml.EndElement) error {
	n := len(w.open)
	if n == 0 {
		return &processing.ParseError{Line: lineOf(w.d), Msg: "malformed XML: unexpected end element </" + qname(t.Name) + ">"}
	}
	top := w.open[n-1]
	if top.raw != t.Name {
		return &processing.ParseError{Line: lineOf(w.d), Msg: "malformed XML: element <" + qname(top.raw) + "> closed by </" + qname(t.Name) + ">"}
	}
	w.open = w.open[:n-1]
	w.ns.release(top.mark)
	if n == 1 {
		w.open = nil // let a deep stack go
	}
	return w.h.end(n - 1)
}

// qname is the name as written in the document (prefix:local).
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// nsScope tracks the namespace bindings in scope: for every prefix ("" for
// the default namespace) a stack of URIs, innermost last, and the order in
// which prefixes were bound so that an end tag undoes its element's
// bindings. Every operation is O(1) amortised per attribute, however many
// prefixes are in scope (a scan of all bindings per element was quadratic
// on a root declaring tens of thousands of prefixes).
type nsScope struct {
	uris  map[string][]string
	order []string // bound prefixes, in binding order
}

func newNSScope() *nsScope { return &nsScope{uris: map[string][]string{}} }

const xmlNamespaceURL = "http://www.w3.org/XML/1998/namespace"

// ctxCheckAttrs is how many attributes are processed between two context
// checks inside one element.
const ctxCheckAttrs = 4096

func checkCtx(ctx context.Context, i int) error {
	if i > 0 && i%ctxCheckAttrs == 0 {
		return ctx.Err()
	}
	return nil
}

func (s *nsScope) mark() int { return len(s.order) }

// declare binds the xmlns and xmlns:p attributes of t.
func (s *nsScope) declare(ctx context.Context, d *xml.Decoder, t *xml.StartElement) error {
	for i, a := range t.Attr {
		if err := checkCtx(ctx, i); err != nil {
			return err
		}
		var prefix string
		switch {
		case a.Name.Space == "xmlns":
			if a.Value == "" {
				return &processing.ParseError{Line: lineOf(d), Field: a.Name.Local,
					Msg: fmt.Sprintf("malformed XML: namespace prefix %q must not be undeclared (xmlns:%s=\"\")", a.Name.Local, a.Name.Local)}
			}
			prefix = a.Name.Local
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			prefix = ""
		default:
			continue
		}
		s.uris[prefix] = append(s.uris[prefix], a.Value)
		s.order = append(s.order, prefix)
	}
	return nil
}

// release undoes the bindings made since mark.
func (s *nsScope) release(mark int) {
	for len(s.order) > mark {
		p := s.order[len(s.order)-1]
		s.order = s.order[:len(s.order)-1]
		st := s.uris[p]
		if len(st) == 1 {
			delete(s.uris, p)
		} else {
			s.uris[p] = st[:len(st)-1]
		}
	}
}

func (s *nsScope) lookup(prefix string) (string, bool) {
	st := s.uris[prefix]
	if len(st) == 0 {
		return "", false
	}
	return st[len(st)-1], true
}

// translate replaces the prefixes of t's name and attribute names by their
// namespace URIs, as xml.Decoder.Token does, and rejects an unbound prefix
// as expat does ("unbound prefix"). Unprefixed attributes have no
// namespace; xmlns declarations keep Space "xmlns" (or are "xmlns").
func (s *nsScope) translate(ctx context.Context, d *xml.Decoder, t *xml.StartElement) error {
	switch t.Name.Space {
	case "":
		t.Name.Space, _ = s.lookup("")
	case "xml":
		t.Name.Space = xmlNamespaceURL
	default:
		uri, ok := s.lookup(t.Name.Space)
		if !ok || t.Name.Space == "xmlns" {
			return &processing.ParseError{Line: lineOf(d), Msg: fmt.Sprintf("malformed XML: unbound namespace prefix %q on <%s>", t.Name.Space, t.Name.Local)}
		}
		t.Name.Space = uri
	}
	for i := range t.Attr {
		if err := checkCtx(ctx, i); err != nil {
			return err
		}
		n := &t.Attr[i].Name
		switch n.Space {
		case "", "xmlns":
		case "xml":
			n.Space = xmlNamespaceURL
		default:
			uri, ok := s.lookup(n.Space)
			if !ok {
				return &processing.ParseError{Line: lineOf(d), Field: n.Local,
					Msg: fmt.Sprintf("malformed XML: unbound namespace prefix %q on attribute %q", n.Space, n.Local)}
			}
			n.Space = uri
		}
	}
	return nil
}

func lineOf(d *xml.Decoder) int {
	line, _ := d.InputPos()
	return line
}

// smallAttrs is the attribute count up to which duplicates are found by
// comparing every pair; above it a hash set keeps the check linear.
const smallAttrs = 16

// checkAttrs rejects two attributes with the same expanded name (after
// namespace translation), as expat does.
func checkAttrs(ctx context.Context, d *xml.Decoder, t *xml.StartElement) error {
	dup := -1
	if len(t.Attr) <= smallAttrs {
		for i := 1; i < len(t.Attr) && dup < 0; i++ {
			for j := 0; j < i; j++ {
				if t.Attr[i].Name == t.Attr[j].Name {
					dup = i
					break
				}
			}
		}
	} else {
		seen := make(map[xml.Name]struct{}, len(t.Attr))
		for i, a := range t.Attr {
			if err := checkCtx(ctx, i); err != nil {
				return err
			}
			if _, ok := seen[a.Name]; ok {
				dup = i
				break
			}
			seen[a.Name] = struct{}{}
		}
	}
	if dup >= 0 {
		return &processing.ParseError{Line: lineOf(d), Field: t.Attr[dup].Name.Local,
			Msg: fmt.Sprintf("duplicate attribute %q on <%s>", t.Attr[dup].Name.Local, t.Name.Local)}
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
	var te *tagTooLargeError
	if errors.As(err, &te) {
		return &processing.ParseError{Line: te.line, Msg: te.Error(), Err: err}
	}
	if errors.Is(err, ErrTokenTooLarge) {
		return &processing.ParseError{Line: lineOf(d), Msg: err.Error(), Err: err}
	}
	return err
}

// charsetReader is only consulted for a declaration prologReader could
// not parse (encoding/xml then reports it as malformed or asks here).
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	dec, err := decoderFor(label, false, false, 1)
	if err != nil {
		return nil, err
	}
	if dec == nil {
		return in, nil
	}
	dec.r, dec.line = in, 1
	return dec, nil
}
