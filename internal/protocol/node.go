package protocol

// Node states as RMS reports them.
const (
	NodeUp   = "up"
	NodeDown = "down"
)

// NodeConfReq is MAU_MCU_CREATECONF_REQ and MAU_MCU_RESTORECONF_REQ: the
// scheduler asks a node to host a conference.
type NodeConfReq struct {
	Type string     `json:"type"`
	Conf Conference `json:"conf"`
	VRS  []Server   `json:"vrs,omitempty"`
	MPS  []Server   `json:"mps,omitempty"`
}

// NodeConfAck is MCU_MAU_CREATECONF_ACK and MCU_MAU_RESTORECONF_ACK (and,
// with ErrCode set, their NACKs).
type NodeConfAck struct {
	Type    string `json:"type"`
	E164    string `json:"e164"`
	IP      string `json:"ip"`
	PID     string `json:"pid"`
	ErrCode string `json:"errcode,omitempty"`
	ErrMsg  string `json:"errmsg,omitempty"`
}

// ConfListEntry is one conference in MCU_MAU_CONFLIST_NTF.
type ConfListEntry struct {
	E164       string `json:"e164"`
	CreateTime int64  `json:"createtime"`
}

// ConfListNtf is MCU_MAU_CONFLIST_NTF (001 §1.4 with the room added): what
// a node really hosts, sent periodically.
type ConfListNtf struct {
	Type     string          `json:"type"`
	Node     string          `json:"nodeid"`
	IP       string          `json:"ip"`
	PID      string          `json:"pid"`
	Room     string          `json:"roommoid"`
	Confs    []ConfListEntry `json:"confdatainfo"`
	SentAtMs int64           `json:"sentat"`
}

// ConfStateChangeNtf is MCU_MAU_CONFSTATECHANGE_NTF: the node reports a
// change of name or password it applied.
type ConfStateChangeNtf struct {
	Type     string  `json:"type"`
	E164     string  `json:"e164"`
	Node     string  `json:"nodeid"`
	Name     *string `json:"confname,omitempty"`
	Password *string `json:"password,omitempty"`
}

// NodeReleaseNtf is MCU_MAU_RELEASECONF_NTF: a node ended a conference on
// its own (its chair ended it, or it was told to).
type NodeReleaseNtf struct {
	Type   string `json:"type"`
	E164   string `json:"e164"`
	Node   string `json:"nodeid"`
	IP     string `json:"ip"`
	PID    string `json:"pid"`
	Reason string `json:"reason,omitempty"`
}

// RegisterReq is MCU_RMS_REGISTER_REQ: a node joins its platform.
type RegisterReq struct {
	Type     string `json:"type"`
	Node     string `json:"nodeid"`
	IP       string `json:"ip"`
	PID      string `json:"pid"`
	Room     string `json:"roommoid"`
	Platform string `json:"platformmoid"`
	Capacity int    `json:"capacity"`
	Legacy   bool   `json:"legacy,omitempty"`
	Kind     string `json:"kind,omitempty"` // "mcu" (default), "vrs", "mps"
}

// RegisterAck is RMS_MCU_REGISTER_ACK: how often the node must beat.
type RegisterAck struct {
	Type                string `json:"type"`
	HeartbeatIntervalMs int64  `json:"heartbeatms"`
	ConfListIntervalMs  int64  `json:"conflistms"`
}

// HeartbeatNtf is MCU_RMS_HEARTBEAT_NTF. It repeats the registration so
// that an RMS that restarted learns the node again from its next beat.
type HeartbeatNtf struct {
	Type     string `json:"type"`
	Node     string `json:"nodeid"`
	IP       string `json:"ip"`
	PID      string `json:"pid"`
	Room     string `json:"roommoid"`
	Platform string `json:"platformmoid"`
	Kind     string `json:"kind,omitempty"`
	Legacy   bool   `json:"legacy,omitempty"`
	Confs    int    `json:"confs"`
	Capacity int    `json:"capacity"`
}

// Server is a media server in a GET_RES_ACK list.
type Server struct {
	Node     string `json:"nodeid"`
	IP       string `json:"ip"`
	PID      string `json:"pid,omitempty"`
	Room     string `json:"roommoid,omitempty"`
	Confs    int    `json:"confs"`
	Capacity int    `json:"capacity"`
}

