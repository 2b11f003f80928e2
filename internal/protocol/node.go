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

// Batch forms of the restore and release messages: a lost node's or
// room's conferences move in bulk, one request per target node carrying
// many conferences, answered per conference.
const (
	MAUMCURestoreConfsReq = "MAU_MCU_RESTORECONFS_REQ"
	MCURestoreConfsAck    = "MCU_MAU_RESTORECONFS_ACK"
	MCURestoreConfsNack   = "MCU_MAU_RESTORECONFS_NACK"
	MAUMCUReleaseConfsCmd = "MAU_MCU_RELEASECONFS_CMD"
	MCUReleaseConfsAck    = "MCU_MAU_RELEASECONFS_ACK"
	// MAUMCUConfListAck tells a node which version of its conference list
	// the scheduler holds: from then on the node may report only what
	// changed since (ConfListNtf.Delta).
	MAUMCUConfListAck = "MAU_MCU_CONFLIST_ACK"
)

// NodeConfsReq is MAU_MCU_RESTORECONFS_REQ: host every one of these
// conferences. A conference the node already hosts counts as restored (a
// request repeated after a lost answer changes nothing).
type NodeConfsReq struct {
	Type  string       `json:"type"`
	Confs []Conference `json:"confs"`
}

// NodeConfResult is one conference's outcome in a batch answer: ErrCode
// empty when it is hosted.
type NodeConfResult struct {
	E164    string `json:"e164"`
	ErrCode string `json:"errcode,omitempty"`
	ErrMsg  string `json:"errmsg,omitempty"`
}

// NodeConfsAck is MCU_MAU_RESTORECONFS_ACK: one result per conference of
// the request. A request refused whole is MCU_MAU_RESTORECONFS_NACK (a
// Nack).
type NodeConfsAck struct {
	Type    string           `json:"type"`
	IP      string           `json:"ip"`
	PID     string           `json:"pid"`
	Results []NodeConfResult `json:"results"`
}

// ConfsCmd is MAU_MCU_RELEASECONFS_CMD: stop hosting these conferences.
// The scheduler sends it for copies its store does not count on that node,
// so the node answers (MCU_MAU_RELEASECONFS_ACK, a ConfsAck) without a
// release notice per conference.
type ConfsCmd struct {
	Type  string   `json:"type"`
	E164s []string `json:"e164s"`
}

// ConfsAck is MCU_MAU_RELEASECONFS_ACK: the conferences of the command the
// node hosted and ended (the others it did not host).
type ConfsAck struct {
	Type     string   `json:"type"`
	Released []string `json:"released"`
}

// ConfListEntry is one conference in MCU_MAU_CONFLIST_NTF.
type ConfListEntry struct {
	E164       string `json:"e164"`
	CreateTime int64  `json:"createtime"`
}

// ConfListNtf is MCU_MAU_CONFLIST_NTF (001 §1.4 with the room added): what
// a node really hosts, sent periodically.
//
// A node that counts the changes of its list gives each list a Version;
// one that does not sends every list full (Version 0). Once the scheduler
// acknowledged a version (MAU_MCU_CONFLIST_ACK), the node may send a delta
// instead: Delta set, Since the acknowledged version, Confs the
// conferences added (or re-created) since, Removed those ended since. Count
// and Digest describe the whole list after the change either way: how many
// conferences, and the XOR of ListEntryHash over them. A receiver that does
// not hold the list at a version from Since to Version asks for it whole
// (MAU_MCU_GETCONFLIST_CMD).
type ConfListNtf struct {
	Type     string          `json:"type"`
	Node     string          `json:"nodeid"`
	IP       string          `json:"ip"`
	PID      string          `json:"pid"`
	Room     string          `json:"roommoid"`
	Confs    []ConfListEntry `json:"confdatainfo"`
	SentAtMs int64           `json:"sentat"`
	Version  uint64          `json:"version,omitempty"`
	Delta    bool            `json:"delta,omitempty"`
	Since    uint64          `json:"since,omitempty"`
	Removed  []string        `json:"removed,omitempty"`
	Count    int             `json:"count,omitempty"`
	Digest   uint64          `json:"digest,omitempty,string"`
}

// ConfListAck is MAU_MCU_CONFLIST_ACK: the scheduler holds the node's list
// (of process PID) as of Version.
type ConfListAck struct {
	Type    string `json:"type"`
	PID     string `json:"pid"`
	Version uint64 `json:"version"`
}

// ListEntryHash is one conference's share of a conference list's digest
// (FNV-1a, 64 bits, over the e164 and the create time): the XOR of the
// shares of the conferences a node hosts changes with any of them, and
// both ends keep it up to date one conference at a time.
func ListEntryHash(e164 string, createTime int64) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(e164); i++ {
		h ^= uint64(e164[i])
		h *= prime
	}
	h ^= '/'
	h *= prime
	for i := 0; i < 8; i++ {
		h ^= uint64(byte(createTime >> (8 * i)))
		h *= prime
	}
	return h
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
	// SIP is the node's SIP contact (a sip: URI where it takes the calls
	// to the conferences it hosts), when it has one.
	SIP string `json:"sip,omitempty"`
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
	SIP      string `json:"sip,omitempty"` // as in RegisterReq
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
	// SIP is the node's SIP contact, as it registered it.
	SIP string `json:"sip,omitempty"`
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
// now (a scheduler that just started wants it). With Delta, the changes
// since the acknowledged version will do; without, the list goes whole.
type GetConfListCmd struct {
	Type  string `json:"type"`
	Delta bool   `json:"delta,omitempty"`
}
