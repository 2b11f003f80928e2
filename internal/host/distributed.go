package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Transport is what the host needs of a bus: publish bytes on a subject,
// subscribe (in a queue group, or alone when queue is ""), and send a
// request that one subscriber answers. Payloads are JSON documents.
// internal/bus satisfies it through BusTransport.
type Transport interface {
	Publish(subject string, data []byte) error
	Subscribe(subject, queue string, h func(Delivery)) (Unsubscriber, error)
	// Request returns ErrNoResponders (wrapped) when nobody listens.
	Request(ctx context.Context, subject string, data []byte) ([]byte, error)
}

// Delivery is a received message; Respond answers it when it is a request.
type Delivery struct {
	Subject string
	Data    []byte
	Respond func(data []byte) error
}

// Unsubscriber ends a subscription (bus.Subscription is one). One that
// also has Drain() error is drained when a distributed channel's last
// receiver leaves, so that no message on its way is dropped.
type Unsubscriber interface {
	Unsubscribe() error
}

// TransportProvider is a resource that opens a Transport for the host:
// one connection named name. If the Transport has a Close method, the
// host calls it when it stops.
type TransportProvider interface {
	Transport(name string) (Transport, error)
}

// transportOf gets a Transport from a resource.
func transportOf(v any, name string) (Transport, error) {
	switch t := v.(type) {
	case Transport:
		return t, nil
	case TransportProvider:
		return t.Transport(name)
	}
	return nil, fmt.Errorf("the resource (%T) carries no messages: name a bus resource (convene.bus.nats)", v)
}

// Message types of a distributed channel: the message itself, and the
// receiver's answer (taken, or refused because its queue is full).
const (
	typeChannelAck  = "HOST_CHANNEL_ACK"
	typeChannelBusy = "HOST_CHANNEL_BUSY"
)

// Send retries a refused message after a pause that doubles up to this.
const maxSendPause = 50 * time.Millisecond

// handBackTimeout bounds each try to hand a held message to another host.
const handBackTimeout = time.Second

// distHub is a distributed channel: senders send each message as a
// request on the subject; one receiver of the queue group takes it into
// its host's bounded queue and answers ACK, or answers BUSY when that
// queue is full, and the sender tries again (maybe reaching another
// host). A message is acknowledged only once it is queued, so a sender
// that sends one message after another keeps their order, and a full
// stage slows its senders down instead of losing messages.
type distHub struct {
	name, subject, queue string
	t                    Transport
	log                  *slog.Logger
	buf                  chan Message

	mu        sync.Mutex
	receivers int
	sub       Unsubscriber
	accepting bool
	refused   int // messages refused for a full queue, for tests and status
}

func newDistHub(name, subject, queue string, capacity int, t Transport, log *slog.Logger) *distHub {
	return &distHub{name: name, subject: subject, queue: queue, t: t, log: log, buf: make(chan Message, capacity)}
}

func (d *distHub) send(ctx context.Context, done <-chan struct{}, m Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("host: channel %s: encode: %w", d.name, err)
	}
	pause := time.Millisecond
	for {
		reply, err := d.t.Request(ctx, d.subject, data)
		switch {
		case err == nil && replyType(reply) == typeChannelAck:
			return nil
		case err == nil && replyType(reply) == typeChannelBusy, errors.Is(err, ErrNoResponders):
		case ctx.Err() != nil:
			return fmt.Errorf("%w: channel %s: %w", ErrBusy, d.name, ctx.Err())
		case err == nil:
			return fmt.Errorf("host: channel %s: unexpected reply %q", d.name, replyType(reply))
		default:
			return fmt.Errorf("host: channel %s: %w", d.name, err)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return ErrClosed
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: channel %s (subject %s) is full or has no receiver: %w", ErrBusy, d.name, d.subject, ctx.Err())
		}
		pause = min(2*pause, maxSendPause)
	}
}

func replyType(data []byte) string {
	var r struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &r)
	return r.Type
}

var (
	ackReply  = []byte(`{"type":"` + typeChannelAck + `"}`)
	busyReply = []byte(`{"type":"` + typeChannelBusy + `"}`)
)

// deliver takes one message from the bus into the host's queue.
func (d *distHub) deliver(dl Delivery) {
	var m Message
	if err := json.Unmarshal(dl.Data, &m); err != nil {
		d.log.Warn("channel: message that cannot be read dropped", "channel", d.name, "err", err)
		_ = dl.Respond(ackReply) // never worth a retry
		return
	}
	d.mu.Lock()
	ok := false
	if d.accepting {
		select {
		case d.buf <- m:
			ok = true
		default:
			d.refused++
		}
	}
	d.mu.Unlock()
	if ok {
		_ = dl.Respond(ackReply)
		return
	}
	_ = dl.Respond(busyReply)
}

func (d *distHub) receive(ctx context.Context, done <-chan struct{}) (Message, error) {
	select {
	case <-done:
		return Message{}, ErrClosed
	default:
	}
	select {
	case m := <-d.buf:
		return m, nil
	case <-done:
		return Message{}, ErrClosed
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

func (d *distHub) attach() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.receivers == 0 {
		sub, err := d.t.Subscribe(d.subject, d.queue, d.deliver)
		if err != nil {
			return fmt.Errorf("host: channel %s: subscribe %s: %w", d.name, d.subject, err)
		}
		d.sub, d.accepting = sub, true
	}
	d.receivers++
	return nil
}

// detach: when the last receiver goes, the host stops listening and hands
// what it holds to the other hosts' receivers, in order, until one
// refuses; the rest waits here for a receiver to come back.
func (d *distHub) detach() {
	d.mu.Lock()
	d.receivers--
	if d.receivers > 0 {
		d.mu.Unlock()
		return
	}
	sub := d.sub
	d.sub, d.accepting = nil, false
	d.mu.Unlock()
	if sub != nil {
		// Drain, where the transport can: a message the server sent
		// before it heard of the leave still gets its BUSY answer and
		// goes to another host, instead of waiting for a timeout.
		if dr, ok := sub.(interface{ Drain() error }); ok {
			_ = dr.Drain()
		} else {
			_ = sub.Unsubscribe()
		}
	}
	d.handBack()
}

func (d *distHub) handBack() {
	var held []Message
	for len(d.buf) > 0 {
		held = append(held, <-d.buf)
	}
	for i, m := range held {
		data, _ := json.Marshal(m)
		ctx, cancel := context.WithTimeout(context.Background(), handBackTimeout)
		reply, err := d.t.Request(ctx, d.subject, data)
		cancel()
		if err != nil || replyType(reply) != typeChannelAck {
			for _, k := range held[i:] {
				select {
				case d.buf <- k:
				default:
					d.log.Warn("channel: a held message found no room and is dropped", "channel", d.name, "type", k.Type)
				}
			}
			return
		}
	}
}

// close drops what nobody took, saying so.
func (d *distHub) close() {
	if n := len(d.buf); n > 0 {
		d.log.Warn("channel: messages no host took are dropped", "channel", d.name, "count", n)
	}
}

func (d *distHub) status() ChannelStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return ChannelStatus{Name: d.name, Deployment: Distributed, Subject: d.subject, Queue: d.queue,
		Capacity: cap(d.buf), Queued: len(d.buf), Receivers: d.receivers, Refused: d.refused}
}
