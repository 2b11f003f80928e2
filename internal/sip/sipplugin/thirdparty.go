package sipplugin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/records"
)

// ThirdPartyID is the plugin of the call records interface for the
// bank's own systems (seed 003's 话单接口).
const ThirdPartyID = "convene.cdr.thirdparty"

// Third-party interface defaults.
const (
	// DefaultThirdPartyListen is seed 003's port of the interface.
	DefaultThirdPartyListen = "127.0.0.1:8068"
	// ThirdPartyPath is the one path it serves.
	ThirdPartyPath = "/cdrs"
	// MinThirdPartyToken is the shortest credential it accepts, in bytes.
	MinThirdPartyToken = 16
)

func init() {
	host.Register(host.Plugin{
		ID:     ThirdPartyID,
		Doc:    "the call records interface for other systems (GET /cdrs) on its own listener, with its own bearer token, read-only",
		Server: func() host.Server { return new(ThirdParty) },
		Config: func() any { return NewThirdPartyConfig() },
	})
}

// ThirdPartyConfig is a convene.cdr.thirdparty section.
type ThirdPartyConfig struct {
	// Listen is the interface's own address (seed 003: port 8068).
	Listen string `yaml:"listen"`
	// TokenFile is a file holding the bearer token the other systems
	// send (its first line; surrounding spaces ignored). Give it or
	// Token, not both.
	TokenFile string `yaml:"token_file"`
	// Token is the bearer token itself.
	Token string `yaml:"token"`
	// Records is the records database the call records are read from.
	Records host.ResourceRef `yaml:"records"`
	// TimeZone is the platform's time zone of the query defaults (today)
	// and of the times answered; "" is UTC.
	TimeZone string `yaml:"time_zone"`
}

// NewThirdPartyConfig is the interface's configuration with its defaults.
func NewThirdPartyConfig() *ThirdPartyConfig {
	return &ThirdPartyConfig{Listen: DefaultThirdPartyListen, Records: "records"}
}

// ThirdParty is the convene.cdr.thirdparty server: GET /cdrs with the
// parameters and the answer of the API's GET /v1/cdrs ({"cdrs":[...],
// "next":"..."}, cursor paginated), on a listener of its own, behind a
// bearer token of its own. It reads and never writes.
type ThirdParty struct {
	svc    *cdr.Service
	listen string
	// token is the digest of the credential: compared in constant time
	// whatever the length sent.
	token [sha256.Size]byte
	log   *slog.Logger

	ln  net.Listener
	srv *http.Server

	served, refused atomic.Int64
}

// Provision reads the configuration and the credential.
func (t *ThirdParty) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*ThirdPartyConfig)
	if c.Listen == "" || strings.EqualFold(c.Listen, "none") {
		return errors.New("listen: the call records interface needs an address of its own (seed 003's is " + DefaultThirdPartyListen + "); leave the server out of the host file to run none")
	}
	token, err := thirdPartyToken(c)
	if err != nil {
		return err
	}
	db, err := host.ResourceOf[*records.DB](ctx, c.Records)
	if err != nil {
		return err
	}
	// The service is only read through: it is never started, so it
	// writes nothing and runs no sweeps.
	if t.svc, err = cdr.New(cdr.Options{TimeZone: c.TimeZone}, db, ctx.Logger()); err != nil {
		return err
	}
	t.listen, t.token, t.log = c.Listen, sha256.Sum256([]byte(token)), ctx.Logger()
	labels := prometheus.Labels{"server": ctx.Name()}
	for _, m := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"convene_cdr_thirdparty_requests_total", "Requests the call records interface answered with call records.", &t.served},
		{"convene_cdr_thirdparty_refused_total", "Requests the call records interface refused for a missing or wrong token.", &t.refused},
	} {
		v := m.v
		_ = ctx.Metrics().Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) }))
	}
	return nil
}

// thirdPartyToken is the configured credential: refused when absent,
// given twice, or too short to be a secret. Its value is never in an
// error.
func thirdPartyToken(c *ThirdPartyConfig) (string, error) {
	token := strings.TrimSpace(c.Token)
	switch {
	case c.TokenFile != "" && c.Token != "":
		return "", errors.New("token and token_file: give the call records interface's credential once, in token_file (preferred) or token")
	case c.TokenFile != "":
		data, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("token_file: the call records interface's credential could not be read: %w", err)
		}
		token, _, _ = strings.Cut(string(data), "\n")
		token = strings.TrimSpace(token)
		if token == "" {
			return "", fmt.Errorf("token_file %s is empty: write the bearer token the other systems will send into it (at least %d characters, e.g. openssl rand -hex 24)", c.TokenFile, MinThirdPartyToken)
		}
	case token == "":
		return "", fmt.Errorf("no credential: the call records interface serves only with a bearer token of its own; set token_file (a file holding it, e.g. from openssl rand -hex 24) or token, at least %d characters", MinThirdPartyToken)
	}
	if len(token) < MinThirdPartyToken {
		return "", fmt.Errorf("the call records interface's token is %d characters long: use at least %d (e.g. openssl rand -hex 24)", len(token), MinThirdPartyToken)
	}
	return token, nil
}

// Start listens and serves in the background.
func (t *ThirdParty) Start(context.Context) error {
	ln, err := net.Listen("tcp", t.listen)
	if err != nil {
		return fmt.Errorf("call records interface: listen on %s: %w", t.listen, err)
	}
	t.ln = ln
	t.srv = &http.Server{Handler: t, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Error("call records interface stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	t.log.Info("call records interface listening", "addr", ln.Addr().String())
	return nil
}

// Stop stops serving, letting requests in flight end until ctx does.
func (t *ThirdParty) Stop(ctx context.Context) error {
	var err error
	if t.srv != nil {
		if err = t.srv.Shutdown(ctx); err != nil {
			_ = t.srv.Close()
		}
	}
	return errors.Join(err, t.svc.Shutdown(ctx))
}

// Health is the interface's: serving or not.
func (t *ThirdParty) Health(context.Context) error {
	if t.ln == nil {
		return errors.New("the call records interface is not listening")
	}
	return nil
}

// Addr is the address served on (after Start).
func (t *ThirdParty) Addr() string {
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// ServeHTTP answers GET /cdrs to a request with the token; anything else
// is refused with the API's error envelope.
func (t *ThirdParty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !t.authorized(r) {
		t.refused.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="convene-cdr"`)
		httpkit.WriteError(w, codes.Errorf(codes.Unauthorized, "send the call records interface's token as Authorization: Bearer <token>"))
		return
	}
	if r.URL.Path != ThirdPartyPath {
		httpkit.WriteError(w, codes.Errorf(codes.NotFound, "the call records interface serves GET %s only", ThirdPartyPath))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpkit.WriteError(w, codes.Errorf(codes.MethodNotAllowed, "the call records interface is read-only: use GET %s", ThirdPartyPath))
		return
	}
	if err := t.list(w, r); err != nil {
		if err.Code == codes.Internal && t.log != nil {
			t.log.Error("call records interface: a query failed", "err", err.Err)
		}
		httpkit.WriteError(w, err)
	}
}

// authorized reports whether r carries the token.
func (t *ThirdParty) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], t.token[:]) == 1
}

func (t *ThirdParty) list(w http.ResponseWriter, r *http.Request) *codes.Error {
	q, err := t.svc.ParseQuery(r.URL.Query())
	if err != nil {
		return cdrError(err)
	}
	page, err := t.svc.Query(r.Context(), q)
	if err != nil {
		return cdrError(err)
	}
	t.served.Add(1)
	httpkit.WriteJSON(w, http.StatusOK, page)
	return nil
}
