package textio

import "io"

// BOM is the UTF-8 byte order mark.
const BOM = "\ufeff"

// SkipBOM returns a reader that drops a leading UTF-8 BOM from r. Python's
// "utf-8" codec keeps the BOM as U+FEFF at the start of the first line, so
// only the converters of formats Python does not convert (FASTA, FASTQ,
// MGF) use it: there the BOM is an editor artefact, and detection already
// looks past it.
func SkipBOM(r io.Reader) io.Reader { return &bomReader{r: r} }

type bomReader struct {
	r       io.Reader
	checked bool
	pend    []byte // bytes read while looking for the BOM, to be returned
	err     error
}

func (b *bomReader) Read(p []byte) (int, error) {
	if !b.checked {
		b.checked = true
		var head [len(BOM)]byte
		n, err := io.ReadFull(b.r, head[:])
		switch {
		case n == len(BOM) && string(head[:]) == BOM:
		default:
			b.pend = append([]byte(nil), head[:n]...)
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		b.err = err
	}
	if len(b.pend) > 0 {
		n := copy(p, b.pend)
		b.pend = b.pend[n:]
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.r.Read(p)
}
