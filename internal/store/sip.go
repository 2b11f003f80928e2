package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The SIP edge's state, shared by every SIP node of a platform so that
// the nodes run active-active: a user registered through one node is
// reached through the other, a nonce one issued is answered through the
// other, and a call either routed is ended by whichever sees it end.
//
//	sip/reg/<aor>        hash: contact URI -> binding (lua/sip_register.lua)
//	sip/regs/until       zset: aor -> when its last binding expires
//	sip/nonces           hash: nonce -> highest nonce count accepted
//	sip/nonces/until     zset: nonce -> when its record may go
//	sip/call/<call-id>   hash: a call's fields (SIPCall)
//	sip/calls/deadline   zset: call-id -> when the call is over unless refreshed
//	sip/digest-secret    string: the key every node signs its nonces with
//	sip/nodes            hash: node name -> the addresses it listens on
//
// Every write is one script run with an operation id (ops.go), or a plain
// command that is safe to repeat.
var (
	sipRegisterScript = script("sip_register")
	sipNonceScript    = script("sip_nonce")
	sipCallScript     = script("sip_call")
)

var (
	// ErrSIPOutOfOrder refuses a REGISTER whose CSeq is not higher than
	// that of a binding it changes made with the same Call-ID (RFC 3261
	// §10.3 step 7): a request that arrived late. Nothing changed.
	ErrSIPOutOfOrder = errors.New("store: REGISTER out of order: its CSeq is not higher than the binding's")
	// ErrSIPNonceReplay refuses a nonce count already used (or lower).
	ErrSIPNonceReplay = errors.New("store: nonce count already used")
)

const sipSecretKey = "sip/digest-secret"

// SIPBinding is one contact of an address of record.
type SIPBinding struct {
	// Contact is the contact's URI, as the user agent registered it.
	Contact string
	Expires time.Time
	// Q is the contact's q-value as given ("" when none).
	Q string
	// CallID and CSeq of the REGISTER that made or refreshed it.
	CallID string
	CSeq   uint32
	// Node is the SIP node the REGISTER came through; Source the address
	// it came from and Transport its transport (UDP, TCP).
	Node      string
	Source    string
	Transport string
}

// SIPContactChange is one Contact of a REGISTER.
type SIPContactChange struct {
	URI string
	// Expires is the binding's lifetime; 0 removes the binding.
	Expires time.Duration
	Q       string
}

// SIPRegistration is what one REGISTER asks of an address of record.
type SIPRegistration struct {
	AOR       string
	CallID    string
	CSeq      uint32
	Node      string
	Source    string
	Transport string
	// RemoveAll is "Contact: *" with "Expires: 0".
	RemoveAll bool
	Contacts  []SIPContactChange
	Now       time.Time
}

func sipRegKey(aor string) string { return "sip/reg/" + aor }

