package protocol

// Breakout rooms (seed 002, SPEC §5): the BMS client protocol spoken over
// WebSocket, and the AUDIO_* messages the breakout service sends to the
// media node running a conference (its mixer and its forwarder, cdts).
//
// Field names are the seed's, spelling included (userId inside a user item,
// userID in commands). Where Convene differs from the seed:
//
//   - confID carries the conference's e164 (a string), the one identifier
//     Convene has for a conference; the seed's numeric ConfID has no
//     counterpart here.
//   - Every *_NOTIFY may carry "message", a sentence saying what to do when
//     statusCode is not 0.
//   - The seed names BMS_CONF_INFO_REQUEST only; its answer here is
//     BMS_CONF_INFO_NOTIFY. AUDIO_USER_MUTE (with the seed's two group
//     modes), AUDIO_USER_AUDIO_STATE and BMS_ERROR_NOTIFY stand for the
//     audio-state interfaces the seed refers to without naming.
//   - The AUDIO_* node messages carry "version", the breakout state's
//     version that produced them: a node handles its messages concurrently,
//     so it keeps, per item, the message of the highest version.
//   - AUDIO_BREAKOUT_SUBSCRIBE_BREAKOUT_ROOMS_TO_MIXER carries "user", so
//     that a full update that leaves a user no mixer subscription can be
//     said at all; it holds that one user's subscriptions.
//   - AudioConfig_mixer_info has no "config": audio encoding is out of scope.
//   - A client may ask for the compact form of
//     BMS_CONF_BREAKOUT_ROOMS_START_NOTIFY (notify=compact on its WebSocket
//     URL): the rooms and its own entry instead of every user's, so that a
//     start to a thousand users is not a thousand copies of the whole plan.
//     Clients that do not ask get the seed's message.

// Message types of the BMS client protocol (client <-> breakout service).
const (
	BMSConfInfoRequest                 = "BMS_CONF_INFO_REQUEST"
	BMSConfInfoNotify                  = "BMS_CONF_INFO_NOTIFY"
	BMSBreakoutRoomsStart              = "BMS_CONF_BREAKOUT_ROOMS_START"
	BMSBreakoutRoomsStartNotify        = "BMS_CONF_BREAKOUT_ROOMS_START_NOTIFY"
	BMSGetBreakoutRoomsList            = "BMS_CONF_GET_BREAKOUT_ROOMS_LIST"
	BMSGetBreakoutRoomsListNotify      = "BMS_CONF_GET_BREAKOUT_ROOMS_LIST_NOTIFY"
	BMSSetUserBreakoutRoom             = "BMS_CONF_SET_USER_BREAKOUT_ROOM"
	BMSSetUserBreakoutRoomNotify       = "BMS_CONF_SET_USER_BREAKOUT_ROOM_NOTIFY"
	BMSBreakoutRoomsStop               = "BMS_CONF_BREAKOUT_ROOMS_STOP"
	BMSBreakoutRoomsStopNotify         = "BMS_CONF_BREAKOUT_ROOMS_STOP_NOTIFY"
	AudioRecordBreakoutRoom            = "AUDIO_RECORD_BREAKOUT_ROOM"
	AudioRecordBreakoutRoomNotify      = "AUDIO_RECORD_BREAKOUT_ROOM_NOTIFY"
	AudioUserSubscribeInBreakout       = "AUDIO_USER_SUBSCRIBE_IN_BREAKOUT_ROOM"
	AudioUserSubscribeInBreakoutNotify = "AUDIO_USER_SUBSCRIBE_IN_BREAKOUT_ROOM_NOTIFY"
	// AUDIO_USER_MUTE is the mute interface with the seed's two group
	// modes added (MuteGroupAll, UnmuteGroupAll, with groupID = roomID).
	AudioUserMute       = "AUDIO_USER_MUTE"
	AudioUserMuteNotify = "AUDIO_USER_MUTE_NOTIFY"
	// AUDIO_USER_AUDIO_STATE opens or closes a user's audio and sets its
	// channel; its notify also reports users muted as a side effect (the
	// speaker limit on a return to the main room).
	AudioUserAudioState       = "AUDIO_USER_AUDIO_STATE"
	AudioUserAudioStateNotify = "AUDIO_USER_AUDIO_STATE_NOTIFY"
	// BMS_ERROR_NOTIFY answers a message the service cannot take: an
	// unknown type, or not JSON.
	BMSErrorNotify = "BMS_ERROR_NOTIFY"
)

