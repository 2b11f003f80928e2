// Package config reads Convene's configuration: the topology (platforms,
// server rooms, user domains with their licences, API tokens) and the
// tuning of each service. YAML, decoded strictly: an unknown key is an
// error. With no file, Demo gives a working one-platform topology.
//
// It imports internal/license and internal/protocol only.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// Config is the whole configuration file.
type Config struct {
	// Platform is the moid of the platform this process serves; default
	// the first one listed.
	Platform  string     `yaml:"platform"`
	Platforms []Platform `yaml:"platforms"`
	Domains   []Domain   `yaml:"domains"`
	API       API        `yaml:"api"`
	Scheduler Scheduler  `yaml:"scheduler"`
	RMS       RMS        `yaml:"rms"`
	SIP       SIP        `yaml:"sip"`
}

// Platform is one deployment (a datacenter) with its own store and bus.
type Platform struct {
	Moid string `yaml:"moid"`
	Name string `yaml:"name"`
	// NumberSegment prefixes every number allocated for this platform's
	// conferences and templates (000 §10).
	NumberSegment string `yaml:"number_segment"`
	// E164Digits follow the segment; default 5.
	E164Digits int `yaml:"e164_digits"`
	// Backups take this platform's conferences when it fails.
	Backups []string `yaml:"backups"`
	Rooms   []Room   `yaml:"rooms"`
	// Store and Bus are this platform's addresses, for the schedulers of
	// other platforms (disaster recovery).
	Store string `yaml:"store"`
	Bus   string `yaml:"bus"`
}

// Domain is a user domain (tenant).
type Domain struct {
	Moid            string         `yaml:"moid"`
	Name            string         `yaml:"name"`
	Platform        string         `yaml:"platform"`
	Disabled        bool           `yaml:"disabled"`
	EnableH265      bool           `yaml:"enable_h265"`
	EnableHDMeeting bool           `yaml:"enable_hd_meeting"`
	License         license.Limits `yaml:"license"`
}

// API configures the REST API.
type API struct {
	Listen string  `yaml:"listen"`
	Tokens []Token `yaml:"tokens"`
}

// Token is a bearer token, who holds it and what it may do.
type Token struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	// Role is operator (everything), tenant (only the user domains in
	// Domains: their conferences, templates and licence view) or readonly
	// (reads only). Left out, it is operator, as tokens were before roles.
	Role string `yaml:"role"`
	// Domains are the user domains a tenant token may act for; only
	// tenant tokens list them.
	Domains []string `yaml:"domains,omitempty"`
}

// The roles of an API token.
const (
	RoleOperator = "operator"
	RoleTenant   = "tenant"
	RoleReadonly = "readonly"
)

// Roles lists the roles of an API token.
var Roles = []string{RoleOperator, RoleTenant, RoleReadonly}

// RoleOrDefault is the token's role, operator when left out.
func (t Token) RoleOrDefault() string {
	if t.Role == "" {
		return RoleOperator
	}
	return t.Role
}

// Validate checks a token against the topology's user domains (doms).
func (t Token) Validate(doms map[string]bool) error {
	if !protocol.PrintableText(t.Name) || strings.TrimSpace(t.Name) == "" {
		return fmt.Errorf("api token %q: give it a name of printable text (the name shows in logs)", t.Name)
	}
	if len(t.Token) < 16 {
		return fmt.Errorf("api token %q is shorter than 16 characters", t.Name)
	}
	if t.Token == ExampleTokenSecret {
		return fmt.Errorf("api token %q still has the example's placeholder: put in a secret of your own (openssl rand -hex 24)", t.Name)
	}
	switch t.Role {
	case RoleOperator, RoleReadonly, "":
		if len(t.Domains) > 0 {
			return fmt.Errorf("api token %q: role %s acts on every domain; only tenant tokens list domains", t.Name, t.RoleOrDefault())
		}
	case RoleTenant:
		if len(t.Domains) == 0 {
			return fmt.Errorf("api token %q: a tenant token lists the user domains it may act for under domains", t.Name)
		}
		for _, d := range t.Domains {
			if !doms[d] {
				return fmt.Errorf("api token %q: domain %q is not listed under domains", t.Name, d)
			}
		}
	default:
		return fmt.Errorf("api token %q: role %q must be operator, tenant or readonly", t.Name, t.Role)
	}
	return nil
}

