package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"time"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/httpkit"
)

// hostList is the answer to GET /v1/hosts (apiclient.HostList reads it).
type hostList struct {
	Hosts []host.HostStatus `json:"hosts"`
}

// hostsAPI serves the management routes: what runs on which host, and a
// plugin stopped or started on one. The API's own host answers directly;
// the others, when the API has the hosts' bus, over it.
type hostsAPI struct {
	self   host.Manager
	name   string // the API's host
	plugin string // the API's own plugin, which it cannot stop itself
	// col and client reach the other hosts of the platform; nil when the
	// API sees only its own.
	col    *host.Collector
	client *host.Client
}

// pluginActionTimeout bounds a plugin's stop or start asked through the API.
const pluginActionTimeout = 30 * time.Second

var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (h *hostsAPI) routes() []httpkit.Route {
	return []httpkit.Route{
		{Pattern: "GET /v1/hosts", Scope: httpkit.ScopePlatform, Handler: httpkit.HandlerFunc(h.list)},
		// Stopping and starting write: a readonly token is refused them
		// (403), a tenant token every platform route.
		{Pattern: "POST /v1/hosts/{host}/plugins/{plugin}/stop", Scope: httpkit.ScopePlatform, Handler: h.action(host.ActionStop)},
		{Pattern: "POST /v1/hosts/{host}/plugins/{plugin}/start", Scope: httpkit.ScopePlatform, Handler: h.action(host.ActionStart)},
	}
}

// list answers every host the API knows of: its own, fresh, and the
// latest status of each other host on the bus.
func (h *hostsAPI) list(w http.ResponseWriter, r *http.Request) *codes.Error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	own := h.self.Status(ctx)
	out := hostList{Hosts: []host.HostStatus{own}}
	if h.col != nil {
		for _, st := range h.col.Hosts() {
			if st.Host != own.Host {
				out.Hosts = append(out.Hosts, st)
			}
		}
	}
	sort.Slice(out.Hosts, func(i, j int) bool { return out.Hosts[i].Host < out.Hosts[j].Host })
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *hostsAPI) action(action string) httpkit.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) *codes.Error {
		name, plugin := r.PathValue("host"), r.PathValue("plugin")
		if !hostNamePattern.MatchString(name) {
			return httpkit.BadRequest("host %s in the path must be 1 to 64 letters, digits, '-' or '_'", httpkit.Echo(name))
		}
		if !host.ValidID(plugin) {
			return httpkit.BadRequest("plugin %s in the path is not a plugin ID (convene.breakout); convene host plugins lists them", httpkit.Echo(plugin))
		}
		// The stop or start goes on if the client goes away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), pluginActionTimeout)
		defer cancel()
		var st host.HostStatus
		switch {
		case name == h.name && plugin == h.plugin && action == host.ActionStop:
			return codes.Errorf(codes.BadRequest, "the API cannot stop the plugin serving this request (%s on host %s): ask the API of another host, or stop the host", plugin, name)
		case name == h.name:
			var err error
			if action == host.ActionStop {
				err = h.self.StopPlugin(ctx, plugin)
			} else {
				err = h.self.StartPlugin(ctx, plugin)
			}
			if err != nil {
				return hostRefusal(err)
			}
			st = h.self.Status(ctx)
		case h.client == nil:
			return codes.Errorf(codes.NotFound, "this API manages only its own host %s: give that name, or set hosts_bus on its server to reach the platform's other hosts", h.name)
		default:
			var err error
			if action == host.ActionStop {
				st, err = h.client.StopPlugin(ctx, name, plugin)
			} else {
				st, err = h.client.StartPlugin(ctx, name, plugin)
			}
			if errors.Is(err, host.ErrNoResponders) {
				return codes.Errorf(codes.NotFound, "no host %s answers on the bus: GET /v1/hosts lists the hosts that run", name)
			}
			if err != nil {
				return hostRefusal(err)
			}
		}
		httpkit.WriteJSON(w, http.StatusOK, st)
		return nil
	}
}

// hostRefusal is a host's refusal in the codebook.
func hostRefusal(err error) *codes.Error {
	var ce *host.ControlError
	if errors.As(err, &ce) {
		if _, ok := codes.Lookup(ce.Code); ok {
			return &codes.Error{Code: ce.Code, Message: ce.Message, Err: err}
		}
		return &codes.Error{Code: codes.Internal, Message: fmt.Sprintf("%s: %s", ce.Code, ce.Message), Err: err}
	}
	code := codes.PluginFailed
	switch {
	case errors.Is(err, host.ErrUnknownPlugin):
		code = codes.UnknownPlugin
	case errors.Is(err, host.ErrInfrastructure):
		code = codes.BadRequest
	case errors.Is(err, host.ErrNotRunning):
		code = codes.HostNotRunning
	case errors.Is(err, context.DeadlineExceeded):
		return &codes.Error{Code: codes.Internal, Message: "the host did not finish in " + pluginActionTimeout.String() + ": GET /v1/hosts says where it is", Err: err}
	}
	return &codes.Error{Code: code, Message: err.Error(), Err: err}
}
