package sipplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip"
)

// Subscriber page sizes.
const (
	DefaultSubscriberPage = 100
	MaxSubscriberPage     = 1000
)

func subscriberOf(s records.SIPSubscriber) apiclient.SIPSubscriber {
	return apiclient.SIPSubscriber{User: s.User, Realm: s.Realm, Disabled: s.Disabled, CreatedAt: s.CreatedAt.UTC(),
		UpdatedAt: s.UpdatedAt.UTC(), Version: s.Version}
}

// Records is the convene.sip.records server: subscribers and call
// records over REST.
type Records struct {
	db     *records.DB
	svc    *cdr.Service
	domain string
	now    func() time.Time
	// platform is the platform's moid (generated calls are its).
	platform string

	ctx   host.Context
	log   *slog.Logger
	conn  Connector // nil without a bus
	bus   *bus.Bus  // after Start, with conn
	notes *notifier // announces the calls this server ends (stale ones), with conn
}

// Provision reads the configuration and mounts the routes.
func (rs *Records) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*RecordsConfig)
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	if c.Domain == "" {
		c.Domain = topo.SIP.Domain
	}
	rs.platform = topo.Platform
	if rs.db, err = host.ResourceOf[*records.DB](ctx, c.Records); err != nil {
		return err
	}
	opts := cdr.Options{TimeZone: c.TimeZone}
	if c.Bus != "" {
		if rs.conn, err = host.ResourceOf[Connector](ctx, c.Bus); err != nil {
			return err
		}
		rs.notes = newNotifier(topo.Platform, ctx.Logger())
		opts.Publish = rs.notes.offer
	}
	if rs.svc, err = cdr.New(opts, rs.db, ctx.Logger()); err != nil {
		return err
	}
	rs.domain, rs.now, rs.ctx, rs.log = c.Domain, time.Now, ctx, ctx.Logger()
	return ctx.Mount(rs.Routes()...)
}

// Routes are the server's routes, each on the platform scope.
func (rs *Records) Routes() []host.Route {
	h := func(pattern string, f httpkit.HandlerFunc) host.Route {
		return host.Route{Pattern: pattern, Handler: f, Scope: "platform"}
	}
	return []host.Route{
		h("POST /v1/sip/subscribers", rs.putSubscriber),
		h("GET /v1/sip/subscribers", rs.listSubscribers),
		h("DELETE /v1/sip/subscribers/{user}", rs.disableSubscriber),
		h("GET /v1/cdrs", rs.listCDRs),
		h("POST /v1/cdrs/generate", rs.generateCDRs),
		h("GET /v1/cdrs/stats", rs.cdrStats),
		h("GET /v1/cdrs/export", rs.exportCDRs),
		h("GET /v1/cdrs/{id}", rs.getCDR),
		h("GET /v1/cdrs/{id}/log", rs.getCallLog),
		h("GET /v1/calls/live", rs.liveCalls),
	}
}

// Start connects to the bus (when configured) and starts the call
// records service (its sweeps: stale calls, log retention).
func (rs *Records) Start(ctx context.Context) error {
	if rs.conn != nil {
		b, err := rs.conn.Connect(bus.RoleSIP, "records-"+rs.ctx.HostName())
		if err != nil {
			return fmt.Errorf("call records: the bus: %w", err)
		}
		rs.bus = b
		rs.notes.register(rs.ctx.Metrics(), rs.ctx.Name())
		rs.notes.start(b)
	}
	if err := rs.svc.Start(ctx); err != nil {
		rs.release()
		return err
	}
	return nil
}

// Stop stops it.
func (rs *Records) Stop(ctx context.Context) error {
	err := rs.svc.Shutdown(ctx)
	rs.release()
	return err
}

func (rs *Records) release() {
	if rs.notes != nil {
		rs.notes.close()
	}
	if rs.bus != nil {
		rs.bus.Close()
	}
}

