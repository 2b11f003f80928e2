package host

import (
	"context"
	"fmt"
	"sync"
)

// Message is what servers pass each other over a channel (seed 004: every
// message between servers is wrapped in one). Type names it, as bus
// messages are named; Body is the payload, opaque to the channel.
type Message struct {
	Type string `json:"type"`
	Body []byte `json:"body,omitempty"`
}

// Channel joins servers: senders put messages in, receivers take them out
// in order. It is local (an in-process bounded queue) or distributed (a
// bus subject with a queue group, so that the receivers of every host
// running the same stage share its load), as the host file says; a stage
// never knows which it has. Both hold a bounded number of messages: Send
// waits while the channel is full (back-pressure) until ctx ends.
//
// A server gets its endpoint of a channel from Context.Channel; the
// endpoint closes when the server's instance stops (ErrClosed), and what
// the channel holds waits for the next instance, or, distributed, is
// handed to another host's receivers.
type Channel interface {
	Send(ctx context.Context, m Message) error
	Receive(ctx context.Context) (Message, error)
}

// hub is one channel of a host; every instance's endpoint shares it.
type hub interface {
	send(ctx context.Context, done <-chan struct{}, m Message) error
	receive(ctx context.Context, done <-chan struct{}) (Message, error)
	// attach and detach count the endpoints receiving: a distributed
	// channel listens on the bus only while one does.
	attach() error
	detach()
	close()
	status() ChannelStatus
}

// endpoint is one instance's handle on a channel.
type endpoint struct {
	hub  hub
	done chan struct{}

	mu       sync.Mutex
	attached bool
	closed   bool
}

func newEndpoint(h hub) *endpoint { return &endpoint{hub: h, done: make(chan struct{})} }

func (e *endpoint) Send(ctx context.Context, m Message) error {
	select {
	case <-e.done:
		return ErrClosed
	default:
	}
	return e.hub.send(ctx, e.done, m)
}

func (e *endpoint) Receive(ctx context.Context) (Message, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Message{}, ErrClosed
	}
	if !e.attached {
		if err := e.hub.attach(); err != nil {
			e.mu.Unlock()
			return Message{}, err
		}
		e.attached = true
	}
	e.mu.Unlock()
	return e.hub.receive(ctx, e.done)
}

// close ends the endpoint: its calls return ErrClosed.
func (e *endpoint) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.closed = true
	close(e.done)
	if e.attached {
		e.hub.detach()
	}
}

// localHub is an in-process bounded queue.
type localHub struct {
	name      string
	q         chan Message
	mu        sync.Mutex
	receivers int
}

func newLocalHub(name string, capacity int) *localHub {
	return &localHub{name: name, q: make(chan Message, capacity)}
}

func (l *localHub) send(ctx context.Context, done <-chan struct{}, m Message) error {
	select {
	case l.q <- m:
		return nil
	default:
	}
	select {
	case l.q <- m:
		return nil
	case <-done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("host: channel %s is full: %w", l.name, ctx.Err())
	}
}

func (l *localHub) receive(ctx context.Context, done <-chan struct{}) (Message, error) {
	select {
	case <-done: // a closed endpoint takes nothing more
		return Message{}, ErrClosed
	default:
	}
	select {
	case m := <-l.q:
		return m, nil
	case <-done:
		return Message{}, ErrClosed
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

func (l *localHub) attach() error {
	l.mu.Lock()
	l.receivers++
	l.mu.Unlock()
	return nil
}

func (l *localHub) detach() {
	l.mu.Lock()
	l.receivers--
	l.mu.Unlock()
}

func (l *localHub) close() {}

func (l *localHub) status() ChannelStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ChannelStatus{Name: l.name, Deployment: Local, Capacity: cap(l.q), Queued: len(l.q), Receivers: l.receivers}
}