// Scheduler tunes the scheduler.
type Scheduler struct {
	// NodeTimeout bounds a node's answer to create, restore, rename.
	NodeTimeout time.Duration `yaml:"node_timeout"`
	// RMSTimeout bounds RMS's answer to GET_RES_REQ.
	RMSTimeout time.Duration `yaml:"rms_timeout"`
	// EndCheckInterval is how often end times are checked.
	EndCheckInterval time.Duration `yaml:"end_check_interval"`
	// WillEndNotice is how long before its end a conference's CM and node
	// are told it is about to end.
	WillEndNotice time.Duration `yaml:"will_end_notice"`
	// MonitorTTL is how long a monitoring session lives without keep-alive.
	MonitorTTL time.Duration `yaml:"monitor_ttl"`
	// MaxDurationMinutes caps a conference's booked length and delays.
	MaxDurationMinutes int `yaml:"max_duration_minutes"`
	// LeaseTTL and LeaseRenew: the active scheduler holds the platform's
	// lease; a standby takes over within LeaseTTL + LeaseRenew of its death.
	LeaseTTL   time.Duration `yaml:"lease_ttl"`
	LeaseRenew time.Duration `yaml:"lease_renew"`
	// RestoreInterval is the period of the restore pass; RestoreBackoff the
	// first wait after a failed restore (doubling up to 30 s).
	RestoreInterval time.Duration `yaml:"restore_interval"`
	RestoreBackoff  time.Duration `yaml:"restore_backoff"`
	// StartGrace bounds how long a scheduler that became active waits for
	// the nodes' conference lists before restoring what none reports.
	StartGrace time.Duration `yaml:"start_grace"`
	// SweepInterval is the period of the check for creates and restores
	// abandoned halfway.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// RMS tunes the resource manager.
type RMS struct {
	// HeartbeatInterval is how often nodes beat; default 200 ms.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// MissedHeartbeats after which a node is down; default 4, so that a
	// frozen node is down 800 ms after its last beat.
	MissedHeartbeats int `yaml:"missed_heartbeats"`
	// ConfListInterval is how often nodes report their conference list;
	// default 5 s.
	ConfListInterval time.Duration `yaml:"conflist_interval"`
	// DisconnectGrace: a node whose bus connection ends and is not back
	// within it is down, before its heartbeats are missed; default the
	// heartbeat interval.
	DisconnectGrace time.Duration `yaml:"disconnect_grace"`
	// OverloadLag: while RMS's liveness checks run later than this, its
	// process is starved of CPU and nobody is taken down; default half
	// the heartbeat interval.
	OverloadLag time.Duration `yaml:"overload_lag"`
	// OverloadHold bounds how long one starved spell, or a backlog of
	// unhandled node messages, suspends take-downs; default 5 s.
	OverloadHold time.Duration `yaml:"overload_hold"`
}

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly, fills defaults and validates.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Defaults fills what was left out.
func (c *Config) Defaults() {
	if c.Platform == "" && len(c.Platforms) > 0 {
		c.Platform = c.Platforms[0].Moid
	}
	for i := range c.Platforms {
		p := &c.Platforms[i]
		if p.E164Digits == 0 {
			p.E164Digits = 5
		}
		if p.Name == "" {
			p.Name = p.Moid
		}
		for j := range p.Rooms {
			if p.Rooms[j].Type == "" {
				p.Rooms[j].Type = RoomMain
			}
			if p.Rooms[j].Name == "" {
				p.Rooms[j].Name = p.Rooms[j].Moid
			}
		}
	}
	for i := range c.Domains {
		if c.Domains[i].Name == "" {
			c.Domains[i].Name = c.Domains[i].Moid
		}
		if c.Domains[i].Platform == "" {
			c.Domains[i].Platform = c.Platform
		}
	}
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:8080"
	}
	for i := range c.API.Tokens {
		if c.API.Tokens[i].Role == "" {
			c.API.Tokens[i].Role = RoleOperator
		}
	}
	s := &c.Scheduler
	setDur(&s.NodeTimeout, 3*time.Second)
	setDur(&s.RMSTimeout, 2*time.Second)
	setDur(&s.EndCheckInterval, time.Second)
	setDur(&s.WillEndNotice, 5*time.Minute)
	setDur(&s.MonitorTTL, 30*time.Second)
	if s.MaxDurationMinutes == 0 {
		s.MaxDurationMinutes = 7 * 24 * 60
	}
	setDur(&s.LeaseTTL, 1500*time.Millisecond)
	setDur(&s.LeaseRenew, 200*time.Millisecond)
	setDur(&s.RestoreInterval, time.Second)
	setDur(&s.RestoreBackoff, 250*time.Millisecond)
	setDur(&s.StartGrace, 3*time.Second)
	setDur(&s.SweepInterval, 5*time.Second)
	r := &c.RMS
	setDur(&r.HeartbeatInterval, 200*time.Millisecond)
	if r.MissedHeartbeats == 0 {
		r.MissedHeartbeats = 4
	}
	setDur(&r.ConfListInterval, 5*time.Second)
	setDur(&r.DisconnectGrace, r.HeartbeatInterval)
	setDur(&r.OverloadLag, r.HeartbeatInterval/2)
	setDur(&r.OverloadHold, 5*time.Second)
	c.SIP.defaults()
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Validate checks names, references and limits.
func (c *Config) Validate() error {
	if len(c.Platforms) == 0 {
		return errors.New("no platforms: list at least one under platforms")
	}
	plats := map[string]bool{}
	rooms := map[string]bool{}
	for _, p := range c.Platforms {
		if err := ValidateRooms(p.Moid, p.Rooms); err != nil {
			return err
		}
		if plats[p.Moid] {
			return fmt.Errorf("platform %q is listed twice", p.Moid)
		}
		plats[p.Moid] = true
		for _, ch := range p.NumberSegment {
			if ch < '0' || ch > '9' {
				return fmt.Errorf("platform %q: number_segment %q must be digits", p.Moid, p.NumberSegment)
			}
		}
		if p.E164Digits < 3 || p.E164Digits > 12 {
			return fmt.Errorf("platform %q: e164_digits %d must be 3 to 12", p.Moid, p.E164Digits)
		}
		// A room moid is unique across the platforms, too.
		for _, r := range p.Rooms {
			if rooms[r.Moid] {
				return fmt.Errorf("room %q is listed twice", r.Moid)
			}
			rooms[r.Moid] = true
		}
	}
	for _, p := range c.Platforms {
		for _, b := range p.Backups {
			if !plats[b] || b == p.Moid {
				return fmt.Errorf("platform %q: backup %q is not another listed platform", p.Moid, b)
			}
		}
	}
	if !plats[c.Platform] {
		return fmt.Errorf("platform %q (the one this process serves) is not listed under platforms", c.Platform)
	}
	doms := map[string]bool{}
	for _, d := range c.Domains {
		if !protocol.ValidToken(d.Moid) {
			return fmt.Errorf("domain moid %q: use 1-64 letters, digits, '-' or '_'", d.Moid)
		}
		if doms[d.Moid] {
			return fmt.Errorf("domain %q is listed twice", d.Moid)
		}
		doms[d.Moid] = true
		if !plats[d.Platform] {
			return fmt.Errorf("domain %q: platform %q is not listed", d.Moid, d.Platform)
		}
		if err := d.License.Validate(); err != nil {
			return fmt.Errorf("domain %q: %w", d.Moid, err)
		}
	}
	secrets := map[string]string{}
	for _, t := range c.API.Tokens {
		if err := t.Validate(doms); err != nil {
			return err
		}
		if other, dup := secrets[t.Token]; dup {
			return fmt.Errorf("api tokens %q and %q are the same token: give each holder its own", other, t.Name)
		}
		secrets[t.Token] = t.Name
	}
	if c.Scheduler.LeaseRenew >= c.Scheduler.LeaseTTL {
		return fmt.Errorf("scheduler.lease_renew %v must be shorter than scheduler.lease_ttl %v", c.Scheduler.LeaseRenew, c.Scheduler.LeaseTTL)
	}
	if c.RMS.MissedHeartbeats < 1 {
		return fmt.Errorf("rms.missed_heartbeats %d must be at least 1", c.RMS.MissedHeartbeats)
	}
	if c.RMS.OverloadLag < 0 || c.RMS.OverloadHold < 0 {
		return fmt.Errorf("rms.overload_lag %v and rms.overload_hold %v must not be negative", c.RMS.OverloadLag, c.RMS.OverloadHold)
	}
	return c.SIP.validate()
}

// PlatformByMoid finds a platform.
func (c *Config) PlatformByMoid(moid string) (Platform, bool) {
	for _, p := range c.Platforms {
		if p.Moid == moid {
			return p, true
		}
	}
	return Platform{}, false
}

// DomainByMoid finds a user domain.
func (c *Config) DomainByMoid(moid string) (Domain, bool) {
	for _, d := range c.Domains {
		if d.Moid == moid {
			return d, true
		}
	}
	return Domain{}, false
}

// Local is the platform this process serves.
func (c *Config) Local() Platform {
	p, _ := c.PlatformByMoid(c.Platform)
	return p
}

// Demo is the built-in topology `convene serve` uses without a file: one
// platform with two rooms and the tenant "demo" with a licence.
func Demo() *Config {
	c := &Config{
		Platforms: []Platform{{
			Moid: "plat-a", Name: "Demo platform", NumberSegment: "66",
			Rooms: []Room{
				{Moid: "room-a1", Name: "Main hall", Type: "main"},
				{Moid: "room-a2", Name: "Annex", Type: "secondary"},
			},
		}},
		Domains: []Domain{{
			Moid: "demo", Name: "Demo tenant", Platform: "plat-a", EnableHDMeeting: true,
			License: license.Limits{
				"8_720p": 100, "8_1080p": 50, "32_720p": 20, "32_1080p": 10,
				"64_720p": 5, "64_1080p": 5, "192_720p": 2, "192_1080p": 2,
			},
		}},
		SIP: SIP{AppID: DemoAppID},
	}
	c.Defaults()
	return c
}