// Message types the breakout service sends the media node (mixer and cdts).
const (
	AudioBreakoutRoomStateToMixer = "AUDIO_BREAKOUT_ROOM_STATE_TO_MIXER"
	AudioBreakoutRoomStateToCDTS  = "AUDIO_BREAKOUT_ROOM_STATE_TO_CDTS"
	AudioBreakoutSubscribeToMixer = "AUDIO_BREAKOUT_SUBSCRIBE_BREAKOUT_ROOMS_TO_MIXER"
	AudioBreakoutSubscribeToCDTS  = "AUDIO_BREAKOUT_SUBSCRIBE_BREAKOUT_ROOMS_TO_CDTS"
)

// BMSFanout is what one breakout-service instance publishes for every
// instance to push to its own WebSocket clients of a conference.
const BMSFanout = "BMS_FANOUT"

// SubjectBreakout carries a conference's client notifications between
// breakout-service instances.
func SubjectBreakout(e164 string) string { return "bms." + e164 }

// Breakout constants of seed 002.
const (
	// BreakoutMainRoom is the main room's id.
	BreakoutMainRoom = 300
	// BreakoutListen and BreakoutSpeak are the privilege bits.
	BreakoutListen = 0x01
	BreakoutSpeak  = 0x02
	// MixerServer and MixerClient are the rooms' mixerMode values.
	MixerServer = 0
	MixerClient = 1
)

// Audio states of a user (audioState).
const (
	AudioClosed   = 0 // no audio: hears nothing, says nothing
	AudioMuted    = 1 // hears, says nothing
	AudioUnmuted  = 2 // hears and speaks (as its privilege allows)
	maxAudioState = AudioUnmuted
)

// ValidAudioState reports whether v is an audio state.
func ValidAudioState(v uint32) bool { return v <= maxAudioState }

// Client types (clientType). Phone users (PSTN, through a gateway) are
// allowed in the main room only.
const (
	ClientUnknown = 0
	ClientPC      = 1
	ClientMobile  = 2
	ClientPhone   = 3
	ClientWeb     = 4
)

// Roles of a breakout client (role): the host starts, stops and moves
// others.
const (
	RoleParticipant = 0
	RoleHost        = 1
)

// Modes of AUDIO_USER_MUTE.
const (
	MuteUser       = 0 // mute userID
	UnmuteUser     = 1 // unmute userID
	MuteAll        = 2 // mute everyone in the main room (others are only told)
	UnmuteAll      = 3 // unmute the main room, up to the speaker limit
	MuteGroupAll   = 4 // mute everyone in room groupID
	UnmuteGroupAll = 5 // unmute room groupID (the main room up to the limit)
)

// Status codes of the BMS notifications (statusCode). They are stable:
// clients switch on them.
const (
	BreakoutOK             = 0  // done
	BreakoutNotHost        = 1  // only the host may do this
	BreakoutNotActive      = 2  // breakout rooms are not running
	BreakoutAlreadyActive  = 3  // breakout rooms run already: stop them first
	BreakoutCountdown      = 4  // the rooms are closing: nobody may join one
	BreakoutUnknownRoom    = 5  // no such room in the plan
	BreakoutUnknownUser    = 6  // no such user in the conference or the plan
	BreakoutConfNotRunning = 7  // the conference is not running
	BreakoutBadRequest     = 8  // the message is malformed or inconsistent
	BreakoutPhoneMainOnly  = 9  // phone users stay in the main room
	BreakoutSpeakerLimit   = 10 // the main room has as many speakers as allowed
	BreakoutNotAllowed     = 11 // a participant may only go to its preset room or the main room
	BreakoutNotInConf      = 12 // the user is in the plan but not in the conference
	BreakoutConfEnded      = 13 // the conference ended
	BreakoutBusy           = 14 // the state kept changing under the request: retry
	BreakoutInternal       = 15 // the service failed (store, bus): retry later
)