// GetResReq is GET_RES_REQ: which nodes may take a conference of this user
// domain. Exclude lists rooms the caller will not use (a failed room).
type GetResReq struct {
	Type       string   `json:"type"`
	Domain     string   `json:"moid"`
	Scale      int      `json:"scale,omitempty"`
	Resolution string   `json:"resolution,omitempty"`
	Recording  bool     `json:"recording,omitempty"`
	Exclude    []string `json:"excluderooms,omitempty"`
}

// GetResAck is GET_RES_ACK (000 §1.4): the preferred room and the live
// nodes of every healthy room, the preferred room's first.
type GetResAck struct {
	Type string   `json:"type"`
	Room string   `json:"roommoid"`
	MCU  []Server `json:"mcu"`
	VRS  []Server `json:"vrs"`
	MPS  []Server `json:"mps"`
}

// NodeStateNtf is RMS_NODE_STATE_NTF: RMS saw a node come up or go down.
type NodeStateNtf struct {
	Type   string `json:"type"`
	Node   string `json:"nodeid"`
	IP     string `json:"ip"`
	PID    string `json:"pid"`
	Room   string `json:"roommoid"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Legacy bool   `json:"legacy,omitempty"`
}

// NodeInfo is one node in RMS_NODELIST_ACK.
type NodeInfo struct {
	Node          string `json:"nodeid"`
	IP            string `json:"ip"`
	PID           string `json:"pid"`
	Room          string `json:"roommoid"`
	Kind          string `json:"kind"`
	State         string `json:"state"`
	Capacity      int    `json:"capacity"`
	Confs         int    `json:"confs"`
	Legacy        bool   `json:"legacy,omitempty"`
	LastBeatMs    int64  `json:"lastbeat"`
	RegisteredAtM int64  `json:"registeredat"`
}

// NodeListAck is RMS_NODELIST_ACK.
type NodeListAck struct {
	Type  string     `json:"type"`
	Nodes []NodeInfo `json:"nodes"`
}

// RoomInfo is one server room with its state.
type RoomInfo struct {
	Room      string `json:"roommoid"`
	Name      string `json:"name"`
	Platform  string `json:"platformmoid"`
	RoomType  int    `json:"roomtype"` // 0 main, 1 secondary
	State     string `json:"state"`    // "normal" or "abnormal"
	LiveNodes int    `json:"livenodes"`
	// Reason says why the room is abnormal; Manual that an operator failed
	// it (only an operator recovers it then); SinceMs when it last changed.
	Reason  string `json:"reason,omitempty"`
	Manual  bool   `json:"manual,omitempty"`
	SinceMs int64  `json:"since,omitempty"`
}

// RoomListAck is RMS_ROOMLIST_ACK.
type RoomListAck struct {
	Type  string     `json:"type"`
	Rooms []RoomInfo `json:"rooms"`
}

// Room states (000 §1.2).
const (
	RoomNormal   = "normal"
	RoomAbnormal = "abnormal"
)

// ServerRoomStateNtf is SERVER_ROOM_STATE_NOTIFY from PMS: every room of
// the platform with its state, broadcast on every change and sent in answer
// to SERVER_ROOM_STATE_REQ.
type ServerRoomStateNtf struct {
	Type     string     `json:"type"`
	Platform string     `json:"platformmoid"`
	Rooms    []RoomInfo `json:"rooms"`
}

// ServerRoomStateReq is SERVER_ROOM_STATE_REQ: the room states of a
// platform, on monitor.req.<platform>.
type ServerRoomStateReq struct {
	Type     string `json:"type"`
	Platform string `json:"platformmoid"`
}

// ServerRoomSetReq is SERVER_ROOM_SET_REQ: an operator fails (State
// abnormal) or recovers (State normal) a room by hand. The answer is
// SERVER_ROOM_SET_ACK (a ServerRoomStateNtf) or SERVER_ROOM_SET_NACK.
type ServerRoomSetReq struct {
	Type   string `json:"type"`
	Room   string `json:"roommoid"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// GetConfListCmd is MAU_MCU_GETCONFLIST_CMD: report your conference list
// now (a scheduler that just started wants it).
type GetConfListCmd struct {
	Type string `json:"type"`
}
