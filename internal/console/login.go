package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
)

// loginRequest is the body of POST /v1/session.
type loginRequest struct {
	Token string `json:"token"`
}

type loginData struct {
	Next  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if s := c.sessions.fromRequest(r); s != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", nil, "Log in", loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

// safeNext is where to go after logging in: a path of this site only.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}

// login exchanges an API token for a session: a JSON body {"token"}
// answers 204 with the cookie; the login form's post (no JavaScript)
// redirects to the page asked for.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	form := ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data"
	if !sameOrigin(r) {
		httpkit.WriteError(w, codes.Errorf(codes.Forbidden, "this login came from another site; open the console's own /login page"))
		return
	}
	var token, next string
	if form {
		token, next = strings.TrimSpace(r.PostFormValue("token")), safeNext(r.PostFormValue("next"))
	} else {
		var req loginRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || dec.Decode(&struct{}{}) != io.EOF {
			httpkit.WriteError(w, codes.Errorf(codes.BadRequest, `send {"token":"<API token>"} as JSON`))
			return
		}
		token = strings.TrimSpace(req.Token)
	}
	fail := func(status int, code, msg string) {
		if form {
			securityHeaders(w)
			c.render(w, r, status, "login", nil, "Log in", loginData{Next: next, Error: code + ": " + msg})
			return
		}
		httpkit.WriteError(w, codes.Errorf(code, "%s", msg))
	}
	if token == "" {
		fail(http.StatusBadRequest, codes.BadRequest, "give an API token")
		return
	}
	base, err := c.apiBase(r)
	if err != nil {
		fail(http.StatusServiceUnavailable, codes.Internal, "the console does not know the API's address: set api_url in its section of the host file")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.opts.RequestTimeout)
	defer cancel()
	cl := apiclient.New(base, token)
	defer cl.CloseIdleConnections()
	h, err := cl.Health(ctx)
	switch {
	case err != nil:
		c.log.Warn("console: the API did not answer a login", "err", err)
		fail(http.StatusServiceUnavailable, codes.Internal, "the API did not answer; check that it runs and try again")
		return
	case h.Store == "" && h.Bus == "":
		// The API shows the state of its parts only to a token it accepts.
		fail(http.StatusUnauthorized, codes.Unauthorized, "the API does not accept this token; use a token of api.tokens or the one convene serve printed")
		return
	}
	holder, role, domains := c.roleOf(token)
	s := c.sessions.add(token, holder, role, domains)
	c.log.Info("console: logged in", "holder", holder, "role", role)
	http.SetCookie(w, cookie(r, s, c.opts.SessionTTL))
	if form {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// logout ends the request's session: DELETE /v1/session answers 204, the
// logout form's post goes back to /login.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil {
		if s := c.sessions.get(ck.Value); s != nil && r.Method == http.MethodPost && (!sameOrigin(r) || !s.checkCSRF(r)) {
			http.Error(w, "CSRF_FAILED: reload the page and log out again", http.StatusForbidden)
			return
		}
		c.sessions.remove(ck.Value)
	}
	http.SetCookie(w, cookie(r, nil, 0))
	if r.Method == http.MethodPost {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiError is what a page shows for an API call that failed: the code and
// the API's sentence, or "not available" when the platform does not serve
// that part.
func apiError(err error) string {
	var ae *apiclient.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ae) && (ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Code, "NOT_FOUND") || ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Code, "HTTP_")):
		return "Not available: this platform does not serve this part (" + ae.Code + ")."
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
		return "Not available now: " + ae.Code + ": " + ae.Message
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return "Your token may not read this (" + ae.Code + ")."
	case errors.As(err, &ae):
		return ae.Code + ": " + ae.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "The API did not answer in time; reload the page."
	default:
		return "The API could not be reached; reload the page."
	}
}
