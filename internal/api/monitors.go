package api

import (
	"net"
	"net/http"
	"strconv"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// startMonitor asks the conference's node to stream it to ip:port.
func (s *Server) startMonitor(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	var q apiclient.MonitorRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	if err := checkMonitor(&q); err != nil {
		return err
	}
	req := protocol.MonitorReq{Type: protocol.CMStartMonitorReq, E164: e164, IP: q.IP, Port: q.Port}
	if err := s.confCall(r, e164, req, nil); err != nil {
		return err
	}
	addr := monitorAddr(q.IP, q.Port)
	w.Header().Set("Location", "/v1/conferences/"+e164+"/monitors/"+addr)
	httpkit.WriteJSON(w, http.StatusCreated, apiclient.Monitor{E164: e164, Addr: addr, IP: q.IP, Port: q.Port})
	return nil
}

func (s *Server) listMonitors(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	_, st, err := s.conferenceAnywhere(r.Context(), e164)
	if err != nil {
		return store.Refusal(err, e164, "")
	}
	ms, err := st.Monitors(r.Context(), e164)
	if err != nil {
		return store.Refusal(err, e164, "")
	}
	out := apiclient.MonitorList{Monitors: make([]apiclient.Monitor, 0, len(ms))}
	for _, m := range ms {
		v := apiclient.Monitor{E164: e164, Addr: m.Addr, KeepAliveAt: msTime(m.KeepAliveMs)}
		if host, port, err := net.SplitHostPort(m.Addr); err == nil {
			v.IP = host
			v.Port, _ = strconv.Atoi(port)
		}
		out.Monitors = append(out.Monitors, v)
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) keepMonitorAlive(w http.ResponseWriter, r *http.Request) *codes.Error {
	return s.monitorCall(w, r, protocol.CMMonitorKeepAlive)
}

func (s *Server) stopMonitor(w http.ResponseWriter, r *http.Request) *codes.Error {
	return s.monitorCall(w, r, protocol.CMStopMonitorReq)
}

func (s *Server) monitorCall(w http.ResponseWriter, r *http.Request, typ string) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	ip, port, aerr := pathAddr(r)
	if aerr != nil {
		return aerr
	}
	req := protocol.MonitorReq{Type: typ, E164: e164, IP: ip, Port: port}
	if err := s.confCall(r, e164, req, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