// SIPRegister applies a REGISTER and returns every binding of the address
// of record after it, highest q first. Errors: ErrSIPOutOfOrder.
func (s *Store) SIPRegister(ctx context.Context, r SIPRegistration) ([]SIPBinding, error) {
	if r.AOR == "" || r.CallID == "" {
		return nil, errors.New("store: a registration needs an address of record and a Call-ID")
	}
	args := []any{"register", r.AOR, r.Now.UnixMilli(), r.CallID, r.CSeq, r.Node, r.Source, r.Transport, flag(r.RemoveAll)}
	for _, c := range r.Contacts {
		if c.URI == "" || strings.ContainsAny(c.URI, "\t\r\n") {
			return nil, fmt.Errorf("store: contact %q is not a URI", c.URI)
		}
		args = append(args, c.URI, int64(c.Expires/time.Second), c.Q)
	}
	if strings.ContainsAny(r.CallID+r.Node+r.Source+r.Transport, "\t\r\n") {
		return nil, errors.New("store: a registration's Call-ID, node, source and transport are single words")
	}
	res, err := s.run(ctx, sipRegisterScript, "", args...)
	if err != nil {
		if res != nil && res.str(1) == "ORDER" {
			return nil, fmt.Errorf("%w: contact %s", ErrSIPOutOfOrder, res.str(2))
		}
		return nil, err
	}
	var out []SIPBinding
	for i := 1; i+2 < len(res); i += 3 {
		exp, _ := strconv.ParseInt(res.str(i+1), 10, 64)
		out = append(out, SIPBinding{Contact: res.str(i), Expires: time.UnixMilli(exp), Q: res.str(i + 2),
			CallID: r.CallID, CSeq: r.CSeq, Node: r.Node, Source: r.Source, Transport: r.Transport})
	}
	sortBindings(out)
	return out, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// SIPBindings returns the bindings of an address of record that have not
// expired at now, highest q first (then latest registered).
func (s *Store) SIPBindings(ctx context.Context, aor string, now time.Time) ([]SIPBinding, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, sipRegKey(aor)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make([]SIPBinding, 0, len(m))
	for uri, v := range m {
		b, ok := decodeBinding(uri, v)
		if ok && b.Expires.After(now) {
			out = append(out, b)
		}
	}
	sortBindings(out)
	return out, nil
}

func decodeBinding(uri, v string) (SIPBinding, bool) {
	f := strings.Split(v, "\t")
	if len(f) < 7 {
		return SIPBinding{}, false
	}
	exp, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return SIPBinding{}, false
	}
	cseq, _ := strconv.ParseUint(f[3], 10, 32)
	return SIPBinding{Contact: uri, Expires: time.UnixMilli(exp), Q: f[1], CallID: f[2], CSeq: uint32(cseq),
		Node: f[4], Source: f[5], Transport: f[6]}, true
}

// qValue reads a q-value; none counts as 1.
func qValue(q string) float64 {
	if q == "" {
		return 1
	}
	v, err := strconv.ParseFloat(q, 64)
	if err != nil {
		return 0
	}
	return v
}

func sortBindings(b []SIPBinding) {
	sort.SliceStable(b, func(i, j int) bool {
		qi, qj := qValue(b[i].Q), qValue(b[j].Q)
		if qi != qj {
			return qi > qj
		}
		if !b[i].Expires.Equal(b[j].Expires) {
			return b[i].Expires.After(b[j].Expires)
		}
		return b[i].Contact < b[j].Contact
	})
}

// SIPSweepBindings drops the expired bindings of up to limit addresses of
// record due at now, and says how many it looked at. Safe to repeat.
func (s *Store) SIPSweepBindings(ctx context.Context, now time.Time, limit int) (int, error) {
	res, err := s.run(ctx, sipRegisterScript, "", "sweep", now.UnixMilli(), limit)
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(res.str(1))
	return n, nil
}

// SIPDigestSecret returns the key the platform's SIP nodes sign their
// nonces with, making it (from random, given by the caller) when there
// is none yet: every node gets the same.
func (s *Store) SIPDigestSecret(ctx context.Context, random string) (string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.rdb.SetNX(ctx, sipSecretKey, random, 0).Err(); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	v, err := s.rdb.Get(ctx, sipSecretKey).Result()
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return v, nil
}

// SIPUseNonce accepts nonce count nc of a nonce, once: a count not higher
// than one accepted before is ErrSIPNonceReplay. The record is kept until
// until (when the nonce can no longer be answered); records past now go.
func (s *Store) SIPUseNonce(ctx context.Context, nonce string, nc uint32, until, now time.Time) error {
	if nonce == "" || nc == 0 {
		return fmt.Errorf("%w: nonce count %d", ErrSIPNonceReplay, nc)
	}
	res, err := s.run(ctx, sipNonceScript, "", nonce, nc, until.UnixMilli(), now.UnixMilli())
	if err != nil {
		if res != nil && res.str(1) == "REPLAY" {
			return fmt.Errorf("%w: count %d, highest accepted %s", ErrSIPNonceReplay, nc, res.str(2))
		}
		return err
	}
	return nil
}

const sipNodesKey = "sip/nodes"

// SIPAnnounceNode records where a SIP node of the platform listens
// (addrs: its addresses, space-separated). Safe to repeat.
func (s *Store) SIPAnnounceNode(ctx context.Context, name, addrs string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.rdb.HSet(ctx, sipNodesKey, name, addrs).Err(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// SIPNodes returns where each SIP node of the platform listens, by name.
func (s *Store) SIPNodes(ctx context.Context) (map[string]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, sipNodesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return m, nil
}
