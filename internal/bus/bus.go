package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Options configure a connection.
type Options struct {
	// URL of the NATS server; ignored when Embedded is set.
	URL string
	// Embedded, when set, connects in-process to that server.
	Embedded *Embedded
	// System connects to the embedded server's system account, whose
	// connection events (ConnEventsSubject) say when a client's connection
	// ends: in-process with Embedded, or over TCP with a URL carrying the
	// system credentials (Embedded.SystemURL).
	System bool
	// Name identifies the connection in the server's monitoring.
	Name string
	// RequestTimeout applies to requests whose context has no deadline;
	// default 2 s.
	RequestTimeout time.Duration
	// ReconnectWait between reconnection attempts; default 100 ms.
	ReconnectWait time.Duration
	// RetryOnFailedConnect makes Connect succeed even when the server is
	// not up yet: the connection keeps trying in the background.
	RetryOnFailedConnect bool
	// OnDisconnect and OnReconnect, when set, are told of connection loss
	// and recovery.
	OnDisconnect func(error)
	OnReconnect  func()
}

// Bus is one connection to the bus.
type Bus struct {
	nc      *nats.Conn
	timeout time.Duration
	log     *slog.Logger
}

// Connect opens a connection. It keeps reconnecting forever when the server
// goes away.
func Connect(opts Options, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 2 * time.Second
	}
	if opts.ReconnectWait == 0 {
		opts.ReconnectWait = 100 * time.Millisecond
	}
	nopts := []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.ReconnectWait),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("bus disconnected", "conn", opts.Name, "err", err)
			if opts.OnDisconnect != nil {
				opts.OnDisconnect(err)
			}
		}),
		nats.ReconnectHandler(func(_ *nats.Conn) {
			log.Info("bus reconnected", "conn", opts.Name)
			if opts.OnReconnect != nil {
				opts.OnReconnect()
			}
		}),
	}
	if opts.RetryOnFailedConnect {
		nopts = append(nopts, nats.RetryOnFailedConnect(true))
	}
	url := opts.URL
	if opts.Embedded != nil {
		nopts = append(nopts, nats.InProcessServer(opts.Embedded.srv))
		if opts.System {
			nopts = append(nopts, nats.UserInfo(systemUser, opts.Embedded.sysPass))
		}
		url = ""
	} else if url == "" {
		return nil, errors.New("bus: no server: give a URL or an embedded server")
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %q: %w", url, err)
	}
	return &Bus{nc: nc, timeout: opts.RequestTimeout, log: log}, nil
}

// Close drains nothing and closes the connection at once, as a crash would.
func (b *Bus) Close() { b.nc.Close() }

// Drain lets in-flight handlers finish, then closes.
func (b *Bus) Drain() error { return b.nc.Drain() }

// Flush waits until the server has processed everything sent so far.
func (b *Bus) Flush(ctx context.Context) error {
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	return b.nc.FlushWithContext(ctx)
}

// Connected reports whether the connection is up.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Publish sends a message without waiting for anyone.
func (b *Bus) Publish(subject string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bus: encode for %s: %w", subject, err)
	}
	if err := b.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("bus: publish %s: %w", subject, mapErr(err))
	}
	return nil
}

// Request sends v and waits for one reply until ctx's deadline (or the
// default timeout when ctx has none).
func (b *Bus) Request(ctx context.Context, subject string, v any) (*Msg, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("bus: encode for %s: %w", subject, err)
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	nm, err := b.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, fmt.Errorf("bus: request %s: %w", subject, mapErr(err))
	}
	return newMsg(b, nm), nil
}

// Call is Request for the usual ACK/NACK exchange: a reply whose type ends
// in NACK (or is ERROR) comes back as a *NackError; any other reply is
// decoded into ack (which may be nil).
func (b *Bus) Call(ctx context.Context, subject string, req, ack any) error {
	m, err := b.Request(ctx, subject, req)
	if err != nil {
		return err
	}
	if IsNack(m.Type) {
		var n struct {
			ErrCode string `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		if err := m.Decode(&n); err != nil {
			return err
		}
		return &NackError{Type: m.Type, Code: n.ErrCode, Message: n.ErrMsg}
	}
	if ack == nil {
		return nil
	}
	return m.Decode(ack)
}

// IsNack reports whether a message type is a negative reply.
func IsNack(typ string) bool {
	return strings.HasSuffix(typ, "NACK") || typ == "ERROR"
}

// Subscription is a handler registered on a subject.
type Subscription struct {
	sub *nats.Subscription
}

// Unsubscribe stops delivery.
func (s *Subscription) Unsubscribe() error {
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return err
	}
	return nil
}

// SubOption tunes a subscription.
type SubOption func(*subConfig)

type subConfig struct {
	queue      string
	concurrent int
}

// Queue makes the subscription one of a queue group: each message goes to
// one member of the group.
func Queue(name string) SubOption { return func(c *subConfig) { c.queue = name } }

// Concurrent runs up to n handlers at once; by default messages of a
// subscription are handled one after another, in order.
func Concurrent(n int) SubOption { return func(c *subConfig) { c.concurrent = n } }

// Subscribe delivers messages on subject to h.
func (b *Bus) Subscribe(subject string, h Handler, opts ...SubOption) (*Subscription, error) {
	var cfg subConfig
	for _, o := range opts {
		o(&cfg)
	}
	var cb nats.MsgHandler
	if cfg.concurrent > 1 {
		p := newPool(cfg.concurrent, func(nm *nats.Msg) { b.serve(h, nm) })
		cb = p.handle
	} else {
		cb = func(nm *nats.Msg) { b.serve(h, nm) }
	}
	var (
		sub *nats.Subscription
		err error
	)
	if cfg.queue != "" {
		sub, err = b.nc.QueueSubscribe(subject, cfg.queue, cb)
	} else {
		sub, err = b.nc.Subscribe(subject, cb)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", subject, mapErr(err))
	}
	// Large bursts (a node's restore wave, a bench) must not be dropped.
	_ = sub.SetPendingLimits(1<<20, 512<<20)
	return &Subscription{sub: sub}, nil
}

func (b *Bus) serve(h Handler, nm *nats.Msg) {
	m := newMsg(b, nm)
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("bus handler panicked", "subject", m.Subject, "type", m.Type, "panic", r)
			if m.Reply != "" {
				_ = m.Respond(errorReply("INTERNAL", fmt.Sprint(r)))
			}
		}
	}()
	h.ServeMsg(context.Background(), m)
}

func (b *Bus) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.timeout)
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w (%w)", ErrNoResponders, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (%w)", ErrTimeout, err)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w (%w)", ErrClosed, err)
	}
	return err
}

type errReply struct {
	Type    string `json:"type"`
	ErrCode string `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func errorReply(code, msg string) errReply {
	return errReply{Type: "ERROR", ErrCode: code, ErrMsg: msg}
}

// Status says how the connection is, for diagnostics.
func (b *Bus) Status() string {
	s := b.nc.Status().String()
	if err := b.nc.LastError(); err != nil {
		s += " (last error: " + err.Error() + ")"
	}
	return s + " to " + b.nc.ConnectedUrl()
}
