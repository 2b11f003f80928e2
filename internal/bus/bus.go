package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Options configure a connection.
type Options struct {
	// URL of the NATS server; ignored when Embedded is set.
	URL string
	// Embedded, when set, connects in-process to that server.
	Embedded *Embedded
	// OverTCP connects to Embedded through its TCP listener instead, as a
	// client in another process does: the connection then survives the
	// server's Restart by reconnecting.
	OverTCP bool
	// System connects to the embedded server's system account, whose
	// connection events (ConnEventsSubject) say when a client's connection
	// ends. Needs Embedded; its password never leaves this process.
	System bool
	// Role is what the connection is for: it picks the credential in
	// Creds and names the connection's inbox (Inbox). With Embedded and no
	// role, the connection is RoleInternal and may do everything.
	Role Role
	// Creds holds the role's key; default Embedded's. Ignored when
	// CredsFile is set.
	Creds *Creds
	// CredsFile is a credential file: a NATS user JWT with its seed (a
	// standard .creds file) or an nkey seed (as OpenCreds writes); the
	// kind is told from the content.
	CredsFile string
	// TLS to the server: a CA to verify it, a client certificate to show.
	TLS TLSFiles
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

// TLSFiles are PEM files for TLS to the NATS server.
type TLSFiles struct {
	// CAFile verifies the server's certificate (default: the system's CAs
	// when the server requires TLS).
	CAFile string
	// CertFile and KeyFile are this client's certificate and key, for a
	// server that verifies clients.
	CertFile string
	KeyFile  string
}

// Bus is one connection to the bus.
type Bus struct {
	nc      *nats.Conn
	timeout time.Duration
	log     *slog.Logger

	mu       sync.Mutex
	reported error // the last refusal Flush reported
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
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				log.Error("bus refused a subject this connection's role may not use", "conn", opts.Name, "role", opts.Role, "err", err)
				return
			}
			log.Warn("bus error", "conn", opts.Name, "err", err)
		}),
	}
	if opts.RetryOnFailedConnect {
		nopts = append(nopts, nats.RetryOnFailedConnect(true))
	}
	url := opts.URL
	if e := opts.Embedded; e != nil {
		url = ""
		if opts.OverTCP {
			if url = e.URL(); url == "" {
				return nil, errors.New("bus: the embedded server does not listen: no TCP connection to it")
			}
		} else {
			nopts = append(nopts, nats.InProcessServer(inProcess{e.srv}))
		}
	} else if url == "" {
		return nil, errors.New("bus: no server: give a URL or an embedded server")
	}
	auth, err := authOptions(opts)
	if err != nil {
		return nil, err
	}
	nopts = append(nopts, auth...)
	if opts.TLS.CAFile != "" {
		nopts = append(nopts, nats.RootCAs(opts.TLS.CAFile))
	}
	if opts.TLS.CertFile != "" || opts.TLS.KeyFile != "" {
		if opts.TLS.CertFile == "" || opts.TLS.KeyFile == "" {
			return nil, errors.New("bus: TLS: give both the client certificate and its key (--nats-tls-cert and --nats-tls-key)")
		}
		nopts = append(nopts, nats.ClientCert(opts.TLS.CertFile, opts.TLS.KeyFile))
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		where := RedactURL(url)
		if where == "" {
			where = "the embedded server"
		}
		err = mapErr(err)
		if errors.Is(err, ErrUnauthorized) && !opts.System && opts.Role != "" {
			return nil, fmt.Errorf("bus: connect to %s as %s: %w: give the %s role's credential with --nats-creds (convene serve writes it to <data-dir>/creds/%s)",
				where, roleName(opts), err, opts.Role, CredsFile(opts.Role))
		}
		return nil, fmt.Errorf("bus: connect to %s as %s: %w", where, roleName(opts), err)
	}
	return &Bus{nc: nc, timeout: opts.RequestTimeout, log: log}, nil
}

