// Package faultproxy is a TCP proxy for tests that stands between a Redis
// client and its server and injects faults on command: it drops a
// command's reply (the server runs the command, the client never hears of
// it and its connection is reset), resets a connection instead of
// forwarding a command, and holds commands or replies back for a while. It
// reads the client's RESP requests only enough to pick commands by name.
//
// It listens on loopback, serves until Close, and is for tests only: it
// imports nothing of Convene's.
package faultproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Action is what a fault does to the command it hits.
type Action int

const (
	// DropReply forwards the command, swallows what the server answers
	// and resets the client's connection: the command ran, the client
	// cannot know.
	DropReply Action = iota + 1
	// Reset resets the client's connection instead of forwarding the
	// command: it never ran.
	Reset
	// DelayCommand holds the command back for Delay before forwarding it.
	DelayCommand
	// DelayReply holds the command's reply back for Delay.
	DelayReply
)

func (a Action) String() string {
	switch a {
	case DropReply:
		return "drop-reply"
	case Reset:
		return "reset"
	case DelayCommand:
		return "delay-command"
	case DelayReply:
		return "delay-reply"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Fault is a fault to inject into the commands that pass.
type Fault struct {
	// Command picks commands by name, in any case; "" picks every one.
	Command string
	Action  Action
	// Times is how many commands it hits before it is used up; 0 is one.
	Times int
	// Every makes it hit only every Every-th command it picks; 0 or 1 is
	// each of them.
	Every int
	// Delay is how long DelayCommand and DelayReply hold back.
	Delay time.Duration
}

// Proxy forwards connections to one server and injects faults.
type Proxy struct {
	ln     net.Listener
	target string
	done   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	faults   []*fault
	links    map[*link]struct{}
	hits     map[Action]int
	commands map[string]int
	closed   bool
}

type fault struct {
	Fault
	seen, left int
}

// Start listens on 127.0.0.1 (a port of its own) and forwards each
// connection to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{
		ln: ln, target: target, done: make(chan struct{}),
		links: map[*link]struct{}{}, hits: map[Action]int{}, commands: map[string]int{},
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is host:port to connect to instead of the server.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Inject adds a fault; faults are tried in the order they were added, and
// a command gets at most one.
func (p *Proxy) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	p.mu.Lock()
	p.faults = append(p.faults, &fault{Fault: f, left: f.Times})
	p.mu.Unlock()
}

// Clear removes every fault not yet used up.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.faults = nil
	p.mu.Unlock()
}

// Pending counts the hits the injected faults have still to make.
func (p *Proxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.faults {
		n += f.left
	}
	return n
}

// Hits counts the commands an action has hit so far.
func (p *Proxy) Hits(a Action) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[a]
}

// Commands counts the commands of a name (any case) that reached the
// proxy so far.
func (p *Proxy) Commands(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commands[strings.ToUpper(name)]
}

// ResetAll resets every connection open now.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(true)
	}
}

// Close stops listening, resets every connection and returns when every
// goroutine of the proxy has ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	err := p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{p: p, client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close(true)
			continue
		}
		p.links[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go l.upstream()
		go l.downstream()
	}
}

// pick finds the fault a command gets, if any, and counts the command.
func (p *Proxy) pick(name string) (Action, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.commands[name]++
	for i, f := range p.faults {
		if f.left == 0 || (f.Command != "" && !strings.EqualFold(f.Command, name)) {
			continue
		}
		f.seen++
		if f.Every > 1 && f.seen%f.Every != 0 {
			continue
		}
		f.left--
		if f.left == 0 {
			p.faults = append(p.faults[:i:i], p.faults[i+1:]...)
		}
		p.hits[f.Action]++
		return f.Action, f.Delay
	}
	return 0, 0
}

// wait holds back for d, less if the proxy closes.
func (p *Proxy) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.done:
	}
}

// link is one client connection and its connection to the server.
type link struct {
	p              *Proxy
	client, server net.Conn
	once           sync.Once

	mu    sync.Mutex
	drop  bool          // swallow the next reply and reset
	delay time.Duration // hold the next reply back
}

func (l *link) close(reset bool) {
	l.once.Do(func() {
		if tc, ok := l.client.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0) // a reset, not an orderly close
		}
		_ = l.client.Close()
		_ = l.server.Close()
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	})
}

// upstream forwards the client's commands one by one, applying faults.
func (l *link) upstream() {
	defer l.p.wg.Done()
	r := bufio.NewReaderSize(l.client, 64<<10)
	for {
		raw, name, err := readCommand(r)
		if err != nil {
			l.close(false)
			return
		}
		act, d := l.p.pick(name)
		switch act {
		case Reset:
			l.close(true)
			return
		case DelayCommand:
			l.p.wait(d)
		case DropReply, DelayReply:
			// Set before the command goes, so that its reply finds it.
			l.mu.Lock()
			if act == DropReply {
				l.drop = true
			} else {
				l.delay = d
			}
			l.mu.Unlock()
		}
		if _, err := l.server.Write(raw); err != nil {
			l.close(false)
			return
		}
	}
}

// downstream forwards the server's replies, swallowing or holding back
// those a fault marked.
func (l *link) downstream() {
	defer l.p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := l.server.Read(buf)
		if n > 0 {
			l.mu.Lock()
			drop, delay := l.drop, l.delay
			l.drop, l.delay = false, 0
			l.mu.Unlock()
			if drop {
				l.close(true)
				return
			}
			if delay > 0 {
				l.p.wait(delay)
			}
			if _, werr := l.client.Write(buf[:n]); werr != nil {
				l.close(false)
				return
			}
		}
		if err != nil {
			l.close(false)
			return
		}
	}
}

// readCommand reads one request, RESP array or inline, and returns its
// bytes and its command name in upper case.
func readCommand(r *bufio.Reader) ([]byte, string, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, "", err
	}
	if line[0] != '*' {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			return line, "", nil
		}
		return line, strings.ToUpper(f[0]), nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(line[1:])))
	if err != nil {
		return nil, "", fmt.Errorf("faultproxy: bad request header %q", line)
	}
	raw, name := line, ""
	for i := 0; i < n; i++ {
		hdr, err := r.ReadBytes('\n')
		if err != nil {
			return nil, "", err
		}
		if hdr[0] != '$' {
			return nil, "", errors.New("faultproxy: a request's items must be bulk strings")
		}
		size, err := strconv.Atoi(strings.TrimSpace(string(hdr[1:])))
		if err != nil || size < 0 {
			return nil, "", fmt.Errorf("faultproxy: bad bulk header %q", hdr)
		}
		body := make([]byte, size+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, "", err
		}
		if i == 0 {
			name = strings.ToUpper(string(body[:size]))
		}
		raw = append(append(raw, hdr...), body...)
	}
	return raw, name, nil
}
