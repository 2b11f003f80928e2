package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/sip/sipplugin"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

const (
	opToken = "console-operator-token-0123456789"
	roToken = "console-readonly-token-0123456789"
	tnToken = "console-tenant-token-0123456789"
)

// platform is one platform running in the test process with the console
// on its API's listener.
type platform struct {
	t    *testing.T
	st   *stack.Stack
	base string
	api  *apiclient.Client
}

type platformOptions struct {
	nodes    int
	capacity int
	// records, when set, is a SQLite file of call records, served by the
	// call records server.
	records string
	// alarms runs the alarm service.
	alarms bool
}

func testConfig() *config.Config {
	all := func(n int) license.Limits {
		l := license.Limits{}
		for _, c := range license.All() {
			l[c.String()] = n
		}
		return l
	}
	c := &config.Config{
		Platforms: []config.Platform{
			{Moid: "p1", Name: "Platform one", NumberSegment: "51", Rooms: []config.Room{
				{Moid: "r1", Type: "main"}, {Moid: "r2", Type: "secondary"},
			}},
		},
		Domains: []config.Domain{
			{Moid: "acme", Name: "Acme bank", Platform: "p1", License: all(20000)},
			{Moid: "other", Name: "Other bank", Platform: "p1", License: all(10)},
		},
		API: config.API{Tokens: []config.Token{
			{Name: "ops", Token: opToken, Role: config.RoleOperator},
			{Name: "auditor", Token: roToken, Role: config.RoleReadonly},
			{Name: "acme-admin", Token: tnToken, Role: config.RoleTenant, Domains: []string{"acme"}},
		}},
		Scheduler: config.Scheduler{
			NodeTimeout: 1500 * time.Millisecond, RMSTimeout: 3 * time.Second,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 8, ConfListInterval: 500 * time.Millisecond,
			DisconnectGrace: 250 * time.Millisecond},
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func startPlatform(t *testing.T, o platformOptions) *platform {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = 3
	}
	if o.capacity == 0 {
		o.capacity = 1000
	}
	so := stack.Options{Config: testConfig(), Listen: "127.0.0.1:0", SimNodes: o.nodes, SimCapacity: o.capacity, Console: true, Alarms: o.alarms}
	if o.records != "" {
		so.Records = "sqlite://" + o.records
		so.Servers = []stack.Server{{Name: "records", Section: map[string]any{"plugin": sipplugin.RecordsID, "records": stack.RecordsResource}}}
	}
	st, err := stack.Start(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Stop(ctx)
	})
	p := &platform{t: t, st: st, base: "http://" + st.API.Addr()}
	p.api = apiclient.New(p.base, opToken)
	testkit.AwaitWithin(t, 30*time.Second, fmt.Sprintf("%d nodes up", o.nodes), func() bool {
		nodes, err := p.api.Nodes(context.Background())
		up := 0
		for _, n := range nodes {
			if n.State == "up" {
				up++
			}
		}
		return err == nil && up == o.nodes
	})
	return p
}

// recordsFile is a SQLite file for call records in the test's directory.
func recordsFile(t *testing.T) string { return filepath.Join(t.TempDir(), "records.db") }

// browser is an HTTP client with a cookie jar that does not follow
// redirects, as a page's requests look to the console.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (p *platform) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: p.t, base: p.base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends a request and reads the whole answer.
func (b *browser) do(method, path, ctype string, body io.Reader, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func (b *browser) get(path string) (*http.Response, string) {
	return b.do(http.MethodGet, path, "", nil)
}

// login logs in with token through POST /v1/session.
func (b *browser) login(token string) *http.Response {
	b.t.Helper()
	resp, body := b.do(http.MethodPost, "/v1/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`))
	if resp.StatusCode != http.StatusNoContent {
		b.t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	return resp
}

// post submits a form of the console with the session's CSRF token, as
// read from page.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	return b.do(http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// csrfOf is the CSRF token a page carries.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	const mark = `name="csrf" value="`
	i := strings.Index(page, mark)
	if i < 0 {
		t.Fatalf("no CSRF token in the page")
	}
	rest := page[i+len(mark):]
	return rest[:strings.IndexByte(rest, '"')]
}

func (p *platform) create(name string) apiclient.Conference {
	p.t.Helper()
	c, err := p.api.CreateConference(context.Background(), apiclient.CreateConferenceRequest{
		Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60})
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}
