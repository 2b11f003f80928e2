package breakout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// maxMessage is the largest message a client may send (a start with
// thousands of users).
const maxMessage = 4 << 20

// serveWS is GET /v1/conferences/{e164}/breakout/ws?ticket=...: a client
// of the BMS protocol. The connection is the user's presence in the
// conference: it enters on connect and leaves on close.
func (s *Service) serveWS(w http.ResponseWriter, r *http.Request) {
	e164 := r.PathValue("e164")
	if !s.Ready() {
		httpkit.WriteError(w, errUnavailable())
		return
	}
	cl, err := s.parse(r.URL.Query().Get("ticket"), e164)
	if err != nil {
		refuseTicket(w, err, e164)
		return
	}
	// Refused before the ticket is redeemed: the client may connect
	// again with it and a form this service knows.
	compact, err := notifyForm(r.URL.Query())
	if err != nil {
		httpkit.WriteError(w, httpkit.BadRequest("%s", err.Error()))
		return
	}
	nonce := r.Header.Get(TicketNonceHeader)
	switch {
	case nonce != "" && !validNonce(nonce):
		httpkit.WriteError(w, httpkit.BadRequest("%s is 16 to 128 letters, digits, '-' or '_': send a random one, or none", TicketNonceHeader))
		return
	case !upgrading(r):
		// A plain GET of the URL (a link preview, a crawler) must not
		// use the ticket up.
		httpkit.WriteErrorStatus(w, http.StatusUpgradeRequired, httpkit.BadRequest("this is a WebSocket endpoint: connect with a WebSocket client"))
		return
	}
	cf, err := s.store.Conference(r.Context(), e164)
	if err != nil {
		httpkit.WriteError(w, store.Refusal(err, e164, ""))
		return
	}
	if err := cl.ofInstance(cf); err != nil {
		refuseTicket(w, err, e164)
		return
	}
	id, session := cl.Identity, s.opts.Instance+"/"+randomHex(8)
	id.Ticket = cl.ID
	attempt, err := s.redeem(r.Context(), cl, nonce, session)
	if err != nil {
		if errors.Is(err, ErrTicket) {
			refuseTicket(w, err, e164)
		} else {
			httpkit.WriteError(w, store.Refusal(err, e164, ""))
		}
		return
	}
	id.Attempt = attempt
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		CompressionMode: websocket.CompressionDisabled, OriginPatterns: s.opts.OriginPatterns,
	})
	if err != nil {
		return // Accept answered
	}
	// Count the handler in while the service runs (under connMu, so that
	// Shutdown's wait never races with a new handler).
	s.connMu.Lock()
	if !s.life.Ready() || s.down.Load() {
		s.connMu.Unlock()
		_ = conn.Close(statusGoingAway, "the breakout service is shutting down: reconnect")
		return
	}
	s.conns.Add(1)
	s.connMu.Unlock()
	defer s.conns.Done()
	conn.SetReadLimit(maxMessage)
	c := s.newClient(e164, id, session, compact, conn)
	ctx := context.Background()
	if err := s.hub.add(ctx, c); err != nil {
		s.log.Warn("client not registered", "e164", e164, "err", err)
		_ = conn.Close(websocket.StatusInternalError, "the breakout service cannot serve this conference now")
		return
	}
	go c.writeLoop()
	out := s.exec(ctx, e164, command{
		cond: "exists",
		run:  func(r rules, st *State) outcome { return r.join(st, id, c.session) },
		refuse: func(status uint32, msg string) any {
			return protocol.ConfInfoNotify{Type: protocol.BMSConfInfoNotify, StatusCode: status, Message: msg, ConfID: e164, UserID: id.UserID}
		},
	})
	if out.status != protocol.BreakoutOK {
		if out.reply == nil {
			out.reply = protocol.ConfInfoNotify{Type: protocol.BMSConfInfoNotify, StatusCode: out.status, ConfID: e164, UserID: id.UserID,
				Message: "this user cannot enter the conference's breakout rooms (no user id, or the plan is full)"}
		}
		c.sendJSON(out.reply)
		c.closeAfterFlush(websocket.StatusPolicyViolation, "refused: "+StatusName(out.status))
		s.hub.remove(c)
		return
	}
	s.readLoop(ctx, c)
	s.hub.remove(c)
	c.close(websocket.StatusNormalClosure, "")
	if c.ended.Load() || c.gone.Load() || s.down.Load() {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s.exec(lctx, e164, command{cond: "exists", run: func(r rules, st *State) outcome { return r.leave(st, c.session) }})
}

// refuseTicket answers a connection whose ticket is no good.
func refuseTicket(w http.ResponseWriter, err error, e164 string) {
	httpkit.WriteError(w, &codes.Error{Code: ticketCode(err),
		Message: err.Error() + ": ask for a new ticket with POST /v1/conferences/" + e164 + "/breakout/tickets"})
}

// upgrading reports whether a request asks for a WebSocket.
func upgrading(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHas(r.Header, "Connection", "upgrade") &&
		headerHas(r.Header, "Upgrade", "websocket") && r.Header.Get("Sec-WebSocket-Key") != ""
}

