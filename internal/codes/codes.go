package codes

import (
	"net/http"
	"sort"
)

// Requests and access.
const (
	BadRequest       = "BAD_REQUEST"
	Unauthorized     = "UNAUTHORIZED"
	Forbidden        = "FORBIDDEN"
	NotFound         = "NOT_FOUND"
	MethodNotAllowed = "METHOD_NOT_ALLOWED"
	Internal         = "INTERNAL"
)

// Conferences, domains, licences, numbers, templates.
const (
	ConfNotFound     = "CONF_NOT_FOUND"
	ConfNotRunning   = "CONF_NOT_RUNNING"
	DomainNotFound   = "DOMAIN_NOT_FOUND"
	DomainDisabled   = "DOMAIN_DISABLED"
	LicenseExhausted = "LICENSE_EXHAUSTED"
	E164InUse        = "E164_IN_USE"
	E164Exhausted    = "E164_EXHAUSTED"
	E164OutOfSegment = "E164_OUT_OF_SEGMENT"
	DurationLimit    = "DURATION_LIMIT"
	MonitorNotFound  = "MONITOR_NOT_FOUND"
	TemplateNotFound = "TEMPLATE_NOT_FOUND"
	RenameRejected   = "RENAME_REJECTED"
	BookingNotFound  = "BOOKING_NOT_FOUND"
)

// Resources, media nodes, rooms, platforms.
const (
	NoResources       = "NO_RESOURCES"
	PlatformNotServed = "PLATFORM_NOT_SERVED"
	UnknownPlatform   = "UNKNOWN_PLATFORM"
	UnknownRoom       = "UNKNOWN_ROOM"
	NodeRejected      = "NODE_REJECTED"
	NodeTimeout       = "NODE_TIMEOUT"
	NodeFull          = "NODE_FULL"
	RMSError          = "RMS_ERROR"
)

// Parties the API calls over the bus that are not there or did not answer.
const (
	SchedulerUnavailable = "SCHEDULER_UNAVAILABLE"
	SchedulerTimeout     = "SCHEDULER_TIMEOUT"
	RMSUnavailable       = "RMS_UNAVAILABLE"
	RMSTimeout           = "RMS_TIMEOUT"
	RegistryUnavailable  = "REGISTRY_UNAVAILABLE"
	RegistryTimeout      = "REGISTRY_TIMEOUT"
	PMSUnavailable       = "PMS_UNAVAILABLE"
	PMSTimeout           = "PMS_TIMEOUT"
)

// The state store.
const (
	StoreError       = "STORE_ERROR"
	StoreUnreachable = "STORE_UNREACHABLE"
	StoreLocked      = "STORE_LOCKED"
	StoreCorrupt     = "STORE_CORRUPT"
	StorePersist     = "STORE_PERSIST"
)

// The records database.
const (
	RecordsUnavailable = "RECORDS_UNAVAILABLE"
)

// Breakout rooms (the statusCodes of the BMS protocol, and its tickets).
const (
	BreakoutUnavailable   = "BREAKOUT_UNAVAILABLE"
	BreakoutNotHost       = "BREAKOUT_NOT_HOST"
	BreakoutNotActive     = "BREAKOUT_NOT_ACTIVE"
	BreakoutAlreadyActive = "BREAKOUT_ALREADY_ACTIVE"
	BreakoutCountdown     = "BREAKOUT_COUNTDOWN"
	BreakoutNotAllowed    = "BREAKOUT_NOT_ALLOWED"
	BreakoutBusy          = "BREAKOUT_BUSY"
	UnknownUser           = "UNKNOWN_USER"
	UserNotInConference   = "USER_NOT_IN_CONFERENCE"
	PhoneMainRoomOnly     = "PHONE_MAIN_ROOM_ONLY"
	SpeakerLimit          = "SPEAKER_LIMIT"
	TicketExpired         = "TICKET_EXPIRED"
	TicketUsed            = "TICKET_USED"
	TicketStale           = "TICKET_STALE"
)

// The host and its plugins.
const (
	PluginStopped  = "PLUGIN_STOPPED"
	PluginFailed   = "PLUGIN_FAILED"
	UnknownPlugin  = "UNKNOWN_PLUGIN"
	HostNotRunning = "HOST_NOT_RUNNING"
	HostConfig     = "HOST_CONFIG"
)

// Entry is a code of the book: its HTTP status and what it means.
type Entry struct {
	Code    string
	Status  int
	Meaning string
}

