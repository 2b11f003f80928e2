package apiclient

import (
	"encoding/json"
	"time"

	"github.com/convene/convene/internal/license"
)

// The request and response bodies of the API, shared by the server
// (internal/api) and the client. JSON names are snake_case; times are RFC
// 3339 in UTC. Errors come in the codebook's envelope (codes.Envelope).

// Conference is a conference as the API shows it. It never carries the
// password, only whether there is one.
type Conference struct {
	E164            string    `json:"e164"`
	Name            string    `json:"name"`
	Domain          string    `json:"domain"`
	State           string    `json:"state"`
	Reason          string    `json:"reason,omitempty"`
	Node            string    `json:"node"`
	NodeIP          string    `json:"node_ip"`
	Room            string    `json:"room"`
	Platform        string    `json:"platform"`
	RealPlatform    string    `json:"real_platform"`
	Scale           int       `json:"scale"`
	Resolution      string    `json:"resolution"`
	DurationMinutes int       `json:"duration_minutes"`
	Public          bool      `json:"public"`
	Invited         []string  `json:"invited"`
	Recording       bool      `json:"recording"`
	HasPassword     bool      `json:"has_password"`
	Legacy          bool      `json:"legacy"`
	CreatedAt       time.Time `json:"created_at"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	EndsAt          time.Time `json:"ends_at"`
}

// CreateConferenceRequest is the body of POST /v1/conferences.
type CreateConferenceRequest struct {
	Name            string   `json:"name"`
	Domain          string   `json:"domain"`
	Scale           int      `json:"scale"`
	Resolution      string   `json:"resolution"`
	DurationMinutes int      `json:"duration_minutes"`
	E164            string   `json:"e164,omitempty"`
	Password        string   `json:"password,omitempty"`
	Public          bool     `json:"public,omitempty"`
	Invited         []string `json:"invited,omitempty"`
	Recording       bool     `json:"recording,omitempty"`
}

// UpdateConferenceRequest is the body of PATCH /v1/conferences/{e164}: a
// new name, a new password (empty removes it), or both.
type UpdateConferenceRequest struct {
	Name     *string `json:"name,omitempty"`
	Password *string `json:"password,omitempty"`
}

// DelayRequest is the body of POST /v1/conferences/{e164}/delay.
type DelayRequest struct {
	Minutes int `json:"minutes"`
}

// MonitorRequest is the body of POST /v1/conferences/{e164}/monitors: where
// the media node should stream the conference.
type MonitorRequest struct {
	IP   string `json:"ip"`
	Port int    `json:"port"`
}

// Monitor is a monitoring session. Addr (ip:port) names it in the paths
// of keep-alive and stop.
type Monitor struct {
	E164        string    `json:"e164"`
	Addr        string    `json:"addr"`
	IP          string    `json:"ip"`
	Port        int       `json:"port"`
	KeepAliveAt time.Time `json:"keepalive_at,omitzero"`
}

// ListOptions filter GET /v1/domains/{moid}/conferences.
type ListOptions struct {
	// PublicOnly leaves out conferences that are not public.
	PublicOnly bool
	// Terminal leaves out closed conferences it is not invited to.
	Terminal string
	// State keeps only conferences in that state.
	State string
}

// License is a domain's licence: limit, count and what remains, by class.
type License struct {
	Domain    string         `json:"domain"`
	Limits    license.Limits `json:"limits"`
	InUse     license.Limits `json:"in_use"`
	Remaining license.Limits `json:"remaining"`
}

// SetLicenseRequest is the body of PUT /v1/domains/{moid}/license; classes
// it leaves out keep their limit.
type SetLicenseRequest struct {
	Limits license.Limits `json:"limits"`
}

// TemplateRequest is the body of POST /v1/templates and PUT
// /v1/templates/{e164}.
type TemplateRequest struct {
	Name            string   `json:"name"`
	Domain          string   `json:"domain"`
	Scale           int      `json:"scale"`
	Resolution      string   `json:"resolution"`
	DurationMinutes int      `json:"duration_minutes"`
	E164            string   `json:"e164,omitempty"`
	Public          bool     `json:"public,omitempty"`
	Invited         []string `json:"invited,omitempty"`
	Password        string   `json:"password,omitempty"`
}

// Template is a public conference template.
type Template struct {
	E164            string    `json:"e164"`
	Name            string    `json:"name"`
	Domain          string    `json:"domain"`
	Platform        string    `json:"platform"`
	Scale           int       `json:"scale"`
	Resolution      string    `json:"resolution"`
	DurationMinutes int       `json:"duration_minutes"`
	Public          bool      `json:"public"`
	Invited         []string  `json:"invited"`
	HasPassword     bool      `json:"has_password"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	ModifiedAt      time.Time `json:"modified_at,omitzero"`
}

