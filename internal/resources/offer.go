package resources

import (
	"context"
	"fmt"
	"slices"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// tally is what one room can offer to a request.
type tally struct {
	offered bool // normal and not excluded
	free    int  // free capacity of its live MCU nodes
	mcus    int  // live MCU nodes with free capacity
}

// Offer answers a GET_RES_REQ: the preferred room and the live nodes, with
// free capacity, of every normal room the request does not exclude, the
// preferred room's first. The preferred room has the most free MCU
// capacity; ties go to a main room, then to the configured order. VRS
// nodes are offered only for recorded conferences. With no MCU to offer
// the error wraps ErrNoResources and says why.
//
// It is on the create path: one read lock, three walks over the nodes,
// and the answer's slices are its only allocations.
func (s *Service) Offer(req protocol.GetResReq) (protocol.GetResAck, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	var buf [8]tally
	t := buf[:0]
	if len(s.rooms) > len(buf) {
		t = make([]tally, 0, len(s.rooms))
	}
	for _, r := range s.rooms {
		t = append(t, tally{offered: r.state == protocol.RoomNormal && !slices.Contains(req.Exclude, r.Moid)})
	}
	var vrs, mps int
	for _, n := range s.order {
		if !n.up || n.free() <= 0 || !t[n.roomIdx].offered {
			continue
		}
		switch n.kind {
		case KindMCU:
			t[n.roomIdx].free += n.free()
			t[n.roomIdx].mcus++
		case KindVRS:
			vrs++
		case KindMPS:
			mps++
		}
	}
	pref, mcus := -1, 0
	for i, r := range t {
		mcus += r.mcus
		if r.mcus == 0 {
			continue
		}
		// Rooms are visited in configured order, so only a strictly better
		// room replaces the one found first.
		if pref < 0 || r.free > t[pref].free ||
			r.free == t[pref].free && s.rooms[i].RoomType() < s.rooms[pref].RoomType() {
			pref = i
		}
	}
	if pref < 0 {
		return protocol.GetResAck{}, s.noResources(req)
	}
	if !req.Recording {
		vrs = 0
	}
	ack := protocol.GetResAck{
		Type: protocol.RMSGetResAck,
		Room: s.rooms[pref].Moid,
		MCU:  make([]protocol.Server, 0, mcus),
		VRS:  make([]protocol.Server, 0, vrs),
		MPS:  make([]protocol.Server, 0, mps),
	}
	// The preferred room's nodes, then the others' in configured order
	// (order is sorted by room).
	for _, inPref := range [2]bool{true, false} {
		for _, n := range s.order {
			if (n.roomIdx == pref) != inPref || !n.up || n.free() <= 0 || !t[n.roomIdx].offered {
				continue
			}
			switch {
			case n.kind == KindMCU:
				ack.MCU = append(ack.MCU, n.server())
			case n.kind == KindVRS && req.Recording:
				ack.VRS = append(ack.VRS, n.server())
			case n.kind == KindMPS:
				ack.MPS = append(ack.MPS, n.server())
			}
		}
	}
	return ack, nil
}

// noResources says why nothing could be offered. The caller holds mu.
func (s *Service) noResources(req protocol.GetResReq) error {
	var known, down, fenced, full int
	for _, n := range s.order {
		if n.kind != KindMCU {
			continue
		}
		known++
		r := s.rooms[n.roomIdx]
		switch {
		case !n.up:
			down++
		case r.state != protocol.RoomNormal || slices.Contains(req.Exclude, r.Moid):
			fenced++
		case n.free() <= 0:
			full++
		}
	}
	msg := fmt.Sprintf("no live media node in a normal room of platform %q", s.opts.Platform)
	if known == 0 {
		msg += ": no media node has registered; start media nodes for this platform"
	} else {
		msg += fmt.Sprintf(": of %d media nodes %d are down, %d are in abnormal or excluded rooms and %d are full; "+
			"wait for nodes or rooms to recover, or add media nodes", known, down, fenced, full)
	}
	return &reasonError{kind: ErrNoResources, msg: msg}
}

func (s *Service) handleGetRes(_ context.Context, m *bus.Msg) {
	var req protocol.GetResReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.RMSGetResNack, protocol.ErrBadRequest, "GET_RES_REQ is not a valid message: "+err.Error())
		return
	}
	ack, err := s.Offer(req)
	for err != nil && s.awaitFirstNode() {
		ack, err = s.Offer(req)
	}
	if err != nil {
		s.log.Debug("rms had nothing to offer", "domain", req.Domain, "err", err)
		_ = m.Nack(protocol.RMSGetResNack, protocol.ErrNoResources, err.Error())
		return
	}
	if err := m.Respond(ack); err != nil {
		s.log.Debug("rms could not answer GET_RES_REQ", "domain", req.Domain, "err", err)
	}
}
