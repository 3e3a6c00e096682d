package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// VersityInstall is the command that installs the gateway binary.
const VersityInstall = "GOFLAGS=-buildvcs=false go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// VersityBinary finds the versitygw binary: $VERSITYGW, then PATH, then
// $(go env GOPATH)/bin (and $HOME/go/bin).
func VersityBinary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.SplitList(gp)...)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.SplitList(string(bytes.TrimSpace(out)))...)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "bin", "versitygw")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("versitygw not found in $VERSITYGW, PATH or $(go env GOPATH)/bin")
}

// Gateway is a VersityGW S3 gateway (posix back-end) run as a child
// process for one test: a real S3 server, unlike the in-process gofakes3
// of New. Objects of bucket B live as files under Dir/B.
type Gateway struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string
	// AccessKey and SecretKey are the root credentials (the secret is
	// random per gateway, so tests can grep for it).
	AccessKey, SecretKey string
	// Dir is the posix root: one directory per bucket.
	Dir string

	t    testing.TB
	bin  string
	addr string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
}

// Versity starts a gateway with an empty root directory, creates the
// buckets named, and stops it when the test ends. Without the binary the
// test fails with the install command, or is skipped under -short.
func Versity(t testing.TB, buckets ...string) *Gateway {
	t.Helper()
	bin, err := VersityBinary()
	if err != nil {
		if testing.Short() {
			t.Skipf("needs VersityGW (skipped under -short): %v", err)
		}
		t.Fatalf("needs the VersityGW S3 gateway: %v; install it with\n\t%s\nor point $VERSITYGW at the binary (go test -short skips these tests)", err, VersityInstall)
	}
	var secret [12]byte
	_, _ = rand.Read(secret[:])
	tmp := t.TempDir()
	g := &Gateway{
		AccessKey: "omicstest",
		SecretKey: "vgw-" + hex.EncodeToString(secret[:]),
		Dir:       filepath.Join(tmp, "root"),
		t:         t,
		bin:       bin,
		log:       filepath.Join(tmp, "versitygw.log"),
	}
	if err := os.Mkdir(g.Dir, 0o750); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	// A free port can be taken by someone else before the gateway binds
	// it: try a few.
	for attempt := 0; ; attempt++ {
		g.addr = freeAddr(t)
		g.URL = "http://" + g.addr
		err = g.start()
		if err == nil {
			break
		}
		if attempt == 4 {
			t.Fatalf("versitygw: %v", err)
		}
	}
	ctx := context.Background()
	for _, b := range buckets {
		if err := g.Client().MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("versitygw: create bucket %s: %v", b, err)
		}
	}
	return g
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the gateway and waits until it accepts connections.
func (g *Gateway) start() error {
	logf, err := os.OpenFile(g.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(g.bin, "--port", g.addr, "--access", g.AccessKey, "--secret", g.SecretKey, "--quiet", "posix", g.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The gateway dies with the test binary, even on a crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(2 * time.Minute) // a wedged start, not a speed check
	for {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("not listening on %s after 2 minutes: %s", g.addr, lastLines([]byte(g.Log()), 10))
		}
		select {
		case <-done:
			out, _ := os.ReadFile(g.log)
			return fmt.Errorf("exited before listening on %s (%w): %s", g.addr, waitErr, lastLines(out, 10))
		default:
		}
		c, err := net.DialTimeout("tcp", g.addr, time.Second)
		if err == nil {
			c.Close()
			g.mu.Lock()
			g.cmd, g.done = cmd, done
			g.mu.Unlock()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop terminates the gateway (SIGTERM, then SIGKILL after 10 s) and
// waits for it to exit. Stopping a stopped gateway does nothing.
func (g *Gateway) Stop() { g.halt(syscall.SIGTERM) }

// Kill stops the gateway with SIGKILL, as a crash or an unplugged server
// would: requests in flight are cut off.
func (g *Gateway) Kill() { g.halt(syscall.SIGKILL) }

func (g *Gateway) halt(sig syscall.Signal) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd = nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	timer := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
	<-done
	timer.Stop()
}

// Restart starts a stopped gateway again on the same address and root.
func (g *Gateway) Restart() {
	g.t.Helper()
	if err := g.start(); err != nil {
		g.t.Fatalf("versitygw restart: %v", err)
	}
}

// Client returns a minio-go client with the root credentials.
func (g *Gateway) Client() *minio.Client {
	g.t.Helper()
	c, err := minio.New(g.addr, &minio.Options{
		Creds:        credentials.NewStaticV4(g.AccessKey, g.SecretKey, ""),
		BucketLookup: minio.BucketLookupPath,
		Region:       "us-east-1",
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

// Objects lists the keys of bucket (nil when it does not exist), followed
// by "multipart:<key>" for every incomplete multipart upload, so that a
// test asserting what is left behind sees those too.
func (g *Gateway) Objects(t testing.TB, bucket string) []string {
	t.Helper()
	ctx := context.Background()
	c := g.Client()
	if ok, err := c.BucketExists(ctx, bucket); err != nil {
		t.Fatalf("versitygw: head bucket %s: %v", bucket, err)
	} else if !ok {
		return nil
	}
	var keys []string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("versitygw: list %s: %v", bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return append(keys, g.IncompleteUploads(t, bucket)...)
}

// IncompleteUploads lists "multipart:<key>" for each multipart upload of
// bucket that was started and neither completed nor aborted.
func (g *Gateway) IncompleteUploads(t testing.TB, bucket string) []string {
	t.Helper()
	core := minio.Core{Client: g.Client()}
	var out []string
	keyMarker, idMarker := "", ""
	for {
		res, err := core.ListMultipartUploads(context.Background(), bucket, "", keyMarker, idMarker, "", 1000)
		if err != nil {
			t.Fatalf("versitygw: list multipart uploads of %s: %v", bucket, err)
		}
		for _, u := range res.Uploads {
			out = append(out, "multipart:"+u.Key)
		}
		if !res.IsTruncated {
			break
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	sort.Strings(out)
	return out
}

// Log returns the gateway's output so far (for failure messages).
func (g *Gateway) Log() string {
	out, _ := os.ReadFile(g.log)
	return string(out)
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strconv.Quote(string(bytes.Join(lines, []byte("\n"))))
}
