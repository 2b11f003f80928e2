package sipplugin

import (
	"time"

	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/sip"
	"github.com/convene/convene/internal/sip/account"
)

// The plugins' IDs.
const (
	ProxyID   = "convene.sip.proxy"
	AccountID = "convene.sip.account"
	RecordsID = "convene.sip.records"
)

func init() {
	host.Register(host.Plugin{
		ID:     ProxyID,
		Doc:    "a SIP node: registrar and stateful proxy on UDP and TCP, writing call records",
		Server: func() host.Server { return new(Proxy) },
		Config: func() any { return NewProxyConfig() },
	})
	host.Register(host.Plugin{
		ID:     AccountID,
		Doc:    "the SIP account API (POST /AgoraAccount) on its own listener and on the API",
		Server: func() host.Server { return new(Account) },
		Config: func() any { return NewAccountConfig() },
	})
	host.Register(host.Plugin{
		ID:     RecordsID,
		Doc:    "SIP subscribers and call records over REST (/v1/sip/subscribers, /v1/cdrs)",
		Server: func() host.Server { return new(Records) },
		Config: func() any { return NewRecordsConfig() },
	})
}

// ProxyConfig is a convene.sip.proxy section.
type ProxyConfig struct {
	// Name is the node's identity among the platform's SIP nodes (in its
	// Via branches and record-routes, and in the calls it records);
	// default sip-<host name>.
	Name string `yaml:"name"`
	// Listen is the address served on UDP and TCP.
	Listen string `yaml:"listen"`
	// Advertise is the host put in Via and Record-Route; default the
	// listen address's.
	Advertise string `yaml:"advertise"`
	// Domain is the platform's SIP domain and the realm of the
	// subscribers' credentials; default the topology's sip.domain.
	Domain string `yaml:"domain"`
	// Bus reaches the registry and RMS for calls to conferences; ""
	// routes calls to registered users only.
	Bus host.ResourceRef `yaml:"bus"`
	// Store is the platform store: registrations, nonces, calls.
	Store host.ResourceRef `yaml:"store"`
	// Records holds the subscribers and the call records.
	Records host.ResourceRef `yaml:"records"`
	// CallRecords writes a record of every call, with its log lines.
	CallRecords bool `yaml:"call_records"`
	// TimeZone is the platform's time zone (IANA name) of the call
	// statistics; "" is UTC.
	TimeZone string `yaml:"time_zone"`
	// Algorithms are the digest algorithms offered, preferred first.
	Algorithms []string `yaml:"algorithms"`
	// DefaultExpires, MinExpires and MaxExpires bound registrations.
	DefaultExpires time.Duration `yaml:"default_expires"`
	MinExpires     time.Duration `yaml:"min_expires"`
	MaxExpires     time.Duration `yaml:"max_expires"`
	// NonceTTL is how long a challenge may be answered.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	// SubscriberCache is how long a subscriber's credentials, once read,
	// are used before being read again (5 s): a subscriber disabled is
	// refused by every node within it. Negative: read every time.
	SubscriberCache time.Duration `yaml:"subscriber_cache"`
	// RingTimeout ends an unanswered INVITE with 408.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// MaxCallDuration ends an answered call without a session timer.
	MaxCallDuration time.Duration `yaml:"max_call_duration"`
	// SweepInterval is how often calls past their deadline are ended
	// and expired registrations dropped.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// NewProxyConfig is the proxy's configuration with its defaults: the one
// place they live.
func NewProxyConfig() *ProxyConfig {
	return &ProxyConfig{
		Listen: "127.0.0.1:5060", Bus: "bus", Store: "store", Records: "records", CallRecords: true,
		Algorithms:     []string{"SHA-256", "MD5"},
		DefaultExpires: sip.DefaultExpires, MinExpires: sip.DefaultMinExpire, MaxExpires: sip.DefaultExpires,
		NonceTTL: sip.DefaultNonceTTL, RingTimeout: sip.DefaultRing, MaxCallDuration: sip.DefaultMaxCall,
		SweepInterval: sip.DefaultSweep,
	}
}

// AccountConfig is a convene.sip.account section.
type AccountConfig struct {
	// Listen is the account API's own address (seed 003's port plan);
	// "none" serves it only where it is mounted on the API.
	Listen string `yaml:"listen"`
	// Mount serves POST /AgoraAccount on the host's API as well.
	Mount bool `yaml:"mount"`
	// AppID is the secret of the terminals' tokens; default the
	// topology's sip.appid.
	AppID string `yaml:"appid"`
	// Account is the account the node answers with: its own; default
	// sip-<host name>, as the proxy's name.
	Account string `yaml:"account"`
	// Skew is how far a request's timestamp may be from the clock.
	Skew time.Duration `yaml:"skew"`
}

// NewAccountConfig is the account API's configuration with its defaults.
func NewAccountConfig() *AccountConfig {
	return &AccountConfig{Listen: account.DefaultListen, Mount: true, Skew: account.DefaultSkew}
}

// RecordsConfig is a convene.sip.records section.
type RecordsConfig struct {
	// Records is the records database of subscribers and call records.
	Records host.ResourceRef `yaml:"records"`
	// Bus announces the changes of live calls this server records (the
	// stale calls it ends) on the platform's call notification subject;
	// "" (the default) announces none. Sections names the bus.
	Bus host.ResourceRef `yaml:"bus"`
	// Domain is the realm subscribers' credentials are made for; default
	// the topology's sip.domain (the proxies' must be the same).
	Domain string `yaml:"domain"`
	// TimeZone is the platform's time zone of the query defaults (today)
	// and statistics; "" is UTC.
	TimeZone string `yaml:"time_zone"`
}

// NewRecordsConfig is the REST routes' configuration with its defaults.
func NewRecordsConfig() *RecordsConfig { return &RecordsConfig{Records: "records"} }

// defaultName is a node's name on a host: sip-<host name>.
func defaultName(ctx host.Context) string { return "sip-" + ctx.HostName() }