// BreakoutRoomUserItem is BREAKOUT_ROOM_USER_ITEM: one user of the plan.
// A user who is not in the conference has userId 0 (or its last one) and
// userCurrentRoomId 0.
type BreakoutRoomUserItem struct {
	UserID            uint32 `json:"userId"`
	UserUmsID         uint32 `json:"userUmsId"`
	UserPresetRoomID  uint32 `json:"userPresetRoomId"`
	UserCurrentRoomID uint32 `json:"userCurrentRoomId"`
	Privilege         uint32 `json:"privilege"`
	Extend            string `json:"extend"`
}

// BreakoutRoomInfo is BREAKOUT_ROOM_INFO: a room with the users whose
// preset room it is.
type BreakoutRoomInfo struct {
	RoomID    uint32                 `json:"roomID"`
	Name      string                 `json:"name"`
	MixerMode uint32                 `json:"mixerMode"`
	Extend    string                 `json:"extend"`
	UserItems []BreakoutRoomUserItem `json:"userItems"`
}

// ConfInfoRequest is BMS_CONF_INFO_REQUEST: a client entering the
// conference asks about it; while breakout rooms run, the list follows.
type ConfInfoRequest struct {
	Type   string `json:"type"`
	ConfID string `json:"confID"`
	UserID uint32 `json:"userID"`
}

// ConfInfoNotify is BMS_CONF_INFO_NOTIFY: status 1 while breakout rooms
// run, delayTime the seconds left of a closing countdown.
type ConfInfoNotify struct {
	Type       string `json:"type"`
	StatusCode uint32 `json:"statusCode"`
	Message    string `json:"message,omitempty"`
	ConfID     string `json:"confID"`
	UserID     uint32 `json:"userID"`
	UserUmsID  uint32 `json:"userUmsId"`
	Role       uint32 `json:"role"`
	Status     uint32 `json:"status"`
	DelayTime  uint32 `json:"delayTime"`
	Timestamp  uint64 `json:"timestamp"`
}

// BreakoutRoomsStart is BMS_CONF_BREAKOUT_ROOMS_START.
type BreakoutRoomsStart struct {
	Type      string             `json:"type"`
	ConfID    string             `json:"confID"`
	UserID    uint32             `json:"userID"`
	Extend    string             `json:"extend"`
	RoomInfos []BreakoutRoomInfo `json:"roomInfos"`
}

// BreakoutRoomsStartNotify is BMS_CONF_BREAKOUT_ROOMS_START_NOTIFY;
// timestamp is the server's time in seconds.
type BreakoutRoomsStartNotify struct {
	Type       string             `json:"type"`
	StatusCode uint32             `json:"statusCode"`
	Message    string             `json:"message,omitempty"`
	Timestamp  uint64             `json:"timestamp"`
	ConfID     string             `json:"confID"`
	UserID     uint32             `json:"userID"`
	Extend     string             `json:"extend"`
	RoomInfos  []BreakoutRoomInfo `json:"roomInfos"`
}

// Forms of the notifications a WebSocket client asks for with the
// notify query parameter of its URL (.../breakout/ws?ticket=...&notify=).
// The form changes BMS_CONF_BREAKOUT_ROOMS_START_NOTIFY only.
const (
	// NotifyFull is the seed's messages, every user's entry in every
	// START_NOTIFY; the default.
	NotifyFull = "full"
	// NotifyCompact is the START_NOTIFY each user can act on without the
	// whole plan (BreakoutRoomsStartCompactNotify); the plan comes with
	// BMS_CONF_GET_BREAKOUT_ROOMS_LIST when the client wants it.
	NotifyCompact = "compact"
)

// BreakoutRoomBrief is a room of the compact START_NOTIFY: the seed's
// BREAKOUT_ROOM_INFO without its users, with how many users have it as
// their preset room.
type BreakoutRoomBrief struct {
	RoomID    uint32 `json:"roomID"`
	Name      string `json:"name"`
	MixerMode uint32 `json:"mixerMode"`
	Extend    string `json:"extend"`
	UserCount uint32 `json:"userCount"`
}

