package protocol

// Platform states (000 §2). A platform's effective state is what its
// backups' PMS tells their schedulers.
const (
	PlatformNormal      = "normal"
	PlatformAbnormal    = "abnormal"
	PlatformUnreachable = "unreachable" // observed only: its PMS does not answer
)

// Disaster-recovery modes of a master platform, set on its backup's PMS
// (000 §2.3.2): automatic follows what is observed; manual-on fails it over
// whatever is observed; manual-off keeps it normal whatever is observed;
// closed never tells the backup's scheduler (no failover at all).
const (
	DRAutomatic = "automatic"
	DRManualOn  = "manual-on"
	DRManualOff = "manual-off"
	DRClosed    = "closed"
)

// Message types of platform monitoring (000 §2.2).
const (
	PlatformStateRq      = "PLATFORM_STATE_REQ"
	PlatformStateNotify  = "PLATFORM_STATE_NOTIFY"
	PlatformConfigRq     = "PLATFORM_CONFIG_REQ"
	PlatformConfigNotify = "PLATFORM_CONFIG_NOTIFY"
	PlatformInfoNotify   = "PLATFORM_INFO_NOTIFY"
	PlatformSetRq        = "PLATFORM_SET_REQ"
	PlatformSetAck       = "PLATFORM_SET_ACK"
	PlatformSetNack      = "PLATFORM_SET_NACK"
	PlatformDRSetRq      = "PLATFORM_DR_SET_REQ"
	PlatformDRSetAck     = "PLATFORM_DR_SET_ACK"
	PlatformDRSetNack    = "PLATFORM_DR_SET_NACK"
)

// PlatformInfo is one platform as a PMS knows it: where its store and bus
// are, and its state.
type PlatformInfo struct {
	Platform      string `json:"moid"`
	Name          string `json:"name,omitempty"`
	NumberSegment string `json:"number_segment,omitempty"`
	// State is the effective state: what the scheduler acts on.
	State string `json:"state"`
	// Observed is what the PMS saw of it (normal, abnormal, unreachable);
	// DRMode how it turns that into State (for masters only).
	Observed string `json:"observed,omitempty"`
	DRMode   string `json:"drmode,omitempty"`
	// Manual is set when an operator set the state of the platform itself.
	Manual  bool   `json:"manual,omitempty"`
	Reason  string `json:"reason,omitempty"`
	SinceMs int64  `json:"since,omitempty"`
	// Store and Bus are the platform's addresses (redis and mq in the seed).
	Store string `json:"redis,omitempty"`
	Bus   string `json:"mq,omitempty"`
}

// PlatformStateReqMsg is PLATFORM_STATE_REQ and PLATFORM_CONFIG_REQ: ask a
// platform's PMS (on monitor.req.<platform>) for its state, or for the
// configuration of one platform.
type PlatformStateReqMsg struct {
	Type     string `json:"type"`
	Platform string `json:"moid"`
}

// PlatformStateNtf is PLATFORM_STATE_NOTIFY and PLATFORM_INFO_NOTIFY (the
// seed's proposed message, 000 §2.2): the sender's own state, its master
// platforms (whose conferences it takes when they fail) and its backups,
// each with state and addresses, and its rooms. Broadcast on
// monitor.notify.platform on every change and sent in answer to
// PLATFORM_STATE_REQ.
type PlatformStateNtf struct {
	Type     string         `json:"type"`
	Platform string         `json:"moid"`
	State    string         `json:"state"`
	Manual   bool           `json:"manual,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Masters  []PlatformInfo `json:"master_platforms"`
	Backups  []PlatformInfo `json:"slave_platforms"`
	Rooms    []RoomInfo     `json:"rooms,omitempty"`
	SentAtMs int64          `json:"sentat,omitempty"`
}

// PlatformConfigNtf is PLATFORM_CONFIG_NOTIFY: one platform's configuration.
type PlatformConfigNtf struct {
	Type     string       `json:"type"`
	Platform PlatformInfo `json:"platform"`
}

// PlatformSetReq is PLATFORM_SET_REQ: an operator switches the PMS's own
// platform abnormal (its backups take over; its scheduler stands down) or
// back to normal. Answered with PLATFORM_SET_ACK (a PlatformStateNtf) or
// PLATFORM_SET_NACK.
type PlatformSetReq struct {
	Type   string `json:"type"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// PlatformDRSetReq is PLATFORM_DR_SET_REQ: set the disaster-recovery mode
// of one of the PMS's master platforms. Answered with PLATFORM_DR_SET_ACK
// (a PlatformStateNtf) or PLATFORM_DR_SET_NACK.
type PlatformDRSetReq struct {
	Type     string `json:"type"`
	Platform string `json:"moid"`
	Mode     string `json:"drmode"`
}
