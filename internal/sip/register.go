package sip

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// register is the registrar (RFC 3261 §10.3): a subscriber's REGISTER,
// authenticated, adds, refreshes or removes the contacts of its address
// of record in the platform store, where every node finds them.
func (n *Node) register(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	if !n.servesDomain(req.Recipient.Host) {
		n.respond(ctx, tx, req, sip.StatusForbidden, "Not A Domain Of This Registrar")
		return
	}
	aor := req.To().Address.User
	if !records.ValidSIPUser(aor) {
		n.respond(ctx, tx, req, sip.StatusNotFound, "Not Found")
		return
	}
	user, ok := n.authenticate(ctx, req, tx)
	if !ok {
		return
	}
	if user != aor {
		n.respond(ctx, tx, req, sip.StatusForbidden, "Credentials Of Another User")
		return
	}
	r := store.SIPRegistration{AOR: aor, CallID: req.CallID().Value(), CSeq: req.CSeq().SeqNo, Node: n.opts.Name,
		Source: req.Source(), Transport: strings.ToUpper(req.Transport()), Now: n.now()}
	def := n.opts.DefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		s, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			n.respond(ctx, tx, req, sip.StatusBadRequest, "Bad Expires")
			return
		}
		def = time.Duration(s) * time.Second
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			n.respond(ctx, tx, req, sip.StatusBadRequest, "Bad Contact")
			return
		}
		if c.Address.Wildcard {
			if def != 0 || len(req.GetHeaders("Contact")) != 1 {
				n.respond(ctx, tx, req, sip.StatusBadRequest, "Contact * Needs Expires 0 Alone")
				return
			}
			r.RemoveAll = true
			continue
		}
		exp := def
		if v, ok := c.Params.Get("expires"); ok {
			s, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				n.respond(ctx, tx, req, sip.StatusBadRequest, "Bad Contact Expires")
				return
			}
			exp = time.Duration(s) * time.Second
		}
		if exp > 0 && exp < n.opts.MinExpires {
			n.respond(ctx, tx, req, sip.StatusIntervalToBrief, "Interval Too Brief",
				sip.NewHeader("Min-Expires", strconv.Itoa(int(n.opts.MinExpires/time.Second))))
			return
		}
		exp = min(exp, n.opts.MaxExpires)
		q, _ := c.Params.Get("q")
		uri := c.Address.String()
		if strings.ContainsAny(uri, "\t\r\n") {
			n.respond(ctx, tx, req, sip.StatusBadRequest, "Bad Contact")
			return
		}
		r.Contacts = append(r.Contacts, store.SIPContactChange{URI: uri, Expires: exp, Q: q})
	}

	var bindings []store.SIPBinding
	var err error
	if !r.RemoveAll && len(r.Contacts) == 0 {
		bindings, err = n.deps.Store.SIPBindings(ctx, aor, r.Now) // a query
	} else {
		bindings, err = n.deps.Store.SIPRegister(ctx, r)
	}
	switch {
	case errors.Is(err, store.ErrSIPOutOfOrder):
		n.respond(ctx, tx, req, sip.StatusBadRequest, "CSeq Out Of Order")
		return
	case err != nil:
		n.log.Warn("sip: a registration was not stored", "aor", aor, "err", err)
		n.respond(ctx, tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for _, b := range bindings {
		var u sip.Uri
		if err := sip.ParseUri(b.Contact, &u); err != nil {
			continue
		}
		params := sip.NewParams()
		params.Add("expires", strconv.Itoa(max(0, int(b.Expires.Sub(r.Now).Round(time.Second)/time.Second))))
		if b.Q != "" {
			params.Add("q", b.Q)
		}
		res.AppendHeader(&sip.ContactHeader{Address: u, Params: params})
	}
	res.AppendHeader(sip.NewHeader("Date", r.Now.UTC().Format(time.RFC1123)))
	_ = tx.Respond(res)
	n.log.Debug("sip: registered", "aor", aor, "contacts", len(bindings))
}
