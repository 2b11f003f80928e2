package protocol

// Conference states (SPEC §3). An ended conference has no state: its data is
// removed.
const (
	StateCreating       = "creating"
	StateRunning        = "running"
	StatePendingRestore = "pending-restore"
)

// Conference is a conference as the scheduler keeps it (the confex/<e164>/
// hash). Times are Unix milliseconds.
type Conference struct {
	E164         string   `json:"e164"`
	Name         string   `json:"confname"`
	Domain       string   `json:"moid"`
	Platform     string   `json:"platformmoid"`
	RealPlatform string   `json:"realplatformmoid"`
	Room         string   `json:"roommoid,omitempty"`
	Node         string   `json:"cmu,omitempty"`
	NodeIP       string   `json:"mcuip,omitempty"`
	NodePID      string   `json:"mcupid,omitempty"`
	State        string   `json:"state"`
	Reason       string   `json:"reason,omitempty"`
	Scale        int      `json:"scale"`
	Resolution   string   `json:"resolution"`
	Password     string   `json:"password,omitempty"`
	Public       bool     `json:"public"`
	Invited      []string `json:"invited,omitempty"`
	Recording    bool     `json:"recording"`
	BookTime     int64    `json:"booktime,omitempty"`
	CreateTime   int64    `json:"createtime"`
	// PlacedAt is when the node it runs on now acknowledged it (its create
	// or its latest restore), in Unix milliseconds.
	PlacedAt        int64 `json:"placedat,omitempty"`
	RealStartTime   int64 `json:"realstarttime,omitempty"`
	EndTime         int64 `json:"endtime"`
	DurationMinutes int   `json:"duration"`
	Legacy          bool  `json:"legacy,omitempty"`
	WillEndNotified bool  `json:"willendntf,omitempty"`
	// RestoreAttempts counts the restores that failed since the conference
	// last ran.
	RestoreAttempts  int    `json:"restoreattempts,omitempty"`
	LastRestoreError string `json:"lastrestoreerr,omitempty"`
}

// Closed reports whether only invited terminals may see and join the
// conference: a conference with an invitation list is closed.
func (c *Conference) Closed() bool { return len(c.Invited) > 0 }

// CreateConfReq is CM_MAU_CREATECONF_REQ: a CM books a conference now.
type CreateConfReq struct {
	Type            string   `json:"type"`
	E164            string   `json:"e164,omitempty"`
	Name            string   `json:"confname"`
	Domain          string   `json:"moid"`
	Scale           int      `json:"scale"`
	Resolution      string   `json:"resolution"`
	DurationMinutes int      `json:"duration"`
	Password        string   `json:"password,omitempty"`
	Public          bool     `json:"public"`
	Invited         []string `json:"invited,omitempty"`
	Recording       bool     `json:"recording"`
	BookTime        int64    `json:"booktime,omitempty"`
}

// CreateConfAck is MAU_CM_CREATECONF_ACK.
type CreateConfAck struct {
	Type string     `json:"type"`
	Conf Conference `json:"conf"`
}

// ConfReq is the shape of per-conference CM requests that carry only a
// number: CM_MAU_RELEASECONF_REQ, CM_MAU_STOPMONITOR_REQ and the like.
type ConfReq struct {
	Type string `json:"type"`
	E164 string `json:"e164"`
}

// DelayConfReq is CM_MAU_DELAYCONF_REQ and MCU_MAU_DELAYCONF_REQ.
type DelayConfReq struct {
	Type    string `json:"type"`
	E164    string `json:"e164"`
	Minutes int    `json:"delaytime"`
}

// ConfDurationNtf is MAU_CM_CONFDURATION_NTF, MAU_MCU_CONFDURATION_NTF and
// the ACKs of a delay: the conference's new length and end time.
type ConfDurationNtf struct {
	Type            string `json:"type"`
	E164            string `json:"e164"`
	DurationMinutes int    `json:"duration"`
	EndTime         int64  `json:"endtime"`
}

// ConfWillEndNtf is MAU_CM_CONFWILLEND_NTF and MAU_MCU_CONFWILLEND_NTF.
type ConfWillEndNtf struct {
	Type    string `json:"type"`
	E164    string `json:"e164"`
	EndTime int64  `json:"endtime"`
	Seconds int    `json:"remaining"`
}

// ConfStateNtf is MAU_CM_CONFSTATE_NTF (meeting.mccntf): a conference
// changed state; MAU_CM_RELEASECONF_NTF uses it too with the reason it ended.
type ConfStateNtf struct {
	Type   string `json:"type"`
	E164   string `json:"e164"`
	Domain string `json:"moid,omitempty"`
	State  string `json:"state"`
	Node   string `json:"cmu,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ModifyConfNameReq carries a new name: CM_MAU_MODIFYCONFNAME_REQ,
// MAU_MCU_MODIFYCONFNAME_REQ, MCU_CM_MODIFYCONFNAME_REQ and the CM's answer
// CM_MCU_MODIFYCONFNAME_ACK|NACK, which keep the seed's fields.
type ModifyConfNameReq struct {
	Type    string `json:"type"`
	E164    string `json:"confE164"`
	Name    string `json:"confname"`
	IP      string `json:"ip,omitempty"`
	PID     string `json:"pid,omitempty"`
	MtReqID string `json:"mtreqid,omitempty"`
	ErrCode string `json:"errcode,omitempty"`
}

// ModifyPasswordReq is CM_MAU_MODIFYPASSWORD_REQ and
// MAU_MCU_MODIFYPASSWORD_REQ.
type ModifyPasswordReq struct {
	Type     string `json:"type"`
	E164     string `json:"e164"`
	Password string `json:"password"`
}

// MonitorReq starts, stops or keeps alive a monitoring session: the media
// node streams the conference to ip:port (000 §6, 001 §1.3).
type MonitorReq struct {
	Type string `json:"type"`
	E164 string `json:"e164"`
	IP   string `json:"ip"`
	Port int    `json:"port"`
}

// MonitorStoppedNtf is MAU_CM_MONITORSTOPPED_NTF.
type MonitorStoppedNtf struct {
	Type   string `json:"type"`
	E164   string `json:"e164"`
	IP     string `json:"ip"`
	Port   int    `json:"port"`
	Reason string `json:"reason"`
}

// Template is a public conference template (000 §10).
type Template struct {
	E164            string   `json:"e164"`
	Name            string   `json:"name"`
	Domain          string   `json:"moid"`
	Platform        string   `json:"platformmoid,omitempty"`
	Scale           int      `json:"scale"`
	Resolution      string   `json:"resolution"`
	DurationMinutes int      `json:"duration"`
	Public          bool     `json:"public"`
	Invited         []string `json:"invited,omitempty"`
	Password        string   `json:"password,omitempty"`
	CreateTime      int64    `json:"createtime,omitempty"`
	ModifyTime      int64    `json:"modifytime,omitempty"`
}

// TemplateReq is CM_MAU_CREATETEMPLATE_REQ, CM_MAU_MDFTEMPLATE_REQ and
// CM_MAU_DELTEMPLATE_REQ (only E164 set).
type TemplateReq struct {
	Type     string   `json:"type"`
	Template Template `json:"template"`
}

// TemplateAck is MAU_CM_*TEMPLATE_ACK.
type TemplateAck struct {
	Type     string   `json:"type"`
	Template Template `json:"template"`
}
