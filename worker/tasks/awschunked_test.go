package tasks

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// decodeAWSChunked wraps an S3 test server: gofakes3 (v1.2.0) decodes the
// aws-chunked body of SigV4 streaming uploads ("STREAMING-AWS4-HMAC-
// SHA256-PAYLOAD", what minio-go sends over plain HTTP) for PutObject but
// not for UploadPart, so multipart uploads (objects above the 16 MiB part
// size) would be stored with the chunk framing inside. Real S3/MinIO
// decode it; this middleware does it for every request so that large
// objects round-trip in tests. Signatures are not checked (gofakes3 does
// not either).
func decodeAWSChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") || r.URL.Query().Get("partNumber") == "" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := readAWSChunked(bufio.NewReader(r.Body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		r.Header.Del("X-Amz-Decoded-Content-Length")
		next.ServeHTTP(w, r)
	})
}

// readAWSChunked decodes "<hex size>;chunk-signature=<sig>\r\n<data>\r\n"
// frames up to the final zero-size frame.
func readAWSChunked(br *bufio.Reader) ([]byte, error) {
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("aws-chunked header: %w", err)
		}
		sizeHex, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		n, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("aws-chunked size %q: %w", sizeHex, err)
		}
		if n == 0 {
			return out.Bytes(), nil
		}
		if _, err := io.CopyN(&out, br, n); err != nil {
			return nil, fmt.Errorf("aws-chunked data: %w", err)
		}
		if _, err := br.Discard(2); err != nil {
			return nil, fmt.Errorf("aws-chunked trailer: %w", err)
		}
	}
}
