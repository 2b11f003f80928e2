package bus

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// An in-process connection to the embedded server is a synchronous pipe:
// a write returns only once the server has read it. The NATS client writes
// while it holds its connection's lock, so every goroutine that publishes
// on that connection (each create in flight, for the scheduler) waits
// until the server's reader for that connection gets the CPU and reads;
// on a busy machine that wait, not the work, is most of a request's time.
// pipeConn gives the client's side a buffer instead: a write copies into
// it and returns, and a goroutine of its own hands the buffer to the
// server, in order. Reads go straight to the pipe.

// pipeLimit is how much a connection buffers before a write waits for the
// server to read: past it, the server is not keeping up and waiting is
// the back-pressure the pipe applied before.
const pipeLimit = 4 << 20

// pipeDrain bounds how long Close waits for what is buffered to reach a
// server that does not read.
const pipeDrain = 2 * time.Second

// inProcess connects to an embedded server through a buffered pipe.
type inProcess struct{ srv *server.Server }

// InProcessConn is nats.InProcessConnProvider's.
func (p inProcess) InProcessConn() (net.Conn, error) {
	c, err := p.srv.InProcessConn()
	if err != nil {
		return nil, err
	}
	return newPipeConn(c), nil
}

// pipeConn is the client's end of an in-process connection, with writes
// buffered (see above).
type pipeConn struct {
	net.Conn // the pipe: reads, addresses, read deadlines

	kick    chan struct{} // there is something to write
	room    chan struct{} // the writer took the buffer: room again
	done    chan struct{} // closed by Close
	drained chan struct{} // closed when the writer ends

	mu       sync.Mutex
	buf      []byte    // written, not yet handed to the server
	spare    []byte    // the other buffer, while the writer is not using it
	err      error     // why writes fail: the pipe's error, or closed
	deadline time.Time // for writes that wait for room
	once     sync.Once
}

func newPipeConn(c net.Conn) *pipeConn {
	p := &pipeConn{
		Conn: c,
		kick: make(chan struct{}, 1), room: make(chan struct{}, 1),
		done: make(chan struct{}), drained: make(chan struct{}),
	}
	go p.writer()
	return p
}

// Write copies b into the buffer. It waits only when the buffer is full,
// until the write deadline.
func (p *pipeConn) Write(b []byte) (int, error) {
	p.mu.Lock()
	for p.err == nil && len(p.buf) > 0 && len(p.buf)+len(b) > pipeLimit {
		deadline := p.deadline
		p.mu.Unlock()
		if err := p.waitRoom(deadline); err != nil {
			return 0, err
		}
		p.mu.Lock()
	}
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		return 0, err
	}
	p.buf = append(p.buf, b...)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return len(b), nil
}

// waitRoom waits until the writer takes the buffer or ends, the
// connection closes, or the deadline passes.
func (p *pipeConn) waitRoom(deadline time.Time) error {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-p.room:
		return nil
	case <-p.drained: // the pipe failed: the caller finds out why
		return nil
	case <-p.done:
		return net.ErrClosed
	case <-expired:
		return os.ErrDeadlineExceeded
	}
}

// writer hands what is buffered to the server, one buffer at a time,
// until the pipe fails or the connection closes and is drained.
func (p *pipeConn) writer() {
	defer close(p.drained)
	for {
		select {
		case <-p.kick:
		case <-p.done:
			// Close: what was written before it still goes.
			p.flush()
			return
		}
		if !p.flush() {
			return
		}
	}
}

// flush writes what is buffered; false when the pipe failed.
func (p *pipeConn) flush() bool {
	for {
		p.mu.Lock()
		failed := p.err != nil && p.err != net.ErrClosed
		if len(p.buf) == 0 || failed {
			p.mu.Unlock()
			return !failed
		}
		data := p.buf
		p.buf, p.spare = p.spare[:0], nil
		p.mu.Unlock()
		select {
		case p.room <- struct{}{}:
		default:
		}
		_, err := p.Conn.Write(data)
		p.mu.Lock()
		if cap(data) <= pipeLimit {
			p.spare = data[:0]
		}
		if err != nil {
			p.err = err
			p.mu.Unlock()
			_ = p.Conn.Close() // the reader sees the end and the client reconnects
			return false
		}
		p.mu.Unlock()
	}
}

// Close lets what was written reach the server (for at most pipeDrain,
// should the server not read), then closes the pipe.
func (p *pipeConn) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		if p.err == nil {
			p.err = net.ErrClosed
		}
		p.mu.Unlock()
		close(p.done)
	})
	t := time.NewTimer(pipeDrain)
	defer t.Stop()
	select {
	case <-p.drained:
	case <-t.C:
	}
	return p.Conn.Close()
}

// SetDeadline sets the read deadline of the pipe and the deadline of
// writes that wait for room.
func (p *pipeConn) SetDeadline(t time.Time) error {
	p.SetWriteDeadline(t)
	return p.Conn.SetReadDeadline(t)
}

// SetWriteDeadline bounds the wait of a write for room in the buffer.
func (p *pipeConn) SetWriteDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
	return nil
}
