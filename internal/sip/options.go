package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/store"
)

// Options configure a node. Zero values take the defaults given.
type Options struct {
	// Name is the node's identity, unique among the platform's SIP nodes:
	// it is in its Via branches and record-routes. A subject token
	// (letters, digits, '-', '_'). Required.
	Name string
	// Platform is the platform's moid. Required.
	Platform string
	// Domain is the platform's SIP domain (the topology's sip.domain) and
	// the realm of its digest credentials; a REGISTER's domain may be it
	// or the node's own address. Required.
	Domain string
	// UDP and TCP are the addresses listened on ("127.0.0.1:5060";
	// port 0 picks one). At least one is required.
	UDP string
	TCP string
	// Advertise is the host put in Via and Record-Route headers; default
	// the listen address's host (which must then not be unspecified).
	Advertise string

	// DefaultExpires is a registration's lifetime when the REGISTER names
	// none (3600 s); MinExpires the shortest accepted, shorter ones get
	// 423 (60 s); MaxExpires the longest granted (3600 s).
	DefaultExpires time.Duration
	MinExpires     time.Duration
	MaxExpires     time.Duration

	// NonceTTL is how long a challenge may be answered (5 min).
	NonceTTL time.Duration
	// Algorithms offered in challenges, preferred first (SHA-256, MD5).
	Algorithms []digest.Algorithm
	// SubscriberCacheTTL is how long a subscriber's credentials read
	// from the records are used before being read again (5 s): a
	// subscriber disabled, or given a new password, is refused (or
	// accepted) by every node within it. Negative: read every time.
	SubscriberCacheTTL time.Duration

	// RingTimeout is how long an INVITE waits for an answer before the
	// node gives up with 408 (60 s).
	RingTimeout time.Duration
	// MaxCallDuration ends an answered call that negotiated no session
	// timer (RFC 4028 Session-Expires) this long after its answer (4 h).
	MaxCallDuration time.Duration
	// SweepInterval is how often the node ends calls past their deadline
	// and drops expired registrations (1 s).
	SweepInterval time.Duration
	// NodeCacheTTL is how long the media nodes' SIP contacts from RMS are
	// trusted before being asked again (2 s); a node not in the list
	// makes the node ask at once.
	NodeCacheTTL time.Duration
	// BusTimeout bounds one registry or RMS request (1 s).
	BusTimeout time.Duration
	// ReportGrace is how long an ended call stays in the store for its
	// record to be written (10 s): past it, a node's sweep reports the
	// end again, so that a node that died before the write loses no
	// record.
	ReportGrace time.Duration
}

// Defaults.
const (
	DefaultExpires   = time.Hour
	DefaultMinExpire = time.Minute
	DefaultNonceTTL  = 5 * time.Minute
	DefaultSubsCache = 5 * time.Second
	DefaultRing      = time.Minute
	DefaultMaxCall   = 4 * time.Hour
	DefaultSweep     = time.Second
	DefaultNodeCache = 2 * time.Second
	DefaultBusWait   = time.Second
	DefaultReport    = 10 * time.Second
)

// Store is the platform store's SIP state (internal/store).
type Store interface {
	SIPRegister(ctx context.Context, r store.SIPRegistration) ([]store.SIPBinding, error)
	SIPBindings(ctx context.Context, aor string, now time.Time) ([]store.SIPBinding, error)
	SIPSweepBindings(ctx context.Context, now time.Time, limit int) (int, error)
	SIPDigestSecret(ctx context.Context, random string) (string, error)
	SIPUseNonce(ctx context.Context, nonce string, nc uint32, until, now time.Time) error
	SIPCallStart(ctx context.Context, c store.SIPCall) (bool, error)
	SIPCallUpdate(ctx context.Context, c store.SIPCall, unless string) (string, error)
	SIPCallEnd(ctx context.Context, id string, with store.SIPCall, until time.Time) (store.SIPCall, bool, error)
	SIPCallEndDialog(ctx context.Context, id, fromTag, toTag string, with store.SIPCall, until time.Time) (store.SIPCall, bool, error)
	SIPCallsForget(ctx context.Context, ids ...string) error
	SIPCallsExpired(ctx context.Context, now time.Time, limit int, until time.Time) ([]store.SIPCall, error)
	SIPAnnounceNode(ctx context.Context, name, addrs string) error
	SIPNodes(ctx context.Context) (map[string]string, error)
}

