// Package sentineltest starts a throw-away Redis Sentinel deployment for
// tests: one master, one replica and three sentinels (quorum 2, short
// down-after and failover timeouts) of Debian's redis-server and
// redis-sentinel on spare loopback ports, in temporary directories, all
// killed at cleanup. The master and the sentinels require passwords (the
// URL's password and sentinel_kwargs' password in kombu's terms).
package sentineltest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/testenv"
)

// Names and passwords of every cluster.
const (
	MasterName       = "omicsmaster"
	MasterPassword   = "m4ster-pw"
	SentinelPassword = "s3ntinel-pw"
)

// Server is one redis-server or redis-sentinel process.
type Server struct {
	Port int
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuf
}

// Addr is 127.0.0.1:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Kill SIGKILLs the process and waits for it.
func (s *Server) Kill() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

// Cluster is the running deployment.
type Cluster struct {
	t         testing.TB
	Redis     []*Server // [0] the first master, [1] its replica
	Sentinels []*Server
}

// Start starts the deployment and waits until the sentinels know the
// replica and each other. It skips with -short and fails without
// redis-sentinel.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server and redis-sentinel; skipped with -short")
	}
	bin := sentinelBinary(t)
	c := &Cluster{t: t}
	ports := freePorts(t, 5)
	for i, role := range []string{"master", "replica"} {
		args := []string{"--port", strconv.Itoa(ports[i]), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--protected-mode", "no", "--requirepass", MasterPassword,
			"--masterauth", MasterPassword, "--loglevel", "warning", "--dir", t.TempDir()}
		if role == "replica" {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
		}
		c.Redis = append(c.Redis, c.start(ports[i], "redis-server", args...))
	}
	for i := range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
loglevel warning
requirepass %s
sentinel sentinel-pass %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel auth-pass %s %s
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 4000
sentinel parallel-syncs %s 1
`, ports[2+i], dir, SentinelPassword, SentinelPassword, MasterName, ports[0],
			MasterName, MasterPassword, MasterName, MasterName, MasterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Sentinels = append(c.Sentinels, c.start(ports[2+i], bin, conf))
	}
	c.waitReady()
	return c
}

func sentinelBinary(t testing.TB) string {
	if p, err := exec.LookPath("redis-sentinel"); err == nil {
		return p
	}
	t.Fatal("redis-sentinel not found; hint: apt-get install redis-sentinel")
	return ""
}

// freePorts picks n spare loopback ports.
func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func (c *Cluster) start(port int, bin string, args ...string) *Server {
	c.t.Helper()
	s := &Server{Port: port, out: &syncBuf{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	c.t.Cleanup(s.Kill)
	pw := MasterPassword
	if strings.Contains(bin, "sentinel") {
		pw = SentinelPassword
	}
	if err := testenv.WaitPing(s.Addr(), pw, s.done, 10*time.Second); err != nil {
		c.t.Fatalf("%s on %d: %v: %s", bin, port, err, s.out.String())
	}
	return s
}

// waitReady waits until every sentinel sees one replica and two other
// sentinels, and the replica's link is up.
func (c *Cluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !c.ready() {
		if time.Now().After(deadline) {
			c.t.Fatal("sentinel deployment not ready after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) ready() bool {
	for _, s := range c.Sentinels {
		m, err := c.sentinelMaster(s)
		if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" || m["flags"] != "master" {
			return false
		}
	}
	return true
}

func (c *Cluster) sentinelMaster(s *Server) (map[string]string, error) {
	conn, err := redigo.Dial("tcp", s.Addr(), redigo.DialPassword(SentinelPassword), redigo.DialConnectTimeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return redigo.StringMap(conn.Do("SENTINEL", "master", MasterName))
}

// URL is the kombu/celery URL of the deployment for database db, with
// the master password: sentinel://:pw@s1/db;sentinel://s2/db;...
func (c *Cluster) URL(db int) string {
	parts := make([]string, len(c.Sentinels))
	for i, s := range c.Sentinels {
		auth := ""
		if i == 0 {
			auth = ":" + MasterPassword + "@"
		}
		parts[i] = fmt.Sprintf("sentinel://%s%s/%d", auth, s.Addr(), db)
	}
	return strings.Join(parts, ";")
}

// TransportOptions is the JSON transport options of the deployment.
func (c *Cluster) TransportOptions() string {
	return fmt.Sprintf(`{"master_name": %q, "sentinel_kwargs": {"password": %q}}`, MasterName, SentinelPassword)
}

// MasterAddr is the master address the first sentinel that answers gives.
func (c *Cluster) MasterAddr() string {
	c.t.Helper()
	for _, s := range c.Sentinels {
		conn, err := redigo.Dial("tcp", s.Addr(), redigo.DialPassword(SentinelPassword), redigo.DialConnectTimeout(time.Second))
		if err != nil {
			continue
		}
		r, err := redigo.Strings(conn.Do("SENTINEL", "get-master-addr-by-name", MasterName))
		conn.Close()
		if err == nil && len(r) == 2 {
			return net.JoinHostPort(r[0], r[1])
		}
	}
	c.t.Fatal("no sentinel answered")
	return ""
}

// Master is the Server currently master according to the sentinels.
func (c *Cluster) Master() *Server {
	c.t.Helper()
	a := c.MasterAddr()
	for _, s := range c.Redis {
		if s.Addr() == a {
			return s
		}
	}
	c.t.Fatalf("master %s is none of ours", a)
	return nil
}

// Conn opens a connection (db selected) to the Redis server s.
func (c *Cluster) Conn(s *Server, db int) redigo.Conn {
	c.t.Helper()
	conn, err := redigo.Dial("tcp", s.Addr(), redigo.DialPassword(MasterPassword), redigo.DialDatabase(db))
	if err != nil {
		c.t.Fatal(err)
	}
	return conn
}

// WaitSwitch waits until the sentinels name a master other than old and
// that server answers ROLE master; it returns the new master.
func (c *Cluster) WaitSwitch(old *Server, timeout time.Duration) *Server {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if a := c.MasterAddr(); a != old.Addr() {
			for _, s := range c.Redis {
				if s.Addr() != a {
					continue
				}
				conn := c.Conn(s, 0)
				role, err := redigo.Values(conn.Do("ROLE"))
				conn.Close()
				if err == nil && len(role) > 0 && string(role[0].([]byte)) == "master" {
					return s
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no failover away from %s within %s", old.Addr(), timeout)
	return nil
}

// Failover asks a sentinel for a manual failover (the old master is
// demoted, not killed) and waits for it.
func (c *Cluster) Failover(timeout time.Duration) (old, now *Server) {
	c.t.Helper()
	old = c.Master()
	conn, err := redigo.Dial("tcp", c.Sentinels[0].Addr(), redigo.DialPassword(SentinelPassword))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Do("SENTINEL", "failover", MasterName); err != nil {
		c.t.Fatal(err)
	}
	return old, c.WaitSwitch(old, timeout)
}

// Logs returns the output of every process (for failure messages).
func (c *Cluster) Logs() string {
	var b strings.Builder
	for i, s := range append(append([]*Server(nil), c.Redis...), c.Sentinels...) {
		fmt.Fprintf(&b, "--- process %d (port %d)\n%s", i, s.Port, s.out.String())
	}
	return b.String()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
