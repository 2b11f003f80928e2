package breakout

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/protocol"
)

// The REST mirror: what a host does over WebSocket, an operator does over
// HTTP with the API's bearer token, as a host that is no user (operator id
// 0). Successes answer 200 with the notification the clients got; refusals
// answer the API's error envelope with the statusCode's stable code
// (StatusName) and HTTP status.

// Routes are the service's routes, to mount on the API (api.Deps.Routes).
func (s *Service) Routes() []api.Route {
	const base = "/v1/conferences/{e164}/breakout"
	h := func(f func(w http.ResponseWriter, r *http.Request) *api.HTTPError) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !protocol.ValidE164(r.PathValue("e164")) {
				api.WriteError(w, badRequest("%q is not a conference number: 3 to 32 digits", r.PathValue("e164")))
				return
			}
			if err := f(w, r); err != nil {
				api.WriteError(w, err)
			}
		})
	}
	// Every route acts on the conference of the path: a tenant token may
	// use it for its own domains' conferences only (api.ScopeConference).
	return []api.Route{
		{Pattern: "GET " + base, Handler: h(s.restState), Scope: api.ScopeConference},
		{Pattern: "GET " + base + "/audio", Handler: h(s.restAudio), Scope: api.ScopeConference},
		{Pattern: "POST " + base + "/tickets", Handler: h(s.restTicket), Scope: api.ScopeConference},
		{Pattern: "POST " + base + "/start", Handler: h(s.restStart), Scope: api.ScopeConference},
		{Pattern: "POST " + base + "/stop", Handler: h(s.restStop), Scope: api.ScopeConference},
		{Pattern: "POST " + base + "/moves", Handler: h(s.restMove), Scope: api.ScopeConference},
		{Pattern: "POST " + base + "/record", Handler: h(s.restRecord), Scope: api.ScopeConference},
		{Pattern: "PUT " + base + "/subscriptions/{user}", Handler: h(s.restSubscribe), Scope: api.ScopeConference},
		{Pattern: "POST " + base + "/mute", Handler: h(s.restMute), Scope: api.ScopeConference},
		{Pattern: "POST " + base + "/audio-state", Handler: h(s.restAudioState), Scope: api.ScopeConference},
		{Pattern: "GET " + base + "/ws", Handler: http.HandlerFunc(s.serveWS), Open: true},
	}
}

func badRequest(format string, args ...any) *api.HTTPError {
	return &api.HTTPError{Status: http.StatusBadRequest, Code: protocol.ErrBadRequest, Message: msgf(format, args...)}
}

// TicketRequest asks for a WebSocket ticket for a user.
type TicketRequest struct {
	UserID    uint32 `json:"userID"`
	UserUmsID uint32 `json:"userUmsId"`
	// Role is "host" or "participant" (default).
	Role         string `json:"role"`
	ClientType   uint16 `json:"clientType"`
	AudioState   uint32 `json:"audioState"`
	DTSChannelID uint32 `json:"dtsChannelID"`
}

// TicketResponse is a ticket, when it expires, and where to connect.
type TicketResponse struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expiresAt"`
	// URL is the WebSocket path with the ticket, relative to the API.
	URL string `json:"url"`
}

func (s *Service) restTicket(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	e164 := r.PathValue("e164")
	var req TicketRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	id := Identity{UserID: req.UserID, UmsID: req.UserUmsID, Client: req.ClientType, Audio: req.AudioState, Channel: req.DTSChannelID}
	switch req.Role {
	case "host":
		id.Role = protocol.RoleHost
	case "", "participant":
	default:
		return badRequest("role %q: use host or participant", req.Role)
	}
	switch {
	case req.UserID == 0:
		return badRequest("userID is required: the user's id in the conference")
	case !protocol.ValidAudioState(req.AudioState):
		return badRequest("audioState is 0 (closed), 1 (muted) or 2 (unmuted), not %d", req.AudioState)
	}
	cf, err := s.store.Conference(r.Context(), e164)
	if err != nil {
		return confError(err, e164)
	}
	if instanceOf(cf) == 0 {
		return &api.HTTPError{Status: http.StatusConflict, Code: protocol.ErrConfNotRunning,
			Message: "conference " + e164 + " has not started yet: ask for a ticket once it runs"}
	}
	tok, exp := s.Ticket(cf, id)
	api.WriteJSON(w, http.StatusOK, TicketResponse{
		Ticket: tok, ExpiresAt: exp.UTC(), URL: "/v1/conferences/" + e164 + "/breakout/ws?ticket=" + url.QueryEscape(tok),
	})
	return nil
}

