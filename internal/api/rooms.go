package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// maxReasonLen is the longest reason for a room failure the platform
// monitor accepts, in bytes.
const maxReasonLen = 256

// pmsLookupTimeout bounds the platform monitor's part of GET /v1/rooms: it
// adds detail to RMS's list, and a slow monitor must not hold the list up.
const pmsLookupTimeout = 2 * time.Second

// failRoom fails a server room by hand (SERVER_ROOM_SET_REQ, state
// abnormal). The body is optional: {"reason": "..."}.
func (s *Server) failRoom(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "room")
	if aerr != nil {
		return aerr
	}
	var req apiclient.FailRoomRequest
	if aerr := httpkit.DecodeOptional(r, &req); aerr != nil {
		return aerr
	}
	if len(req.Reason) > maxReasonLen {
		return httpkit.BadRequest("field \"reason\" must be at most %d bytes, not %d", maxReasonLen, len(req.Reason))
	}
	return s.setRoom(w, r, moid, protocol.RoomAbnormal, req.Reason)
}

// recoverRoom recovers a server room by hand (SERVER_ROOM_SET_REQ, state
// normal). It takes no body, or an empty object.
func (s *Server) recoverRoom(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "room")
	if aerr != nil {
		return aerr
	}
	var req struct{}
	if aerr := httpkit.DecodeOptional(r, &req); aerr != nil {
		return aerr
	}
	return s.setRoom(w, r, moid, protocol.RoomNormal, "")
}

// setRoom asks the platform monitor to set a room's state and answers with
// every room as the monitor now sees them.
func (s *Server) setRoom(w http.ResponseWriter, r *http.Request, moid, state, reason string) *codes.Error {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectPMS(s.opts.Platform)
	req := protocol.ServerRoomSetReq{Type: protocol.ServerRoomSetRq, Room: moid, State: state, Reason: reason}
	var ack protocol.ServerRoomStateNtf
	if err := s.bus.Call(ctx, subject, req, &ack); err != nil {
		return fromBus(err, pms, subject)
	}
	holder, _ := httpkit.Holder(r)
	s.log.Info("server room set through the API", "room", moid, "state", state, "reason", reason, "by", holder)
	out := apiclient.RoomList{Rooms: make([]apiclient.Room, 0, len(ack.Rooms))}
	for _, rm := range ack.Rooms {
		out.Rooms = append(out.Rooms, roomView(rm))
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

// listRoomStates lists the rooms as RMS sees them (names, live nodes) with
// the platform monitor's state, reason, manual flag and time of change,
// asked at the same time. Without an answer from the monitor the list is
// RMS's alone; without one from RMS it is the monitor's alone.
func (s *Server) listRoomStates(w http.ResponseWriter, r *http.Request) *codes.Error {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	var (
		wg     sync.WaitGroup
		pmsAck protocol.ServerRoomStateNtf
		pmsErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pctx, pcancel := context.WithTimeout(ctx, pmsLookupTimeout)
		defer pcancel()
		pmsErr = s.bus.Call(pctx, protocol.SubjectPMS(s.opts.Platform),
			protocol.ServerRoomStateReq{Type: protocol.ServerRoomStateRq, Platform: s.opts.Platform}, &pmsAck)
	}()
	rmsSubject := protocol.SubjectRMS(s.opts.Platform)
	var rmsAck protocol.RoomListAck
	rmsErr := s.bus.Call(ctx, rmsSubject, protocol.Header{Type: protocol.RMSRoomListReq}, &rmsAck)
	wg.Wait()
	if pmsErr != nil && !errors.Is(pmsErr, bus.ErrNoResponders) {
		s.log.Warn("the platform monitor did not answer; rooms show RMS's view alone", "err", pmsErr)
	}
	var out apiclient.RoomList
	switch {
	case rmsErr == nil && pmsErr == nil:
		out.Rooms = mergeRooms(rmsAck.Rooms, pmsAck.Rooms)
	case rmsErr == nil:
		out.Rooms = mergeRooms(rmsAck.Rooms, nil)
	case pmsErr == nil:
		out.Rooms = mergeRooms(nil, pmsAck.Rooms)
	default:
		return fromBus(rmsErr, rms, rmsSubject)
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

// mergeRooms lists RMS's rooms, in its order, with the monitor's account
// of their state, then the rooms only the monitor knows. The monitor decides
// rooms' states (RMS repeats what it heard from it); RMS counts live nodes.
func mergeRooms(fromRMS, fromPMS []protocol.RoomInfo) []apiclient.Room {
	byMoid := make(map[string]protocol.RoomInfo, len(fromPMS))
	for _, p := range fromPMS {
		byMoid[p.Room] = p
	}
	out := make([]apiclient.Room, 0, max(len(fromRMS), len(fromPMS)))
	for _, rm := range fromRMS {
		v := roomView(rm)
		if p, ok := byMoid[rm.Room]; ok {
			v.State, v.Reason, v.Manual, v.Since = p.State, p.Reason, p.Manual, msTime(p.SinceMs)
			delete(byMoid, rm.Room)
		}
		out = append(out, v)
	}
	for _, p := range fromPMS {
		if _, only := byMoid[p.Room]; only {
			out = append(out, roomView(p))
		}
	}
	return out
}

func roomView(rm protocol.RoomInfo) apiclient.Room {
	typ := "main"
	if rm.RoomType == 1 {
		typ = "secondary"
	}
	return apiclient.Room{
		Moid: rm.Room, Name: rm.Name, Platform: rm.Platform, Type: typ, State: rm.State, LiveNodes: rm.LiveNodes,
		Reason: rm.Reason, Manual: rm.Manual, Since: msTime(rm.SinceMs),
	}
}
