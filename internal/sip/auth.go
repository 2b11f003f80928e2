package sip

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip/digest"
)

// secrets finds a subscriber's HA1 for the digest verifier: an unknown or
// disabled subscriber, or one whose credentials were made for another
// realm, cannot authenticate.
func (n *Node) secrets(ctx context.Context, user string, a digest.Algorithm) (string, bool, error) {
	if !records.ValidSIPUser(user) {
		return "", false, nil
	}
	s, err := n.subscriber(ctx, user)
	if errors.Is(err, records.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if s.Disabled || s.Realm != n.opts.Domain {
		return "", false, nil
	}
	if a == digest.SHA256 {
		return s.HA1SHA256, true, nil
	}
	return s.HA1MD5, true, nil
}

// authenticate checks a request's credentials: Authorization for a
// REGISTER (challenged with 401), Proxy-Authorization for the rest
// (407). It answers the request itself unless the credentials are right,
// and returns the user they name with ok set when they are.
func (n *Node) authenticate(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (user string, ok bool) {
	credHeader, challHeader, code, reason := "Proxy-Authorization", "Proxy-Authenticate", sip.StatusProxyAuthRequired, "Proxy Authentication Required"
	if req.Method == sip.REGISTER {
		credHeader, challHeader, code, reason = "Authorization", "WWW-Authenticate", sip.StatusUnauthorized, "Unauthorized"
	}
	var values []string
	for _, h := range req.GetHeaders(credHeader) {
		values = append(values, h.Value())
	}
	user, outcome, err := n.auth.Check(ctx, string(req.Method), values)
	if err != nil {
		n.log.Warn("sip: credentials could not be checked", "user", user, "err", err)
		n.respond(ctx, tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return user, false
	}
	switch outcome {
	case digest.Authorized:
		return user, true
	case digest.Forbidden:
		n.respond(ctx, tx, req, sip.StatusForbidden, "Forbidden")
		return user, false
	}
	var hs []sip.Header
	for _, c := range n.auth.Challenges(outcome == digest.Stale) {
		hs = append(hs, sip.NewHeader(challHeader, c))
	}
	n.respond(ctx, tx, req, code, reason, hs...)
	return user, false
}

// dropCredentials removes the credentials for this realm from a request
// about to be forwarded (RFC 3261 §22.3: a proxy consumes its own).
func (n *Node) dropCredentials(req *sip.Request) {
	removeAll(req, "Proxy-Authorization", func(h sip.Header) bool {
		c, err := digest.ParseCredentials(h.Value())
		return err != nil || c.Realm == n.opts.Domain
	})
}

// subscriberCacheMax bounds the subscribers a node keeps: past it, the
// cache starts again empty.
const subscriberCacheMax = 1 << 16

// subscribers keeps the subscribers a node read from the records for
// Options.SubscriberCacheTTL, so that a subscriber's calls and
// registrations do not each read the records database: a subscriber
// added is found at once (absence is never kept), one disabled or given
// a new password is seen by every node within the TTL.
type subscribers struct {
	mu sync.Mutex
	m  map[string]cachedSubscriber
}

type cachedSubscriber struct {
	s  records.SIPSubscriber
	at time.Time
}

// subscriber reads a subscriber, from the cache when it was read less
// than SubscriberCacheTTL ago. Errors: records.ErrNotFound.
func (n *Node) subscriber(ctx context.Context, user string) (records.SIPSubscriber, error) {
	ttl := n.opts.SubscriberCacheTTL
	if ttl < 0 {
		return n.deps.Subscribers.SIPSubscriber(ctx, user)
	}
	now := n.now()
	c := &n.subs
	c.mu.Lock()
	e, ok := c.m[user]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < ttl && !now.Before(e.at) {
		return e.s, nil
	}
	s, err := n.deps.Subscribers.SIPSubscriber(ctx, user)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		delete(c.m, user)
		return s, err
	}
	if c.m == nil || len(c.m) >= subscriberCacheMax {
		c.m = make(map[string]cachedSubscriber)
	}
	c.m[user] = cachedSubscriber{s: s, at: now}
	return s, nil
}