// Node is a media node as RMS reports it, with the number of conferences
// the store attributes to it (Conferences) beside the node's own count
// (Reported).
type Node struct {
	ID          string `json:"id"`
	IP          string `json:"ip"`
	PID         string `json:"pid"`
	Room        string `json:"room"`
	Kind        string `json:"kind"`
	State       string `json:"state"`
	Capacity    int    `json:"capacity"`
	Conferences int    `json:"conferences"`
	Reported    int    `json:"reported"`
	Legacy      bool   `json:"legacy"`
}

// Room is a server room as RMS sees it, with the platform monitor's
// account of its state when the monitor answers: why it is abnormal
// (Reason), whether an operator failed it (Manual, and then only an
// operator recovers it), and since when it is in its state.
type Room struct {
	Moid      string    `json:"moid"`
	Name      string    `json:"name"`
	Platform  string    `json:"platform"`
	Type      string    `json:"type"` // main or secondary
	State     string    `json:"state"`
	LiveNodes int       `json:"live_nodes"`
	Reason    string    `json:"reason,omitempty"`
	Manual    bool      `json:"manual,omitempty"`
	Since     time.Time `json:"since,omitzero"`
}

// Platform is a configured platform, with the local platform monitor's
// account of it when the monitor answers and knows it (this platform, its
// masters and backups). Without that account State reads normal and
// Observed, DRMode, Reason and Since are empty.
type Platform struct {
	Moid          string         `json:"moid"`
	Name          string         `json:"name"`
	NumberSegment string         `json:"number_segment"`
	Rooms         []PlatformRoom `json:"rooms"`
	Backups       []string       `json:"backups"`
	State         string         `json:"state"`
	Local         bool           `json:"local"`
	// Relation is what the platform is to the local one: "self",
	// "master" (the local platform takes its conferences when it fails),
	// "backup" (it takes the local platform's), or "" for the others.
	Relation string `json:"relation"`
	// Observed is what the monitor's polls saw of a master or backup
	// (normal, abnormal, unreachable; empty before the first poll);
	// DRMode how a master's observed state becomes its State (automatic,
	// manual-on, manual-off, closed). Manual says an operator switched the
	// local platform over; Reason why a platform is in its state; Since
	// when it entered it.
	Observed string    `json:"observed,omitempty"`
	DRMode   string    `json:"drmode,omitempty"`
	Manual   bool      `json:"manual,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since,omitzero"`
}

// PlatformRoom is a configured server room.
type PlatformRoom struct {
	Moid string `json:"moid"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// RegistryEntry says where a callable number lives.
type RegistryEntry struct {
	E164         string    `json:"e164"`
	Kind         string    `json:"kind"` // conference, scheduled, template, virtual
	Name         string    `json:"name,omitempty"`
	Domain       string    `json:"domain"`
	Platform     string    `json:"platform"`
	RealPlatform string    `json:"real_platform"`
	Room         string    `json:"room,omitempty"`
	Node         string    `json:"node,omitempty"`
	NodeIP       string    `json:"node_ip,omitempty"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
}

// Event is a notification the scheduler sent the CM, as received.
type Event struct {
	Type    string          `json:"type"`
	E164    string          `json:"e164,omitempty"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload"`
}

// EventOptions filter GET /v1/events.
type EventOptions struct {
	E164  string
	Limit int // default 100
}

// Health is the body of GET /healthz: "ok" or "unavailable", and, for a
// request with a valid token, the state of each part.
type Health struct {
	Status string `json:"status"`
	Store  string `json:"store,omitempty"`
	Bus    string `json:"bus,omitempty"`
}

// List bodies: each list comes in an object, so that fields can be added.
type (
	ConferenceList struct {
		Conferences []Conference `json:"conferences"`
	}
	MonitorList struct {
		Monitors []Monitor `json:"monitors"`
	}
	TemplateList struct {
		Templates []Template `json:"templates"`
	}
	NodeList struct {
		Nodes []Node `json:"nodes"`
	}
	RoomList struct {
		Rooms []Room `json:"rooms"`
	}
	PlatformList struct {
		Platforms []Platform `json:"platforms"`
	}
	EventList struct {
		Events []Event `json:"events"`
	}
)

// FailRoomRequest is the optional body of POST /v1/rooms/{moid}/fail.
type FailRoomRequest struct {
	// Reason says why; default "failed by an operator".
	Reason string `json:"reason,omitempty"`
}

// FailPlatformRequest is the optional body of POST
// /v1/platforms/{moid}/fail.
type FailPlatformRequest struct {
	// Reason says why; default "switched over by an operator".
	Reason string `json:"reason,omitempty"`
}

// DRModeRequest is the body of PUT /v1/platforms/{moid}/dr.
type DRModeRequest struct {
	// Mode is automatic, manual-on, manual-off or closed.
	Mode string `json:"mode"`
}
