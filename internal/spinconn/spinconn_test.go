package spinconn

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// spinPair returns a client connection made by spinDialer (spin) and the
// server side of it.
func spinPair(t *testing.T, spin time.Duration) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	dial := Dialer(time.Second, spin)
	c, err := dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// TestSpinConn: reads through a polling connection behave as plain reads —
// data already there, data arriving after the polling gave up (the
// goroutine parks and is woken), short buffers, the peer's close (EOF),
// a read deadline (timeout error) and a local Close (error) — with
// polling off, short and longer than the waits.
func TestSpinConn(t *testing.T) {
	for _, spin := range []time.Duration{0, 100 * time.Microsecond, 20 * time.Millisecond} {
		t.Run(spin.String(), func(t *testing.T) {
			c, s := spinPair(t, spin)
			if _, ok := c.(*Conn); ok != (spin > 0) {
				t.Fatalf("spinconn.Conn = %v with spin %v", ok, spin)
			}
			buf := make([]byte, 4)
			// Already there; a short buffer reads it in pieces.
			if _, err := s.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
			if n, err := io.ReadFull(c, buf); err != nil || string(buf[:n]) != "hell" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "o" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			// Arriving later than any polling: the read parks, then
			// gets it.
			go func() {
				time.Sleep(50 * time.Millisecond)
				_, _ = s.Write([]byte("late"))
			}()
			if n, err := io.ReadFull(c, buf); err != nil || string(buf[:n]) != "late" {
				t.Fatalf("late read %q, %v", buf[:n], err)
			}
			// A read deadline ends a read that gets nothing.
			if err := c.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			_, err := c.Read(buf)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past the deadline: %v", err)
			}
			if err := c.SetReadDeadline(time.Time{}); err != nil {
				t.Fatal(err)
			}
			// The peer closes: EOF.
			s.Close()
			if n, err := c.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("read after the peer's close: %d, %v", n, err)
			}
		})
	}
}

// TestSpinConnClose: closing the connection ends a read in progress with
// an error.
func TestSpinConnClose(t *testing.T) {
	c, _ := spinPair(t, time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed connection: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read not ended by Close")
	}
}