func (s *Service) restState(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	e164 := r.PathValue("e164")
	if _, err := s.store.Conference(r.Context(), e164); err != nil {
		return confError(err, e164)
	}
	var v View
	if err := s.read(r.Context(), e164, func(st *State, _ *Plan) { v = viewOf(st, s.now().UnixMilli()) }); err != nil {
		return confError(err, e164)
	}
	api.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (s *Service) restAudio(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	e164 := r.PathValue("e164")
	if _, err := s.store.Conference(r.Context(), e164); err != nil {
		return confError(err, e164)
	}
	var v AudioView
	if err := s.read(r.Context(), e164, func(st *State, p *Plan) { v = audioViewOf(st, p, s.opts.SpeakerLimit) }); err != nil {
		return confError(err, e164)
	}
	api.WriteJSON(w, http.StatusOK, v)
	return nil
}

// StartRequest is the body of POST .../breakout/start.
type StartRequest struct {
	Extend    string                      `json:"extend"`
	RoomInfos []protocol.BreakoutRoomInfo `json:"roomInfos"`
}

func (s *Service) restStart(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	var req StartRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdStart(e164, Operator, protocol.BreakoutRoomsStart{
		Type: protocol.BMSBreakoutRoomsStart, ConfID: e164, Extend: req.Extend, RoomInfos: req.RoomInfos,
	}))
}

// StopRequest is the body of POST .../breakout/stop.
type StopRequest struct {
	DelayTime uint32 `json:"delayTime"`
}

func (s *Service) restStop(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	var req StopRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdStop(e164, Operator, req.DelayTime))
}

// MoveRequest is the body of POST .../breakout/moves.
type MoveRequest struct {
	DestItem protocol.BreakoutRoomUserItem `json:"destItem"`
}

func (s *Service) restMove(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	var req MoveRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdSetRoom(e164, Operator, protocol.SetUserBreakoutRoom{
		Type: protocol.BMSSetUserBreakoutRoom, ConfID: e164, DestItem: req.DestItem,
	}))
}

// RecordRequest is the body of POST .../breakout/record.
type RecordRequest struct {
	RoomID uint32 `json:"roomID"`
}

func (s *Service) restRecord(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	var req RecordRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdRecord(e164, Operator, req.RoomID))
}

// SubscribeRequest is the body of PUT .../breakout/subscriptions/{user}:
// the user's full list.
type SubscribeRequest struct {
	SubscribeInfos []protocol.BreakoutRoomSubscribeInfo `json:"subscribeInfos"`
}

func (s *Service) restSubscribe(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	user, err := strconv.ParseUint(r.PathValue("user"), 10, 32)
	if err != nil || user == 0 {
		return badRequest("%q is not a user id", r.PathValue("user"))
	}
	var req SubscribeRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdSubscribe(e164, Operator, protocol.UserSubscribeInBreakoutRoom{
		Type: protocol.AudioUserSubscribeInBreakout, ConfID: e164, User: uint32(user), SubscribeInfos: req.SubscribeInfos,
	}))
}

// MuteRequest is the body of POST .../breakout/mute.
type MuteRequest struct {
	Mode    uint32 `json:"mode"`
	UserID  uint32 `json:"userID"`
	GroupID uint32 `json:"groupID"`
}

func (s *Service) restMute(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	var req MuteRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdMute(e164, Operator, protocol.UserMute{
		Type: protocol.AudioUserMute, ConfID: e164, UserID: req.UserID, Mode: req.Mode, GroupID: req.GroupID,
	}))
}

// AudioStateRequest is the body of POST .../breakout/audio-state.
type AudioStateRequest struct {
	UserID       uint32 `json:"userID"`
	AudioState   uint32 `json:"audioState"`
	DTSChannelID uint32 `json:"dtsChannelID"`
}

func (s *Service) restAudioState(w http.ResponseWriter, r *http.Request) *api.HTTPError {
	var req AudioStateRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdAudio(e164, Operator, protocol.UserAudioState{
		Type: protocol.AudioUserAudioState, ConfID: e164, UserID: req.UserID, AudioState: req.AudioState, DTSChannelID: req.DTSChannelID,
	}))
}

// answer runs a command for the REST mirror and answers with its own
// notification, or its refusal as an API error.
func (s *Service) answer(ctx context.Context, w http.ResponseWriter, e164 string, cmd command) *api.HTTPError {
	if !s.Ready() {
		return &api.HTTPError{Status: http.StatusServiceUnavailable, Code: "BREAKOUT_UNAVAILABLE", Message: "the breakout service is not running on this instance; retry"}
	}
	out := s.exec(ctx, e164, cmd)
	if out.status != protocol.BreakoutOK {
		c := codes[out.status]
		if c.code == "" {
			c.code, c.status = protocol.ErrInternal, http.StatusInternalServerError
		}
		return &api.HTTPError{Status: c.status, Code: c.code, Message: messageOf(out.reply)}
	}
	var body any = struct{}{}
	if len(out.notes) > 0 {
		body = out.notes[0]
	}
	api.WriteJSON(w, http.StatusOK, body)
	return nil
}

// messageOf reads the Message of a protocol notify.
func messageOf(reply any) string {
	if reply == nil {
		return "refused"
	}
	v := reflect.ValueOf(reply)
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Message"); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
			return f.String()
		}
	}
	return "refused"
}
