package redistransport

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// replySpin is how long the group-commit writer's connection polls its
// socket for a reply before parking the reading goroutine in the
// netpoller.
//
// A reply to a result batch comes back within ~20–150 µs. Parking and
// being woken for it costs more than that on a virtual machine: the read
// fails with EAGAIN, the goroutine parks, the thread sleeps in
// epoll_wait/futex, Redis's write has to wake it (an inter-processor
// interrupt, a VM exit) and the Go scheduler hands it back. Measured on
// the 2-vCPU box of docs/bench.md: a PING round trip takes 62 µs and 30 µs
// of client CPU parked, 18 µs and 16 µs of CPU polling. Polling is bounded
// by replySpin per read, after which the goroutine parks as usual, so an
// idle connection costs nothing.
const replySpin = 100 * time.Microsecond

// spinDialer returns a redis dial function whose connections poll for
// readable data for up to spin before parking (spinConn).
func spinDialer(timeout, spin time.Duration) redis.DialOption {
	return redis.DialContextFunc(spinDialerFunc(timeout, spin))
}

// spinDialerFunc dials a connection that polls for up to spin (plain when
// spin <= 0).
func spinDialerFunc(timeout, spin time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sc, ok := c.(syscall.Conn)
		if !ok || spin <= 0 {
			return c, nil
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return c, nil
		}
		return &spinConn{Conn: c, raw: raw, spin: spin}, nil
	}
}

// spinConn is a net.Conn whose Read polls the socket (non-blocking read
// calls) for up to spin before waiting for it in the netpoller. Deadlines
// and Close are the underlying connection's.
type spinConn struct {
	net.Conn
	raw  syscall.RawConn
	spin time.Duration
}

func (s *spinConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var (
		n     int
		rerr  error
		until time.Time
	)
	err := s.raw.Read(func(fd uintptr) bool {
		for i := 0; ; i++ {
			n, rerr = syscall.Read(int(fd), b)
			switch {
			case rerr == syscall.EINTR:
				continue
			case rerr != syscall.EAGAIN:
				return true // data, EOF or an error
			}
			if i&15 != 0 {
				continue
			}
			now := time.Now()
			if until.IsZero() {
				until = now.Add(s.spin)
			} else if now.After(until) {
				return false // park until readable (or the deadline)
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		n = 0
		return 0, &net.OpError{Op: "read", Net: s.LocalAddr().Network(), Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