// book holds every code once.
var book = []Entry{
	{BadRequest, http.StatusBadRequest, "the request is malformed or a field is invalid; the message names the field"},
	{Unauthorized, http.StatusUnauthorized, "no valid bearer token (or WebSocket ticket) came with the request"},
	{Forbidden, http.StatusForbidden, "the token's role may not make this request"},
	{NotFound, http.StatusNotFound, "no such route, platform or registry entry"},
	{MethodNotAllowed, http.StatusMethodNotAllowed, "the path is served, not with this method; Allow lists those it is"},
	{Internal, http.StatusInternalServerError, "an unexpected failure; the message says where"},

	{ConfNotFound, http.StatusNotFound, "no conference has this number (it may have ended)"},
	{ConfNotRunning, http.StatusConflict, "the conference is not running (it is being created or restored)"},
	{DomainNotFound, http.StatusNotFound, "no user domain has this moid on the platform"},
	{DomainDisabled, http.StatusForbidden, "the user domain is disabled and books nothing"},
	{LicenseExhausted, http.StatusConflict, "the domain runs as many conferences of the class as its licence allows"},
	{E164InUse, http.StatusConflict, "the number belongs to a conference or a template already"},
	{E164Exhausted, http.StatusConflict, "every number of the platform's segment is taken"},
	{E164OutOfSegment, http.StatusBadRequest, "the number is outside the platform's number segment"},
	{DurationLimit, http.StatusConflict, "the conference would last longer than a conference may"},
	{MonitorNotFound, http.StatusNotFound, "the conference has no such monitoring session (it may have expired)"},
	{TemplateNotFound, http.StatusNotFound, "no template has this number"},
	{RenameRejected, http.StatusConflict, "the conference manager refused the name a media node asked for"},
	{BookingNotFound, http.StatusNotFound, "no scheduled conference, personal template or virtual room is booked with this number"},

	{NoResources, http.StatusServiceUnavailable, "no live media node of a normal room can host the conference"},
	{PlatformNotServed, http.StatusServiceUnavailable, "the domain's platform is neither this one nor a failed master it backs up"},
	{UnknownPlatform, http.StatusNotFound, "neither the topology nor the platform monitor knows the platform"},
	{UnknownRoom, http.StatusNotFound, "no server room (or breakout room) has this id"},
	{NodeRejected, http.StatusBadGateway, "the media node refused the request"},
	{NodeTimeout, http.StatusGatewayTimeout, "the media node did not answer in time, or nobody listens for it"},
	{NodeFull, http.StatusServiceUnavailable, "the media node hosts as many conferences as its capacity"},
	{RMSError, http.StatusBadGateway, "the resource manager (RMS) refused the request"},

	{SchedulerUnavailable, http.StatusServiceUnavailable, "no scheduler answers for the platform"},
	{SchedulerTimeout, http.StatusGatewayTimeout, "the scheduler did not answer in time"},
	{RMSUnavailable, http.StatusServiceUnavailable, "no resource manager (RMS) answers for the platform"},
	{RMSTimeout, http.StatusGatewayTimeout, "the resource manager (RMS) did not answer in time"},
	{RegistryUnavailable, http.StatusServiceUnavailable, "no registry answers for the platform"},
	{RegistryTimeout, http.StatusGatewayTimeout, "the registry did not answer in time"},
	{PMSUnavailable, http.StatusServiceUnavailable, "no platform monitor (PMS) answers for the platform"},
	{PMSTimeout, http.StatusGatewayTimeout, "the platform monitor (PMS) did not answer in time"},

	{StoreError, http.StatusInternalServerError, "the state store failed"},
	{StoreUnreachable, http.StatusServiceUnavailable, "another platform's store is not reachable from this API"},
	{StoreLocked, http.StatusServiceUnavailable, "another process has the data directory's store"},
	{StoreCorrupt, http.StatusInternalServerError, "a file of the store's data directory is damaged in a way a crash does not explain"},
	{StorePersist, http.StatusInternalServerError, "the embedded store could not write or fsync its log"},

	{RecordsUnavailable, http.StatusServiceUnavailable, "the records database failed, cannot be reached, or is not configured for the scheduler; the request is safe to repeat"},

	{BreakoutUnavailable, http.StatusServiceUnavailable, "the breakout service is not running on this instance"},
	{BreakoutNotHost, http.StatusForbidden, "only a host of the conference may do this"},
	{BreakoutNotActive, http.StatusConflict, "breakout rooms are not running"},
	{BreakoutAlreadyActive, http.StatusConflict, "breakout rooms are running already"},
	{BreakoutCountdown, http.StatusConflict, "breakout rooms are counting down to their end"},
	{BreakoutNotAllowed, http.StatusForbidden, "the user's privilege does not allow this"},
	{BreakoutBusy, http.StatusServiceUnavailable, "the breakout state kept changing under the change; retry"},
	{UnknownUser, http.StatusNotFound, "no user of the breakout plan has this id"},
	{UserNotInConference, http.StatusConflict, "the user is not in the conference"},
	{PhoneMainRoomOnly, http.StatusConflict, "phone users stay in the main room"},
	{SpeakerLimit, http.StatusConflict, "the main room has as many speakers as it may"},
	{TicketExpired, http.StatusUnauthorized, "the WebSocket ticket's lifetime is over"},
	{TicketUsed, http.StatusUnauthorized, "another connection used the WebSocket ticket already"},
	{TicketStale, http.StatusUnauthorized, "the WebSocket ticket is for an earlier conference with this number"},

	{PluginStopped, http.StatusServiceUnavailable, "what was asked for belongs to a plugin that is stopped"},
	{PluginFailed, http.StatusInternalServerError, "a plugin could not be started"},
	{UnknownPlugin, http.StatusNotFound, "no plugin with this ID is used on the host"},
	{HostNotRunning, http.StatusServiceUnavailable, "the host is starting or stopping"},
	{HostConfig, http.StatusBadRequest, "the host file is refused; the message names the file and the key"},
}

var index = func() map[string]Entry {
	m := make(map[string]Entry, len(book))
	for _, e := range book {
		m[e.Code] = e
	}
	return m
}()

// Status is the HTTP status of code; a code the book does not hold is an
// internal error (500).
func Status(code string) int {
	if e, ok := index[code]; ok {
		return e.Status
	}
	return http.StatusInternalServerError
}

// Lookup is code's entry, and whether the book holds it.
func Lookup(code string) (Entry, bool) {
	e, ok := index[code]
	return e, ok
}

// All is every entry of the book, sorted by code.
func All() []Entry {
	out := append([]Entry(nil), book...)
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}