// Subscribers finds the subscribers and their credentials
// (internal/records).
type Subscribers interface {
	SIPSubscriber(ctx context.Context, user string) (records.SIPSubscriber, error)
}

// Requester sends a request on the bus and decodes its answer
// (*bus.Bus): the registry's UPU_QUERY_REQ and RMS's RMS_NODELIST_REQ.
type Requester interface {
	Call(ctx context.Context, subject string, req, ack any) error
}

// Deps are what a node works with.
type Deps struct {
	Store       Store
	Subscribers Subscribers
	// Bus reaches the platform's registry and RMS; without it, calls to
	// conference numbers are refused as unknown numbers.
	Bus Requester
	// Recorder is told of every call; nil: calls are not recorded.
	Recorder CallRecorder
	Log      *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) fill() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case !protocol.ValidToken(o.Name):
		return bad("node name %q must be 1-64 letters, digits, '-' or '_'", o.Name)
	case !protocol.ValidToken(o.Platform):
		return bad("platform %q must be a platform moid", o.Platform)
	case o.Domain == "":
		return bad("no SIP domain: set the topology's sip.domain")
	case o.UDP == "" && o.TCP == "":
		return bad("no listen address: give a UDP or TCP address (127.0.0.1:5060)")
	}
	for _, a := range []string{o.UDP, o.TCP} {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return bad("listen address %q: %v", a, err)
		}
		if o.Advertise == "" {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				return bad("listening on %q, the node cannot tell which address to advertise: set Advertise", a)
			}
			o.Advertise = host
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DefaultExpires, DefaultExpires)
	def(&o.MinExpires, DefaultMinExpire)
	def(&o.MaxExpires, DefaultExpires)
	def(&o.NonceTTL, DefaultNonceTTL)
	if o.SubscriberCacheTTL == 0 {
		o.SubscriberCacheTTL = DefaultSubsCache
	}
	def(&o.RingTimeout, DefaultRing)
	def(&o.MaxCallDuration, DefaultMaxCall)
	def(&o.SweepInterval, DefaultSweep)
	def(&o.NodeCacheTTL, DefaultNodeCache)
	def(&o.BusTimeout, DefaultBusWait)
	def(&o.ReportGrace, DefaultReport)
	if o.MaxExpires < o.MinExpires {
		return bad("MaxExpires %s is shorter than MinExpires %s", o.MaxExpires, o.MinExpires)
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []digest.Algorithm{digest.SHA256, digest.MD5}
	}
	for _, a := range o.Algorithms {
		if a != digest.SHA256 && a != digest.MD5 {
			return bad("digest algorithm %q: use SHA-256 or MD5", a)
		}
	}
	return nil
}

// MaxPasswordLen is the longest subscriber password.
const MaxPasswordLen = 128

// NewSubscriber makes the record of a subscriber with its password: the
// HA1s of both algorithms for realm (the platform's SIP domain). The
// password itself is not kept. Errors: ErrBadPassword, records.ErrInvalid.
func NewSubscriber(user, password, realm string) (records.SIPSubscriber, error) {
	if !records.ValidSIPUser(user) {
		return records.SIPSubscriber{}, fmt.Errorf("%w: SIP user %q: use 1 to %d letters, digits, '.', '_', '-', '+' or '~'",
			records.ErrInvalid, user, records.MaxSIPUserLen)
	}
	if len(password) < 4 || len(password) > MaxPasswordLen {
		return records.SIPSubscriber{}, fmt.Errorf("%w: a password is 4 to %d bytes", ErrBadPassword, MaxPasswordLen)
	}
	for _, r := range password {
		if r < 0x20 || r == 0x7f {
			return records.SIPSubscriber{}, fmt.Errorf("%w: a password holds no control characters", ErrBadPassword)
		}
	}
	return records.SIPSubscriber{User: user, Realm: realm,
		HA1MD5:    digest.HA1(digest.MD5, user, realm, password),
		HA1SHA256: digest.HA1(digest.SHA256, user, realm, password)}, nil
}