// headerHas reports whether a comma-separated header lists token.
func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// errUnavailable answers a request this instance cannot serve now.
func errUnavailable() *codes.Error {
	return codes.Errorf(codes.BreakoutUnavailable, "the breakout service is not running on this instance; retry")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readLoop takes the client's messages one after another until it goes.
func (s *Service) readLoop(ctx context.Context, c *client) {
	for {
		typ, data, err := c.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.sendJSON(protocol.ErrorNotify{Type: protocol.BMSErrorNotify, StatusCode: protocol.BreakoutBadRequest, Message: "send JSON text messages"})
			continue
		}
		s.dispatch(ctx, c, data)
	}
}

// dispatch handles one client message by its type.
func (s *Service) dispatch(ctx context.Context, c *client, data []byte) {
	var head struct {
		Type   string `json:"type"`
		ConfID string `json:"confID"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		c.sendJSON(protocol.ErrorNotify{Type: protocol.BMSErrorNotify, StatusCode: protocol.BreakoutBadRequest, Message: "not a JSON object: " + err.Error()})
		return
	}
	a := Actor{UserID: c.id.UserID, Host: c.id.Role == protocol.RoleHost}
	bad := func(refuse func(uint32, string) any, err error) {
		c.sendJSON(refuse(protocol.BreakoutBadRequest, head.Type+": "+err.Error()))
	}
	run := func(cmd command, err error) {
		switch {
		case err != nil:
			bad(cmd.refuse, err)
		case head.ConfID != "" && head.ConfID != c.e164:
			c.sendJSON(cmd.refuse(protocol.BreakoutBadRequest, "confID "+head.ConfID+" is not the conference of this connection ("+c.e164+")"))
		default:
			if out := s.exec(ctx, c.e164, cmd); out.reply != nil {
				c.sendJSON(out.reply)
			}
		}
	}
	switch head.Type {
	case protocol.BMSConfInfoRequest:
		s.confInfo(ctx, c)
	case protocol.BMSGetBreakoutRoomsList:
		c.sendJSON(s.list(ctx, c.e164, c.id.UserID, c.compact))
	case protocol.BMSBreakoutRoomsStart:
		var req protocol.BreakoutRoomsStart
		err := json.Unmarshal(data, &req)
		run(cmdStart(c.e164, a, req), err)
	case protocol.BMSSetUserBreakoutRoom:
		var req protocol.SetUserBreakoutRoom
		err := json.Unmarshal(data, &req)
		run(cmdSetRoom(c.e164, a, req), err)
	case protocol.BMSBreakoutRoomsStop:
		var req protocol.BreakoutRoomsStop
		err := json.Unmarshal(data, &req)
		run(cmdStop(c.e164, a, req.DelayTime), err)
	case protocol.AudioRecordBreakoutRoom:
		var req protocol.RecordBreakoutRoom
		err := json.Unmarshal(data, &req)
		run(cmdRecord(c.e164, a, req.RoomID), err)
	case protocol.AudioUserSubscribeInBreakout:
		var req protocol.UserSubscribeInBreakoutRoom
		err := json.Unmarshal(data, &req)
		if req.User == 0 {
			req.User = c.id.UserID
		}
		run(cmdSubscribe(c.e164, a, req), err)
	case protocol.AudioUserMute:
		var req protocol.UserMute
		err := json.Unmarshal(data, &req)
		run(cmdMute(c.e164, a, req), err)
	case protocol.AudioUserAudioState:
		var req protocol.UserAudioState
		err := json.Unmarshal(data, &req)
		if req.UserID == 0 {
			req.UserID = c.id.UserID
		}
		run(cmdAudio(c.e164, a, req), err)
	default:
		c.sendJSON(protocol.ErrorNotify{Type: protocol.BMSErrorNotify, StatusCode: protocol.BreakoutBadRequest, RequestType: head.Type,
			Message: "unknown message type " + head.Type})
	}
}

// confInfo answers BMS_CONF_INFO_REQUEST; while the rooms run, the list
// follows (seed 002: pushed to whoever enters).
func (s *Service) confInfo(ctx context.Context, c *client) {
	n := protocol.ConfInfoNotify{
		Type: protocol.BMSConfInfoNotify, ConfID: c.e164, UserID: c.id.UserID, UserUmsID: c.id.UmsID, Role: uint32(c.id.Role),
	}
	var list *protocol.GetBreakoutRoomsListNotify
	err := s.read(ctx, c.e164, func(st *State, _ *Plan) {
		r := s.rules()
		n.Timestamp = uint64(r.now / 1000)
		if st.Meta.Active {
			n.Status, n.DelayTime = 1, st.remaining(r.now)
			l := r.list(st, c.id.UserID)
			if c.compact {
				l.Version = st.Version
			}
			list = &l
		}
	})
	if err != nil {
		n.StatusCode, n.Message = protocol.BreakoutInternal, "the breakout state could not be read: retry later"
	}
	c.sendJSON(n)
	if list != nil {
		c.sendJSON(*list)
	}
}
