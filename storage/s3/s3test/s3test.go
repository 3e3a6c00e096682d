// Package s3test provides S3 servers for the tests of the packages that
// store objects through storage/s3. Only test code imports it.
//
//   - Versity starts a real S3 gateway, VersityGW (posix back-end), as a
//     child process: the S3 behaviour of the store and of the file task is
//     tested against it. It can be stopped, killed and restarted.
//   - New starts an in-process gofakes3 server (in-memory backend), kept
//     only for tests that inject faults an external server cannot (a
//     handler wrapped around it). gofakes3 stores multipart part bodies
//     verbatim; DecodeChunkedParts works around it.
package s3test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// New starts a server that is closed when the test ends.
func New(t testing.TB) (*httptest.Server, *s3mem.Backend) {
	t.Helper()
	backend := s3mem.New()
	ts := httptest.NewServer(DecodeChunkedParts(gofakes3.New(backend).Server()))
	t.Cleanup(ts.Close)
	return ts, backend
}

// DecodeChunkedParts works around gofakes3 v1.2.0, which decodes the
// aws-chunked body of minio-go's streaming V4 signature (used over plain
// http) for PutObject but stores it verbatim for UploadPart, corrupting
// every multipart upload. Real S3 and MinIO decode both.
func DecodeChunkedParts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Query().Get("partNumber") == "" ||
			r.Header.Get("X-Amz-Content-Sha256") != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" {
			next.ServeHTTP(w, r)
			return
		}
		var body bytes.Buffer
		br := bufio.NewReader(r.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				http.Error(w, "bad chunk header", http.StatusBadRequest)
				return
			}
			sizeHex, _, _ := strings.Cut(strings.TrimSpace(line), ";")
			n, err := strconv.ParseInt(sizeHex, 16, 64)
			if err != nil {
				http.Error(w, "bad chunk size", http.StatusBadRequest)
				return
			}
			if n == 0 {
				break
			}
			if _, err := io.CopyN(&body, br, n); err != nil {
				http.Error(w, "short chunk", http.StatusBadRequest)
				return
			}
			if _, err := br.Discard(2); err != nil { // CRLF after the data
				http.Error(w, "bad chunk end", http.StatusBadRequest)
				return
			}
		}
		r.Body = io.NopCloser(&body)
		r.ContentLength = int64(body.Len())
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		next.ServeHTTP(w, r)
	})
}