// BreakoutRoomsStartCompactNotify is BMS_CONF_BREAKOUT_ROOMS_START_NOTIFY
// in the compact form (form "compact"), for the clients that asked for it:
// the seed's fields but roomInfos, the rooms without their users, the
// receiving user's own entry (userItem; absent when the plan has none for
// it) and the breakout state's version after the start (0 when the
// service instance that made the change does not say). A
// BMS_CONF_GET_BREAKOUT_ROOMS_LIST answer of that version or higher holds
// the whole plan.
type BreakoutRoomsStartCompactNotify struct {
	Type       string                `json:"type"`
	StatusCode uint32                `json:"statusCode"`
	Message    string                `json:"message,omitempty"`
	Timestamp  uint64                `json:"timestamp"`
	ConfID     string                `json:"confID"`
	UserID     uint32                `json:"userID"`
	Extend     string                `json:"extend"`
	Form       string                `json:"form"`
	Version    int64                 `json:"version"`
	Rooms      []BreakoutRoomBrief   `json:"rooms"`
	UserItem   *BreakoutRoomUserItem `json:"userItem,omitempty"`
}

// GetBreakoutRoomsList is BMS_CONF_GET_BREAKOUT_ROOMS_LIST.
type GetBreakoutRoomsList struct {
	Type   string `json:"type"`
	ConfID string `json:"confID"`
	UserID uint32 `json:"userID"`
}

// GetBreakoutRoomsListNotify is BMS_CONF_GET_BREAKOUT_ROOMS_LIST_NOTIFY:
// the plan (kept after a stop, for the host to edit), with status 1 while
// the rooms run and delayTime the seconds left of a closing countdown.
type GetBreakoutRoomsListNotify struct {
	Type       string             `json:"type"`
	StatusCode uint32             `json:"statusCode"`
	Message    string             `json:"message,omitempty"`
	ConfID     string             `json:"confID"`
	UserID     uint32             `json:"userID"`
	Extend     string             `json:"extend"`
	Status     uint32             `json:"status"`
	DelayTime  uint32             `json:"delayTime"`
	RoomInfos  []BreakoutRoomInfo `json:"roomInfos"`
	// Version is the breakout state's version the list was read at, for
	// clients of the compact form only (absent in the seed's form).
	Version int64 `json:"version,omitempty"`
}

// SetUserBreakoutRoom is BMS_CONF_SET_USER_BREAKOUT_ROOM: join, switch
// (userCurrentRoomId the room) or leave (0: back to the main room).
type SetUserBreakoutRoom struct {
	Type       string               `json:"type"`
	ConfID     string               `json:"confID"`
	OperatorID uint32               `json:"operatorID"`
	DestItem   BreakoutRoomUserItem `json:"destItem"`
}

// SetUserBreakoutRoomNotify is BMS_CONF_SET_USER_BREAKOUT_ROOM_NOTIFY; on
// success destItem is the user's entry as it now is.
type SetUserBreakoutRoomNotify struct {
	Type       string               `json:"type"`
	StatusCode uint32               `json:"statusCode"`
	Message    string               `json:"message,omitempty"`
	ConfID     string               `json:"confID"`
	OperatorID uint32               `json:"operatorID"`
	DestItem   BreakoutRoomUserItem `json:"destItem"`
}

// BreakoutRoomsStop is BMS_CONF_BREAKOUT_ROOMS_STOP: delayTime 0 ends the
// rooms now, more starts a countdown of that many seconds.
type BreakoutRoomsStop struct {
	Type      string `json:"type"`
	ConfID    string `json:"confID"`
	UserID    uint32 `json:"userID"`
	DelayTime uint32 `json:"delayTime"`
}

// BreakoutRoomsStopNotify is BMS_CONF_BREAKOUT_ROOMS_STOP_NOTIFY. A
// countdown is announced with its delayTime; the rooms' end with delayTime
// 0, when everyone is back in the main room.
type BreakoutRoomsStopNotify struct {
	Type       string `json:"type"`
	StatusCode uint32 `json:"statusCode"`
	Message    string `json:"message,omitempty"`
	ConfID     string `json:"confID"`
	UserID     uint32 `json:"userID"`
	DelayTime  uint32 `json:"delayTime"`
}

