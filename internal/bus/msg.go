package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Msg is a received message.
type Msg struct {
	Subject string
	Reply   string
	Type    string
	Data    []byte
	bus     *Bus
}

func newMsg(b *Bus, nm *nats.Msg) *Msg {
	return &Msg{Subject: nm.Subject, Reply: nm.Reply, Type: typeOf(nm.Data), Data: nm.Data, bus: b}
}

// Decode unmarshals the message into v.
func (m *Msg) Decode(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("bus: decode %s on %s: %w", m.Type, m.Subject, err)
	}
	return nil
}

// Respond answers a request; it does nothing for a message sent without a
// reply subject.
func (m *Msg) Respond(v any) error {
	if m.Reply == "" {
		return nil
	}
	return m.bus.Publish(m.Reply, v)
}

// Nack answers a request with a negative reply of the given type.
func (m *Msg) Nack(typ, code, msg string) error {
	return m.Respond(errReply{Type: typ, ErrCode: code, ErrMsg: msg})
}

var typePrefix = []byte(`{"type":"`)

// typeOf finds a message's type; messages Convene encodes start with it, so
// the fast path avoids a full decode. The fast path takes only a plain
// printable ASCII type (no escapes), which reads the same either way.
func typeOf(data []byte) string {
	if bytes.HasPrefix(data, typePrefix) {
		rest := data[len(typePrefix):]
		if i := bytes.IndexByte(rest, '"'); i >= 0 && plainASCII(rest[:i]) {
			return string(rest[:i])
		}
	}
	var h struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &h)
	return h.Type
}

func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

// Handler handles a message.
type Handler interface {
	ServeMsg(ctx context.Context, m *Msg)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Msg)

// ServeMsg calls f.
func (f HandlerFunc) ServeMsg(ctx context.Context, m *Msg) { f(ctx, m) }

// Mux dispatches messages to handlers by type. A request of a type nobody
// handles gets an ERROR reply with code BAD_REQUEST; other messages of
// unknown type are dropped (and logged).
type Mux struct {
	handlers map[string]Handler
	log      func(msg string, args ...any)
}

// NewMux returns an empty mux; unknown types are reported to logf when set.
func NewMux(logf func(msg string, args ...any)) *Mux {
	return &Mux{handlers: make(map[string]Handler), log: logf}
}

// Handle registers h for messages of type typ.
func (x *Mux) Handle(typ string, h Handler) { x.handlers[typ] = h }

// HandleFunc registers f for messages of type typ.
func (x *Mux) HandleFunc(typ string, f func(ctx context.Context, m *Msg)) {
	x.handlers[typ] = HandlerFunc(f)
}

// ServeMsg dispatches m.
func (x *Mux) ServeMsg(ctx context.Context, m *Msg) {
	if h, ok := x.handlers[m.Type]; ok {
		h.ServeMsg(ctx, m)
		return
	}
	if x.log != nil {
		x.log("bus: no handler for message", "type", m.Type, "subject", m.Subject)
	}
	if m.Reply != "" {
		_ = m.Respond(errorReply("BAD_REQUEST", fmt.Sprintf("unknown message type %q on %s", m.Type, m.Subject)))
	}
}