func (rs *Records) putSubscriber(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req apiclient.SIPSubscriberRequest
	if err := httpkit.Decode(r, &req); err != nil {
		return err
	}
	if !records.ValidSIPUser(req.User) {
		return httpkit.BadRequest("user %s: a subscriber name is 1 to %d letters, digits, '.', '_', '-', '+' or '~'",
			httpkit.Echo(req.User), records.MaxSIPUserLen)
	}
	s, err := sip.NewSubscriber(req.User, req.Password, rs.domain)
	if err != nil {
		return httpkit.BadRequest("password: %s", errText(err))
	}
	stored, created, err := rs.db.PutSIPSubscriber(r.Context(), s)
	if err != nil {
		return recordsError(err, "the subscriber was not stored")
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpkit.WriteJSON(w, status, subscriberOf(stored))
	return nil
}

func (rs *Records) listSubscribers(w http.ResponseWriter, r *http.Request) *codes.Error {
	q := r.URL.Query()
	for name := range q {
		if name != "page" && name != "page_size" {
			return httpkit.BadRequest("query parameter %s is not one of this list: use page, page_size", httpkit.Echo(name))
		}
	}
	size := DefaultSubscriberPage
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxSubscriberPage {
			return httpkit.BadRequest("page_size %s must be a number from 1 to %d", httpkit.Echo(v), MaxSubscriberPage)
		}
		size = n
	}
	after := q.Get("page")
	if after != "" && !records.ValidSIPUser(after) {
		return httpkit.BadRequest("page %s is not a subscriber name: pass the next of the previous page", httpkit.Echo(after))
	}
	list, err := rs.db.SIPSubscribers(r.Context(), after, size+1)
	if err != nil {
		return recordsError(err, "the subscribers could not be read")
	}
	page := apiclient.SIPSubscriberPage{Subscribers: make([]apiclient.SIPSubscriber, 0, min(len(list), size))}
	for i, s := range list {
		if i == size {
			page.Next = list[size-1].User
			break
		}
		page.Subscribers = append(page.Subscribers, subscriberOf(s))
	}
	httpkit.WriteJSON(w, http.StatusOK, page)
	return nil
}

func (rs *Records) disableSubscriber(w http.ResponseWriter, r *http.Request) *codes.Error {
	user := r.PathValue("user")
	if !records.ValidSIPUser(user) {
		return httpkit.BadRequest("user %s in the path: a subscriber name is 1 to %d letters, digits, '.', '_', '-', '+' or '~'",
			httpkit.Echo(user), records.MaxSIPUserLen)
	}
	s, err := rs.db.DisableSIPSubscriber(r.Context(), user)
	if errors.Is(err, records.ErrNotFound) {
		return codes.Errorf(codes.NotFound, "no SIP subscriber %s: list them with GET /v1/sip/subscribers", user)
	}
	if err != nil {
		return recordsError(err, "the subscriber was not disabled")
	}
	httpkit.WriteJSON(w, http.StatusOK, subscriberOf(s))
	return nil
}

func (rs *Records) listCDRs(w http.ResponseWriter, r *http.Request) *codes.Error {
	q, err := rs.svc.ParseQuery(r.URL.Query())
	if err != nil {
		return cdrError(err)
	}
	page, err := rs.svc.Query(r.Context(), q)
	if err != nil {
		return cdrError(err)
	}
	httpkit.WriteJSON(w, http.StatusOK, page)
	return nil
}

func (rs *Records) getCDR(w http.ResponseWriter, r *http.Request) *codes.Error {
	c, err := rs.svc.Record(r.Context(), r.PathValue("id"))
	if err != nil {
		return cdrError(err)
	}
	httpkit.WriteJSON(w, http.StatusOK, c)
	return nil
}

func (rs *Records) getCallLog(w http.ResponseWriter, r *http.Request) *codes.Error {
	l, err := rs.svc.CallLog(r.Context(), r.PathValue("id"))
	if err != nil {
		return cdrError(err)
	}
	httpkit.WriteJSON(w, http.StatusOK, l)
	return nil
}

// cdrError is the answer to a call records error.
func cdrError(err error) *codes.Error {
	var pe *cdr.ParamError
	switch {
	case errors.As(err, &pe):
		return httpkit.BadRequest("%s", pe.Error())
	case errors.Is(err, cdr.ErrNotFound):
		return codes.Errorf(codes.NotFound, "no call record with that id: list them with GET /v1/cdrs")
	}
	return recordsError(err, "the call records could not be read")
}

// recordsError is a records database failure: its cause is logged by
// the API, never shown (it may name the database).
func recordsError(err error, what string) *codes.Error {
	if errors.Is(err, records.ErrInvalid) {
		return httpkit.BadRequest("%s", errText(err))
	}
	return &codes.Error{Code: codes.Internal, Message: what + " (records database); try again, and see the log if it persists", Err: err}
}

// errText is an error's sentence without its package's prefix.
func errText(err error) string {
	s := err.Error()
	for _, p := range []string{"sip: bad password: ", "records: invalid record: "} {
		if len(s) > len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}