// RecordBreakoutRoom is AUDIO_RECORD_BREAKOUT_ROOM: which room the
// conference's recording takes its audio from.
type RecordBreakoutRoom struct {
	Type   string `json:"type"`
	ConfID string `json:"confID"`
	RoomID uint32 `json:"roomID"`
}

// RecordBreakoutRoomNotify is AUDIO_RECORD_BREAKOUT_ROOM_NOTIFY.
type RecordBreakoutRoomNotify struct {
	Type       string `json:"type"`
	StatusCode uint32 `json:"statusCode"`
	Message    string `json:"message,omitempty"`
	ConfID     string `json:"confID"`
	RoomID     uint32 `json:"roomID"`
}

// BreakoutRoomSubscribeInfo is one room a user also hears (listen) or
// also speaks in (speak).
type BreakoutRoomSubscribeInfo struct {
	RoomID    uint32 `json:"roomID"`
	Privilege uint32 `json:"privilege"`
}

// UserSubscribeInBreakoutRoom is AUDIO_USER_SUBSCRIBE_IN_BREAKOUT_ROOM: the
// full list of other rooms user subscribes to (its own room needs none).
type UserSubscribeInBreakoutRoom struct {
	Type           string                      `json:"type"`
	ConfID         string                      `json:"confID"`
	User           uint32                      `json:"user"`
	SubscribeInfos []BreakoutRoomSubscribeInfo `json:"subscribeInfos"`
}

// UserSubscribeInBreakoutRoomNotify is
// AUDIO_USER_SUBSCRIBE_IN_BREAKOUT_ROOM_NOTIFY.
type UserSubscribeInBreakoutRoomNotify struct {
	Type           string                      `json:"type"`
	StatusCode     uint32                      `json:"statusCode"`
	Message        string                      `json:"message,omitempty"`
	ConfID         string                      `json:"confID"`
	User           uint32                      `json:"user"`
	SubscribeInfos []BreakoutRoomSubscribeInfo `json:"subscribeInfos"`
}

// UserMute is AUDIO_USER_MUTE; groupID is the room of the group modes.
type UserMute struct {
	Type       string `json:"type"`
	ConfID     string `json:"confID"`
	OperatorID uint32 `json:"operatorID"`
	UserID     uint32 `json:"userID"`
	Mode       uint32 `json:"mode"`
	GroupID    uint32 `json:"groupID"`
}

// UserAudioInfo is a user's audio state in a notification.
type UserAudioInfo struct {
	UserID     uint32 `json:"userID"`
	AudioState uint32 `json:"audioState"`
}

// UserMuteNotify is AUDIO_USER_MUTE_NOTIFY; userInfos are the users whose
// state changed.
type UserMuteNotify struct {
	Type       string          `json:"type"`
	StatusCode uint32          `json:"statusCode"`
	Message    string          `json:"message,omitempty"`
	ConfID     string          `json:"confID"`
	OperatorID uint32          `json:"operatorID"`
	UserID     uint32          `json:"userID"`
	Mode       uint32          `json:"mode"`
	GroupID    uint32          `json:"groupID"`
	UserInfos  []UserAudioInfo `json:"userInfos"`
}

// UserAudioState is AUDIO_USER_AUDIO_STATE: a user opens (muted or not) or
// closes its audio; dtsChannelID, when not 0, is its forwarder channel.
type UserAudioState struct {
	Type         string `json:"type"`
	ConfID       string `json:"confID"`
	UserID       uint32 `json:"userID"`
	AudioState   uint32 `json:"audioState"`
	DTSChannelID uint32 `json:"dtsChannelID"`
}

// UserAudioStateNotify is AUDIO_USER_AUDIO_STATE_NOTIFY.
type UserAudioStateNotify struct {
	Type       string          `json:"type"`
	StatusCode uint32          `json:"statusCode"`
	Message    string          `json:"message,omitempty"`
	ConfID     string          `json:"confID"`
	OperatorID uint32          `json:"operatorID"`
	UserInfos  []UserAudioInfo `json:"userInfos"`
}

// BreakoutRoomUserInfo is BreakoutRoomUserInfo: a user of a room for cdts,
// whose privilege (listen, speak) decides what cdts forwards.
type BreakoutRoomUserInfo struct {
	UserID       uint32 `json:"userID"`
	Privilege    uint32 `json:"privilege"`
	DTSChannelID uint32 `json:"dtsChannelID"`
}

