package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
)

// CookieName is the console's session cookie.
const CookieName = "convene_console"

// session is one logged-in browser. The token never leaves the server:
// the cookie holds only the session's random id.
type session struct {
	id      string
	token   string
	holder  string
	role    string
	domains []string
	csrf    string
	created time.Time
	// done is closed when the session ends: its event streams end too.
	done     chan struct{}
	doneOnce sync.Once

	mu      sync.Mutex // guards the fields below
	seen    time.Time
	flash   string
	api     *apiclient.Client
	apiBase string
}

// CanAct says whether the session's token may change conferences.
func (s *session) CanAct() bool { return s.role != config.RoleReadonly }

// CanOperate says whether it may act on the platform (rooms, platforms,
// plugins, alarms).
func (s *session) CanOperate() bool { return s.role == config.RoleOperator }

// setFlash keeps a message for the next page the session sees.
func (s *session) setFlash(msg string) {
	s.mu.Lock()
	s.flash = msg
	s.mu.Unlock()
}

// takeFlash is the message kept for this page, once.
func (s *session) takeFlash() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

// client is an API client with the session's token against base (made
// once per base and kept).
func (s *session) client(base string) *apiclient.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api == nil || s.apiBase != base {
		if s.api != nil {
			s.api.CloseIdleConnections()
		}
		s.api, s.apiBase = apiclient.New(base, s.token), base
	}
	return s.api
}

// close releases the session's connections.
func (s *session) close() {
	s.doneOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api != nil {
		s.api.CloseIdleConnections()
	}
}

// sessions are the live sessions of this console instance.
type sessions struct {
	ttl  time.Duration // a session's longest life
	idle time.Duration // how long it lives unused
	max  int
	now  func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(ttl, idle time.Duration, max int) *sessions {
	return &sessions{ttl: ttl, idle: idle, max: max, now: time.Now, byID: map[string]*session{}}
}

// randomID is 32 random bytes, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// add starts a session for a token the API accepted. When the console
// holds its most sessions, the one unused longest makes room.
func (m *sessions) add(token, holder, role string, domains []string) *session {
	now := m.now()
	s := &session{id: randomID(), token: token, holder: holder, role: role, domains: domains, csrf: randomID(),
		created: now, seen: now, done: make(chan struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(now)
	if len(m.byID) >= m.max {
		var oldest *session
		for _, o := range m.byID {
			if oldest == nil || o.lastSeen().Before(oldest.lastSeen()) {
				oldest = o
			}
		}
		delete(m.byID, oldest.id)
		oldest.close()
	}
	m.byID[s.id] = s
	return s
}

func (s *session) lastSeen() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

// get is the live session of id, marked used now; nil when there is none
// or it expired.
func (m *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	s, ok := m.byID[id]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	if m.expired(s, now) {
		m.remove(id)
		return nil
	}
	s.mu.Lock()
	s.seen = now
	s.mu.Unlock()
	return s
}

func (m *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.created) >= m.ttl || now.Sub(s.lastSeen()) >= m.idle
}

// remove ends the session id (logging out twice does no harm).
func (m *sessions) remove(id string) {
	m.mu.Lock()
	s, ok := m.byID[id]
	delete(m.byID, id)
	m.mu.Unlock()
	if ok {
		s.close()
	}
}

func (m *sessions) pruneLocked(now time.Time) {
	for id, s := range m.byID {
		if m.expired(s, now) {
			delete(m.byID, id)
			s.close()
		}
	}
}

// closeAll ends every session (the console stops).
func (m *sessions) closeAll() {
	m.mu.Lock()
	all := m.byID
	m.byID = map[string]*session{}
	m.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

// fromRequest is the request's session, or nil.
func (m *sessions) fromRequest(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return m.get(c.Value)
}

// checkCSRF says whether the request carries the session's CSRF token, in
// the form field csrf or the header X-CSRF-Token.
func (s *session) checkCSRF(r *http.Request) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// cookie is the session cookie for s (or, with s nil, the one that
// clears it). Secure only when the request came over TLS.
func cookie(r *http.Request, s *session, ttl time.Duration) *http.Cookie {
	c := &http.Cookie{Name: CookieName, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
	if s == nil {
		c.MaxAge = -1
		return c
	}
	c.Value = s.id
	c.MaxAge = int(ttl / time.Second)
	return c
}
