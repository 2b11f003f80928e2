package bus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// within runs f and fails the test when it has not returned after a
// generous deadline (a write that waits for a reader that never comes).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// A write on the client's end of an in-process connection returns without
// waiting for the server to read it, and everything written reaches the
// server, in order, once it reads.
func TestPipeWritesDoNotWaitForTheReader(t *testing.T) {
	client, server := net.Pipe()
	p := newPipeConn(client)
	defer p.Close()
	var want bytes.Buffer
	within(t, "writing while the server does not read", func() {
		for i := range 1000 {
			msg := fmt.Appendf(nil, "PUB subject %d\r\n", i)
			want.Write(msg)
			if n, err := p.Write(msg); err != nil || n != len(msg) {
				t.Errorf("write %d: %d, %v", i, n, err)
				return
			}
		}
	})
	got := make([]byte, want.Len())
	within(t, "reading", func() {
		if _, err := io.ReadFull(server, got); err != nil {
			t.Error(err)
		}
	})
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the server read something else than was written, or out of order")
	}
}

// Closing the client's end lets what was written reach the server first.
func TestPipeCloseDeliversWhatWasWritten(t *testing.T) {
	client, server := net.Pipe()
	p := newPipeConn(client)
	if _, err := p.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	var got []byte
	within(t, "reading until the end", func() {
		var err error
		got, err = io.ReadAll(server)
		if err != nil {
			t.Error(err)
		}
	})
	if string(got) != "PING\r\n" {
		t.Fatalf("the server read %q before the end", got)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write after close: %v, want the closed error", err)
	}
}

// A full buffer makes a write wait for the server, until the write
// deadline; a server that went away fails the writes that follow.
func TestPipeBackPressureAndFailure(t *testing.T) {
	client, server := net.Pipe()
	p := newPipeConn(client)
	defer p.Close()
	big := make([]byte, pipeLimit)
	within(t, "the first large write", func() {
		// Taken by the writer, which then waits for the server.
		if _, err := p.Write(big); err != nil {
			t.Error(err)
		}
		if _, err := p.Write(big); err != nil {
			t.Error(err)
		}
	})
	if err := p.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	within(t, "a write into a full buffer", func() {
		if _, err := p.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write into a full buffer: %v, want the deadline error", err)
		}
	})
	if err := p.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	server.Close()
	within(t, "writing after the server went away", func() {
		for {
			if _, err := p.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}
