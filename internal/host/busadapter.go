package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/convene/convene/internal/bus"
)

// BusTransport carries the host's channels and management messages on a
// bus connection. Payloads go as they are (they are JSON documents).
type BusTransport struct {
	b   *bus.Bus
	own bool
}

// NewBusTransport uses b; closing b stays its owner's job.
func NewBusTransport(b *bus.Bus) *BusTransport { return &BusTransport{b: b} }

// OwnBusTransport uses b and closes it when the host is done with it: for
// a TransportProvider that opens a connection for the host.
func OwnBusTransport(b *bus.Bus) *BusTransport { return &BusTransport{b: b, own: true} }

// Publish sends data on subject.
func (t *BusTransport) Publish(subject string, data []byte) error {
	return t.b.Publish(subject, json.RawMessage(data))
}

// Subscribe delivers subject's messages to h, one after another, in a
// queue group when queue is not "".
func (t *BusTransport) Subscribe(subject, queue string, h func(Delivery)) (Unsubscriber, error) {
	var opts []bus.SubOption
	if queue != "" {
		opts = append(opts, bus.Queue(queue))
	}
	sub, err := t.b.Subscribe(subject, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		h(Delivery{Subject: m.Subject, Data: m.Data, Respond: func(data []byte) error {
			return m.Respond(json.RawMessage(data))
		}})
	}), opts...)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// Request sends data and waits for one reply until ctx ends (the bus's
// default timeout when ctx has no deadline).
func (t *BusTransport) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	m, err := t.b.Request(ctx, subject, json.RawMessage(data))
	if err != nil {
		if errors.Is(err, bus.ErrNoResponders) {
			return nil, fmt.Errorf("%w (%w)", ErrNoResponders, err)
		}
		return nil, err
	}
	return m.Data, nil
}

// Close closes the connection if the transport owns it.
func (t *BusTransport) Close() {
	if t.own {
		t.b.Close()
	}
}
