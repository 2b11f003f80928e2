package breakout

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// The REST mirror: what a host does over WebSocket, an operator does over
// HTTP with the API's bearer token, as a host that is no user (operator id
// 0). Successes answer 200 with the notification the clients got; refusals
// answer the error envelope with the statusCode's stable code (StatusName)
// and its HTTP status in the codebook.

// Routes are the service's routes, to mount on the API (api.Deps.Routes)
// or any handler of internal/httpkit.
func (s *Service) Routes() []httpkit.Route {
	const base = "/v1/conferences/{e164}/breakout"
	h := func(f httpkit.HandlerFunc) httpkit.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) *codes.Error {
			if _, err := httpkit.PathE164(r); err != nil {
				return err
			}
			return f(w, r)
		}
	}
	// Every route acts on the conference of the path: a tenant token may
	// use it for its own domains' conferences only (ScopeConference).
	return []httpkit.Route{
		{Pattern: "GET " + base, Handler: h(s.restState), Scope: httpkit.ScopeConference},
		{Pattern: "GET " + base + "/audio", Handler: h(s.restAudio), Scope: httpkit.ScopeConference},
		{Pattern: "POST " + base + "/tickets", Handler: h(s.restTicket), Scope: httpkit.ScopeConference},
		{Pattern: "POST " + base + "/start", Handler: h(s.restStart), Scope: httpkit.ScopeConference},
		{Pattern: "POST " + base + "/stop", Handler: h(s.restStop), Scope: httpkit.ScopeConference},
		{Pattern: "POST " + base + "/moves", Handler: h(s.restMove), Scope: httpkit.ScopeConference},
		{Pattern: "POST " + base + "/record", Handler: h(s.restRecord), Scope: httpkit.ScopeConference},
		{Pattern: "PUT " + base + "/subscriptions/{user}", Handler: h(s.restSubscribe), Scope: httpkit.ScopeConference},
		{Pattern: "POST " + base + "/mute", Handler: h(s.restMute), Scope: httpkit.ScopeConference},
		{Pattern: "POST " + base + "/audio-state", Handler: h(s.restAudioState), Scope: httpkit.ScopeConference},
		{Pattern: "GET " + base + "/ws", Handler: http.HandlerFunc(s.serveWS), Scope: httpkit.ScopeOpen},
	}
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

func (s *Service) restTicket(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164 := r.PathValue("e164")
	var req TicketRequest
	if err := httpkit.Decode(r, &req); err != nil {
		return err
	}
	id := Identity{UserID: req.UserID, UmsID: req.UserUmsID, Client: req.ClientType, Audio: req.AudioState, Channel: req.DTSChannelID}
	switch req.Role {
	case "host":
		id.Role = protocol.RoleHost
	case "", "participant":
	default:
		return httpkit.BadRequest("role %q: use host or participant", req.Role)
	}
	switch {
	case req.UserID == 0:
		return httpkit.BadRequest("userID is required: the user's id in the conference")
	case !protocol.ValidAudioState(req.AudioState):
		return httpkit.BadRequest("audioState is 0 (closed), 1 (muted) or 2 (unmuted), not %d", req.AudioState)
	}
	cf, err := s.store.Conference(r.Context(), e164)
	if err != nil {
		return store.Refusal(err, e164, "")
	}
	if instanceOf(cf) == 0 {
		return codes.Errorf(codes.ConfNotRunning, "conference %s has not started yet: ask for a ticket once it runs", e164)
	}
	tok, exp := s.Ticket(cf, id)
	httpkit.WriteJSON(w, http.StatusOK, TicketResponse{
		Ticket: tok, ExpiresAt: exp.UTC(), URL: "/v1/conferences/" + e164 + "/breakout/ws?ticket=" + url.QueryEscape(tok),
	})
	return nil
}

func (s *Service) restState(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164 := r.PathValue("e164")
	if _, err := s.store.Conference(r.Context(), e164); err != nil {
		return store.Refusal(err, e164, "")
	}
	var v View
	if err := s.read(r.Context(), e164, func(st *State, _ *Plan) { v = viewOf(st, s.now().UnixMilli()) }); err != nil {
		return store.Refusal(err, e164, "")
	}
	httpkit.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (s *Service) restAudio(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164 := r.PathValue("e164")
	if _, err := s.store.Conference(r.Context(), e164); err != nil {
		return store.Refusal(err, e164, "")
	}
	var v AudioView
	if err := s.read(r.Context(), e164, func(st *State, p *Plan) { v = audioViewOf(st, p, s.opts.SpeakerLimit) }); err != nil {
		return store.Refusal(err, e164, "")
	}
	httpkit.WriteJSON(w, http.StatusOK, v)
	return nil
}

// StartRequest is the body of POST .../breakout/start.
type StartRequest struct {
	Extend    string                      `json:"extend"`
	RoomInfos []protocol.BreakoutRoomInfo `json:"roomInfos"`
}

func (s *Service) restStart(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req StartRequest
	if err := httpkit.Decode(r, &req); err != nil {
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

func (s *Service) restStop(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req StopRequest
	if err := httpkit.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdStop(e164, Operator, req.DelayTime))
}

// MoveRequest is the body of POST .../breakout/moves.
type MoveRequest struct {
	DestItem protocol.BreakoutRoomUserItem `json:"destItem"`
}

func (s *Service) restMove(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req MoveRequest
	if err := httpkit.Decode(r, &req); err != nil {
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

func (s *Service) restRecord(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req RecordRequest
	if err := httpkit.Decode(r, &req); err != nil {
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

func (s *Service) restSubscribe(w http.ResponseWriter, r *http.Request) *codes.Error {
	user, err := strconv.ParseUint(r.PathValue("user"), 10, 32)
	if err != nil || user == 0 {
		return httpkit.BadRequest("%q is not a user id", r.PathValue("user"))
	}
	var req SubscribeRequest
	if err := httpkit.Decode(r, &req); err != nil {
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

func (s *Service) restMute(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req MuteRequest
	if err := httpkit.Decode(r, &req); err != nil {
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

func (s *Service) restAudioState(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req AudioStateRequest
	if err := httpkit.Decode(r, &req); err != nil {
		return err
	}
	e164 := r.PathValue("e164")
	return s.answer(r.Context(), w, e164, cmdAudio(e164, Operator, protocol.UserAudioState{
		Type: protocol.AudioUserAudioState, ConfID: e164, UserID: req.UserID, AudioState: req.AudioState, DTSChannelID: req.DTSChannelID,
	}))
}

// answer runs a command for the REST mirror and answers with its own
// notification, or its refusal as an API error.
func (s *Service) answer(ctx context.Context, w http.ResponseWriter, e164 string, cmd command) *codes.Error {
	if !s.Ready() {
		return errUnavailable()
	}
	out := s.exec(ctx, e164, cmd)
	if out.status != protocol.BreakoutOK {
		return &codes.Error{Code: StatusName(out.status), Message: messageOf(out.reply)}
	}
	var body any = struct{}{}
	if len(out.notes) > 0 {
		body = out.notes[0]
	}
	httpkit.WriteJSON(w, http.StatusOK, body)
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
