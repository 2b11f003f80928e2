package api

import (
	"errors"
	"net/http"
	"sort"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// listNodes joins RMS's node list with the store's count of conferences
// per node.
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) *codes.Error {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectRMS(s.opts.Platform)
	var ack protocol.NodeListAck
	if err := s.bus.Call(ctx, subject, protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		return fromBus(err, rms, subject)
	}
	ids := make([]string, len(ack.Nodes))
	for i, n := range ack.Nodes {
		ids[i] = n.Node
	}
	loads, err := s.store.NodeLoads(r.Context(), ids)
	if err != nil {
		return store.Refusal(err, "", "")
	}
	out := apiclient.NodeList{Nodes: make([]apiclient.Node, 0, len(ack.Nodes))}
	for _, n := range ack.Nodes {
		out.Nodes = append(out.Nodes, apiclient.Node{
			ID: n.Node, IP: n.IP, PID: n.PID, Room: n.Room, Kind: n.Kind, State: n.State,
			Capacity: n.Capacity, Conferences: loads[n.Node], Reported: n.Confs, Legacy: n.Legacy,
		})
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].ID < out.Nodes[j].ID })
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

// registryEntry asks the registry where a number lives.
func (s *Server) registryEntry(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectRegistry(s.opts.Platform)
	var ack protocol.RegistryQueryAck
	if err := s.bus.Call(ctx, subject, protocol.RegistryQuery{Type: protocol.UPUQueryReq, E164: e164}, &ack); err != nil {
		var nack *bus.NackError
		if errors.As(err, &nack) && nack.Code == codes.NotFound && nack.Message == "" {
			return codes.Errorf(codes.NotFound, "no conference, template or virtual room is registered under %s", e164)
		}
		return fromBus(err, registry, subject)
	}
	httpkit.WriteJSON(w, http.StatusOK, registryView(&ack.Entry))
	return nil
}
