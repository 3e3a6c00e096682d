package tasks

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/omicsomics/omics-worker/storage"
)

// The streamed upload (issue 13 #3): for inputs of at least streamMinInput
// bytes the converter writes the document straight into
// storage.UploadEncrypted through a pipe, so that the conversion (one
// core) and the encryption, SHA-256 and store write (the other core) run
// at the same time and no temporary document is written and read back.
//
// A partial document never becomes an object: every way the run can end
// before the document is complete and authenticated closes the pipe with
// errStreamAborted, so the store's Put sees a read error, never a clean
// EOF (storage/local then removes its temporary file without renaming it;
// storage/s3 aborts the multipart upload; the envelope's tag is written
// only at a clean end), and UploadEncrypted deletes what was written.

// streamMinInput is the plaintext input size from which the document is
// streamed into the upload. Below it the document is built in memory
// (spillDoc, up to spillMemory) and uploaded afterwards: no goroutines,
// no pipe, and no pending record for a file that turns out not to
// convert. From 1 MiB of input the document (the input's bytes plus the
// JSON structure: 1.3 to 5 times the input for the text formats) no
// longer fits in spillMemory, so the sequential path would write and
// read back a temporary file, which the stream saves; and the conversion
// takes long enough (about 10 ms per MiB) that the overlap pays for the
// goroutines and the pending record written before it.
const streamMinInput = 1 << 20

// Buffers between the converter and the upload: the converter fills one
// while up to streamDepth wait for (or are in) the upload.
const (
	streamChunk = 256 << 10
	streamDepth = 4
)

// errStreamAborted is what the store's Put reads when the run gives up a
// streamed upload. It must not be io.EOF or io.ErrUnexpectedEOF: minio-go
// takes io.ErrUnexpectedEOF as the end of the last part.
var errStreamAborted = errors.New("tasks: the processed document was abandoned before its end")

// uploadStopped is the error of the converter's writes once the upload
// ended by itself (the store failed): the converter's error is then a
// consequence, and the upload's error the one to report.
type uploadStopped struct{ err error }

func (e *uploadStopped) Error() string {
	return "the upload of the processed document stopped: " + e.err.Error()
}
func (e *uploadStopped) Unwrap() error { return e.err }

// stoppedByUpload reports whether err comes from writing into an upload
// that had already failed.
func stoppedByUpload(err error) bool {
	var us *uploadStopped
	return errors.As(err, &us)
}

// streamedUpload is a document being uploaded while it is written.
type streamedUpload struct {
	aw    *aheadWriter
	pw    *io.PipeWriter
	done  chan struct{}
	ended bool
	res   storage.Uploaded
	err   error // UploadEncrypted's error
}

// startUpload starts the upload of the document written to the returned
// streamedUpload to objKey (its pending record must exist).
func startUpload(ctx context.Context, objects storage.ObjectStore, key []byte, objKey string) *streamedUpload {
	pr, pw := io.Pipe()
	u := &streamedUpload{pw: pw, done: make(chan struct{})}
	u.aw = newAheadWriter(pw, streamChunk, streamDepth)
	go func() {
		defer close(u.done)
		u.res, u.err = storage.UploadEncrypted(ctx, objects, key, objKey, pr, -1, "application/json")
		if u.err != nil {
			pr.CloseWithError(&uploadStopped{u.err})
		}
	}()
	return u
}

// Write writes document bytes.
func (u *streamedUpload) Write(p []byte) (int, error) { return u.aw.Write(p) }

// finish ends the document cleanly and waits for the upload. Call it only
// once the document is complete and the input authenticated.
func (u *streamedUpload) finish() (storage.Uploaded, error) {
	if u.ended {
		return storage.Uploaded{}, errors.New("tasks: upload already ended")
	}
	u.ended = true
	if err := u.aw.Close(); err != nil {
		u.pw.CloseWithError(errStreamAborted)
		<-u.done
		if u.err != nil {
			return storage.Uploaded{}, u.err
		}
		return storage.Uploaded{}, err
	}
	u.pw.Close()
	<-u.done
	return u.res, u.err
}

// abort gives the upload up and waits for it to end (UploadEncrypted has
// then deleted what was written). It returns the upload's error (nil
// after finish succeeded). Idempotent.
func (u *streamedUpload) abort() error {
	if !u.ended {
		u.ended = true
		u.pw.CloseWithError(errStreamAborted)
		_ = u.aw.Close()
		<-u.done
	}
	return u.err
}

// aheadWriter buffers writes in chunks that its own goroutine writes to w,
// so the writer fills the next chunk while earlier ones are written. (An
// io.Pipe returns from Write only once the reader consumed all of it:
// through a plain bufio.Writer the converter would wait for the
// encryption, hashing and storing of every buffer.) At most depth chunks
// wait, plus the one being filled: memory is (depth+1) × size.
type aheadWriter struct {
	w    io.Writer
	size int
	buf  []byte // the chunk being filled (nil: none yet)
	made int    // chunks allocated
	max  int
	full chan []byte // to the goroutine
	free chan []byte // back from it
	done chan struct{}
	shut bool
	mu   sync.Mutex
	err  error // w's first error (under mu)
}

func newAheadWriter(w io.Writer, size, depth int) *aheadWriter {
	a := &aheadWriter{w: w, size: size, max: depth + 1,
		full: make(chan []byte, depth), free: make(chan []byte, depth+1), done: make(chan struct{})}
	go a.loop()
	return a
}

func (a *aheadWriter) loop() {
	defer close(a.done)
	for b := range a.full {
		if _, err := a.w.Write(b); err != nil {
			a.mu.Lock()
			a.err = err
			a.mu.Unlock()
			return
		}
		a.free <- b
	}
}

func (a *aheadWriter) failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// chunk returns an empty chunk: a recycled one, a new one while fewer than
// max exist, else the next one the goroutine hands back.
func (a *aheadWriter) chunk() ([]byte, error) {
	select {
	case b := <-a.free:
		return b[:0], nil
	default:
	}
	if a.made < a.max {
		a.made++
		return make([]byte, 0, a.size), nil
	}
	select {
	case b := <-a.free:
		return b[:0], nil
	case <-a.done:
		return nil, a.failure()
	}
}

// send queues the chunk being filled.
func (a *aheadWriter) send() error {
	select {
	case a.full <- a.buf:
		a.buf = nil
		return nil
	case <-a.done:
		return a.failure()
	}
}

func (a *aheadWriter) Write(p []byte) (int, error) {
	if a.shut {
		return 0, errors.New("tasks: write after close")
	}
	n := 0
	for len(p) > 0 {
		if err := a.failure(); err != nil {
			return n, err
		}
		if a.buf == nil {
			b, err := a.chunk()
			if err != nil {
				return n, err
			}
			a.buf = b
		}
		c := copy(a.buf[len(a.buf):cap(a.buf)], p)
		a.buf = a.buf[:len(a.buf)+c]
		p = p[c:]
		n += c
		if len(a.buf) == cap(a.buf) {
			if err := a.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Close writes what is buffered, stops the goroutine and returns w's first
// error.
func (a *aheadWriter) Close() error {
	if a.shut {
		<-a.done
		return a.failure()
	}
	a.shut = true
	if len(a.buf) > 0 && a.failure() == nil {
		_ = a.send()
	}
	close(a.full)
	<-a.done
	return a.failure()
}
