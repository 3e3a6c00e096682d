// Package spinconn polls a socket briefly before parking a read.
//
// A reply that comes back within tens of microseconds (a Redis script
// result) costs more to wait for parked than polled on a virtual machine: the read fails with EAGAIN, the
// goroutine parks, the thread sleeps in epoll_wait/futex, the peer's
// write has to wake it (an inter-processor interrupt, a VM exit) and the
// scheduler hands it back. Measured on the 2-vCPU box of docs/bench.md: a
// Redis PING round trip takes 62 µs and 30 µs of client CPU parked, 18 µs
// and 16 µs polled. Polling is bounded per read; after it the goroutine
// parks as usual, so an idle connection costs at most one spin. Where the
// peer is slower to answer it does not pay: on the AMQP connection
// (RabbitMQ's deliveries after an ack) a 100 µs spin cost 15–25 % more
// worker CPU and 5–10 % of throughput, so only the Redis result writer
// uses it.
package spinconn

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Wrap returns c polling for up to spin on each read when c has a file
// descriptor and spin > 0, else c itself.
func Wrap(c net.Conn, spin time.Duration) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok || spin <= 0 {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{Conn: c, raw: raw, spin: spin}
}

// Dialer returns a dial function whose connections poll for readable data
// for up to spin before parking (Conn); spin <= 0 dials plain connections.
func Dialer(timeout, spin time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Wrap(c, spin), nil
	}
}

// Conn is a net.Conn whose Read polls the socket (non-blocking read
// calls) for up to spin before waiting for it in the netpoller. Deadlines
// and Close are the underlying connection's.
type Conn struct {
	net.Conn
	raw  syscall.RawConn
	spin time.Duration
}

// Read reads like the underlying connection, polling first.
func (s *Conn) Read(b []byte) (int, error) {
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