// BreakoutRoomAudioInfo is BreakoutRoomInfo of the cdts messages.
type BreakoutRoomAudioInfo struct {
	RoomID    uint32                 `json:"roomID"`
	MixerMode uint32                 `json:"mixerMode"`
	UserInfos []BreakoutRoomUserInfo `json:"userInfos"`
}

// BreakoutRoomStateToCDTS is AUDIO_BREAKOUT_ROOM_STATE_TO_CDTS: every
// room with its users; status 1 open, 0 closed.
type BreakoutRoomStateToCDTS struct {
	Type      string                  `json:"type"`
	ConfID    string                  `json:"confID"`
	Version   int64                   `json:"version"`
	Status    uint32                  `json:"status"`
	RoomInfos []BreakoutRoomAudioInfo `json:"roomInfos"`
}

// AudioConfigMixerInfo is AudioConfig_mixer_info: a user the mixer mixes.
type AudioConfigMixerInfo struct {
	User         uint32 `json:"user"`
	Privilege    uint32 `json:"privilege"`
	DTSChannelID uint32 `json:"dtsChannelID"`
	ClientType   uint16 `json:"clientType"`
	Role         uint16 `json:"role"`
}

// BreakoutRoomUserInfoMixer is BreakoutRoomUserInfoMixer: a server-mixed
// room with the users who speak in it.
type BreakoutRoomUserInfoMixer struct {
	RoomID    uint32                 `json:"roomID"`
	UserInfos []AudioConfigMixerInfo `json:"userInfos"`
}

// BreakoutRoomStateToMixer is AUDIO_BREAKOUT_ROOM_STATE_TO_MIXER: the
// rooms the mixer mixes with their speakers; status 1 open, 0 closed (then
// one room, the main one, as the old mixer join had). recordRoomID is the
// room the recording takes.
type BreakoutRoomStateToMixer struct {
	Type         string                      `json:"type"`
	ConfID       string                      `json:"confID"`
	Version      int64                       `json:"version"`
	Status       uint32                      `json:"status"`
	RecordRoomID uint32                      `json:"recordRoomID"`
	RoomInfos    []BreakoutRoomUserInfoMixer `json:"roomInfos"`
}

// UserAudioSubscribeInfo is a user's full list of subscriptions.
type UserAudioSubscribeInfo struct {
	User           uint32                      `json:"user"`
	SubscribeInfos []BreakoutRoomSubscribeInfo `json:"subscribeInfos"`
}

// BreakoutSubscribeToCDTS is
// AUDIO_BREAKOUT_SUBSCRIBE_BREAKOUT_ROOMS_TO_CDTS: full updates of the
// subscriptions of users of room groupID.
type BreakoutSubscribeToCDTS struct {
	Type               string                   `json:"type"`
	ConfID             string                   `json:"confID"`
	Version            int64                    `json:"version"`
	GroupID            uint32                   `json:"groupID"`
	UserSubscribeInfos []UserAudioSubscribeInfo `json:"userSubscribeInfos"`
}

// UserAudioSubscribeInfoMixer is one server-mixed room a user speaks in
// by subscription.
type UserAudioSubscribeInfoMixer struct {
	RoomID uint32               `json:"roomID"`
	Info   AudioConfigMixerInfo `json:"info"`
}

// BreakoutSubscribeToMixer is
// AUDIO_BREAKOUT_SUBSCRIBE_BREAKOUT_ROOMS_TO_MIXER: the full list of
// server-mixed rooms user speaks in by subscription (empty: none).
type BreakoutSubscribeToMixer struct {
	Type      string                        `json:"type"`
	ConfID    string                        `json:"confID"`
	Version   int64                         `json:"version"`
	User      uint32                        `json:"user"`
	RoomInfos []UserAudioSubscribeInfoMixer `json:"roomInfos"`
}

// ErrorNotify is BMS_ERROR_NOTIFY: requestType is the type of the message
// refused ("" when it had none).
type ErrorNotify struct {
	Type        string `json:"type"`
	StatusCode  uint32 `json:"statusCode"`
	Message     string `json:"message,omitempty"`
	RequestType string `json:"requestType"`
}