// authOptions are the options that prove who the connection is.
func authOptions(opts Options) ([]nats.Option, error) {
	if opts.System {
		if opts.Embedded == nil {
			return nil, errors.New("bus: a system connection needs the embedded server")
		}
		return []nats.Option{nats.UserInfo(systemUser, opts.Embedded.sysPass)}, nil
	}
	role := opts.Role
	if role == "" && opts.Embedded != nil {
		role = RoleInternal
	}
	var out []nats.Option
	if role != "" && role != RoleInternal {
		out = append(out, nats.CustomInboxPrefix(inboxPrefix(role, opts.Name)))
	}
	if opts.CredsFile != "" {
		o, err := credsFileOption(opts.CredsFile)
		if err != nil {
			return nil, err
		}
		return append(out, o), nil
	}
	creds := opts.Creds
	if creds == nil && opts.Embedded != nil {
		creds = opts.Embedded.opts.Creds
	}
	if creds == nil || role == "" {
		return out, nil // a server that asks for no credentials
	}
	o, err := creds.option(role)
	if err != nil {
		return nil, err
	}
	return append(out, o), nil
}

func roleName(opts Options) string {
	switch {
	case opts.System:
		return "system"
	case opts.Role != "":
		return string(opts.Role)
	case opts.Embedded != nil:
		return string(RoleInternal)
	}
	return "no role"
}

// RedactURL masks the password of a URL with user information, for
// printing and logging.
func RedactURL(u string) string {
	p, err := neturl.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	if _, has := p.User.Password(); has {
		p.User = neturl.UserPassword(p.User.Username(), "xxxxx")
	}
	return p.String()
}

// Close drains nothing and closes the connection at once, as a crash would.
func (b *Bus) Close() { b.nc.Close() }

// Drain lets in-flight handlers finish, then closes.
func (b *Bus) Drain() error { return b.nc.Drain() }

// Flush waits until the server has processed everything sent so far. It
// reports ErrDenied when the server refused a publish or subscription of
// this connection since the last Flush that said so (the server refuses
// asynchronously: Publish and Subscribe cannot tell).
func (b *Bus) Flush(ctx context.Context) error {
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return mapErr(err)
	}
	last := b.nc.LastError()
	if last == nil || !errors.Is(last, nats.ErrPermissionViolation) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if last == b.reported {
		return nil
	}
	b.reported = last
	return fmt.Errorf("%w (%w)", ErrDenied, last)
}

// Connected reports whether the connection is up.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// encodeBufs hold messages being encoded: the connection copies what it
// sends before Publish or Request returns, so one buffer serves message
// after message instead of a new one each.
var encodeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled is the largest buffer put back in the pool: a rare large
// message (a node's conference list) does not stay in memory for good.
const maxPooled = 64 << 10

// encode writes v as JSON, as json.Marshal does, into a pooled buffer;
// the caller puts it back with release once the message is sent.
func encode(subject string, v any) (*bytes.Buffer, []byte, error) {
	buf := encodeBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		release(buf)
		return nil, nil, fmt.Errorf("bus: encode for %s: %w", subject, err)
	}
	data := buf.Bytes()
	return buf, data[:len(data)-1], nil // without Encode's newline
}

func release(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooled {
		encodeBufs.Put(buf)
	}
}

// Publish sends a message without waiting for anyone.
func (b *Bus) Publish(subject string, v any) error {
	buf, data, err := encode(subject, v)
	if err != nil {
		return err
	}
	err = b.nc.Publish(subject, data)
	release(buf)
	if err != nil {
		return fmt.Errorf("bus: publish %s: %w", subject, mapErr(err))
	}
	return nil
}

// Request sends v and waits for one reply until ctx's deadline (or the
// default timeout when ctx has none).
func (b *Bus) Request(ctx context.Context, subject string, v any) (*Msg, error) {
	buf, data, err := encode(subject, v)
	if err != nil {
		return nil, err
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	nm, err := b.nc.RequestWithContext(ctx, subject, data)
	release(buf)
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

// Drain ends the subscription without dropping a message on its way: the
// server stops sending to it, and the handler still gets what the server
// sent before (Unsubscribe drops that). It returns at once.
func (s *Subscription) Drain() error {
	if err := s.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return err
	}
	return nil
}

// Pending is how many received messages the subscription's handler has not
// finished with: those waiting for it and, on a serial subscription, the
// one it is handling. It is 0 once the subscription ended.
func (s *Subscription) Pending() int {
	n, _, err := s.sub.Pending()
	if err != nil {
		return 0
	}
	return n
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
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return fmt.Errorf("%w (%w)", ErrUnauthorized, err)
	case errors.Is(err, nats.ErrPermissionViolation):
		return fmt.Errorf("%w (%w)", ErrDenied, err)
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
	return s + " to " + b.nc.ConnectedUrlRedacted()
}
