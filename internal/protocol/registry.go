package protocol

// Registry entry kinds (000 §7.3 EConfType).
const (
	EntryInstant  = 1 // a running conference
	EntryReserved = 2 // a scheduled conference
	EntryTemplate = 3 // a template
	EntryVirtual  = 4 // a virtual meeting room
)

// RegistryEntry says where a callable number lives now.
type RegistryEntry struct {
	E164         string `json:"e164"`
	Kind         int    `json:"kind"`
	Name         string `json:"name,omitempty"`
	Domain       string `json:"moid"`
	Platform     string `json:"platformmoid"`
	RealPlatform string `json:"realplatformmoid"`
	Room         string `json:"roommoid,omitempty"`
	Node         string `json:"cmu,omitempty"`
	NodeIP       string `json:"mcuip,omitempty"`
	UpdatedMs    int64  `json:"updated"`
}

// RegistryNtf is UPU_CONF_ADD_NTF (upsert) and UPU_CONF_DEL_NTF (only
// E164 and Kind set). Reporter is the platform whose scheduler reports it.
type RegistryNtf struct {
	Type     string        `json:"type"`
	Reporter string        `json:"reporter"`
	Entry    RegistryEntry `json:"entry"`
}

// RegistryClearNtf is UPU_CLEAR_NTF: forget every entry a platform's
// scheduler reported, optionally only those of one source platform.
type RegistryClearNtf struct {
	Type     string `json:"type"`
	Reporter string `json:"reporter"`
	Platform string `json:"platformmoid,omitempty"`
}

// RegistryQuery is UPU_QUERY_REQ and UPU_LIST_REQ.
type RegistryQuery struct {
	Type string `json:"type"`
	E164 string `json:"e164,omitempty"`
	Kind int    `json:"kind,omitempty"`
}

// RegistryQueryAck is UPU_QUERY_ACK.
type RegistryQueryAck struct {
	Type  string        `json:"type"`
	Entry RegistryEntry `json:"entry"`
}

// RegistryListAck is UPU_LIST_ACK.
type RegistryListAck struct {
	Type    string          `json:"type"`
	Entries []RegistryEntry `json:"entries"`
}
