package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/console"
	"github.com/convene/convene/internal/testkit"
)

var pages = []string{"/", "/platforms", "/nodes", "/conferences", "/conferences/5100001", "/licences", "/calls",
	"/calls/some-call", "/alarms", "/hosts"}

func TestSessions(t *testing.T) {
	p := startPlatform(t, platformOptions{})
	b := p.browser()

	t.Run("without a session every page redirects to /login", func(t *testing.T) {
		for _, path := range pages {
			resp, _ := b.get(path)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("GET %s: %d to %q, want 303 to /login", path, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		resp, body := b.get("/login")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<label for="token">`) {
			t.Fatalf("GET /login: %d %.200s", resp.StatusCode, body)
		}
	})

	t.Run("a token the API refuses gets no session", func(t *testing.T) {
		resp, body := b.do(http.MethodPost, "/v1/session", "application/json", strings.NewReader(`{"token":"not-a-token"}`))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "UNAUTHORIZED") {
			t.Fatalf("login with a bad token: %d %s", resp.StatusCode, body)
		}
		if len(resp.Cookies()) != 0 {
			t.Fatalf("a refused login set cookies: %v", resp.Cookies())
		}
	})

	t.Run("the cookie holds a session id, never the token", func(t *testing.T) {
		resp := b.login(opToken)
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == console.CookieName {
				ck = c
			}
		}
		if ck == nil {
			t.Fatal("no session cookie")
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Value == "" || strings.Contains(ck.Value, opToken) {
			t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, a random id", ck)
		}
		for _, path := range pages {
			resp, body := b.get(path)
			if resp.StatusCode == http.StatusSeeOther || strings.Contains(body, opToken) {
				t.Errorf("GET %s with a session: %d (or the page shows the token)", path, resp.StatusCode)
			}
		}
	})

	t.Run("the API's own routes are not shadowed", func(t *testing.T) {
		resp, body := b.get("/v1/nodes")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /v1/nodes with only a console cookie: %d %s, want 401", resp.StatusCode, body)
		}
		resp, body = b.get("/no-such-page")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"NOT_FOUND"`) {
			t.Fatalf("GET /no-such-page: %d %s, want the API's JSON 404", resp.StatusCode, body)
		}
	})

	t.Run("logging out ends the session", func(t *testing.T) {
		resp, _ := b.do(http.MethodDelete, "/v1/session", "", nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE /v1/session: %d", resp.StatusCode)
		}
		resp, _ = b.get("/nodes")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET /nodes after logout: %d, want a redirect to /login", resp.StatusCode)
		}
	})

	t.Run("the login form works without JavaScript", func(t *testing.T) {
		b := p.browser()
		resp, _ := b.post("/v1/session", url.Values{"token": {opToken}, "next": {"/nodes"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/nodes" {
			t.Fatalf("form login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, body := b.get("/nodes")
		if resp.StatusCode != http.StatusOK || strings.Count(body, `data-node="`) != 3 {
			t.Fatalf("GET /nodes: %d, want 3 nodes: %.300s", resp.StatusCode, body)
		}
		// An address elsewhere is not where a login goes.
		resp, _ = b.post("/v1/session", url.Values{"token": {opToken}, "next": {"//evil.example/"}})
		if resp.Header.Get("Location") != "/" {
			t.Fatalf("form login with an outside next: to %q, want /", resp.Header.Get("Location"))
		}
	})
}

func TestActions(t *testing.T) {
	p := startPlatform(t, platformOptions{})
	op := p.browser()
	op.login(opToken)
	ro := p.browser()
	ro.login(roToken)

	evil := p.create("<script>alert(1)</script>")
	t.Run("names from outside are shown as text", func(t *testing.T) {
		for _, path := range []string{"/conferences", "/conferences/" + evil.E164} {
			_, body := op.get(path)
			if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Fatalf("GET %s does not escape the name", path)
			}
		}
	})

	c := p.create("board meeting")
	t.Run("a readonly token sees no action buttons, and the API refuses its actions", func(t *testing.T) {
		_, body := ro.get("/conferences/" + c.E164)
		if strings.Contains(body, `action="/conferences/`+c.E164+`/end"`) {
			t.Fatal("a readonly session sees the End button")
		}
		_, body = ro.get("/conferences")
		if strings.Contains(body, ">End</button>") {
			t.Fatal("a readonly session sees End buttons")
		}
		csrf := csrfOf(t, body)
		resp, _ := ro.post("/conferences/"+c.E164+"/end", url.Values{"csrf": {csrf}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("readonly end: %d", resp.StatusCode)
		}
		_, body = ro.get("/conferences/" + c.E164)
		if !strings.Contains(body, "FORBIDDEN") {
			t.Fatalf("the readonly end's refusal is not shown: %.2000s", body)
		}
		if _, err := p.api.Conference(context.Background(), c.E164); err != nil {
			t.Fatalf("a readonly session ended the conference: %v", err)
		}
	})

	t.Run("a post without the session's CSRF token is refused", func(t *testing.T) {
		for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
			resp, _ := op.post("/conferences/"+c.E164+"/end", form)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("end with csrf %q: %d, want 403", form.Get("csrf"), resp.StatusCode)
			}
		}
		_, body := op.get("/conferences")
		resp, _ := op.do(http.MethodPost, "/conferences/"+c.E164+"/end", "application/x-www-form-urlencoded",
			strings.NewReader(url.Values{"csrf": {csrfOf(t, body)}}.Encode()), "Origin", "http://evil.example")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("end from another origin: %d, want 403", resp.StatusCode)
		}
		if _, err := p.api.Conference(context.Background(), c.E164); err != nil {
			t.Fatalf("a refused post ended the conference: %v", err)
		}
	})

	t.Run("an operator renames and ends a conference", func(t *testing.T) {
		_, body := op.get("/conferences/" + c.E164)
		csrf := csrfOf(t, body)
		op.post("/conferences/"+c.E164+"/rename", url.Values{"csrf": {csrf}, "name": {"board & co"}})
		testkit.AwaitWithin(t, 30*time.Second, "the rename", func() bool {
			cf, err := p.api.Conference(context.Background(), c.E164)
			return err == nil && cf.Name == "board & co"
		})
		resp, _ := op.post("/conferences/"+c.E164+"/end", url.Values{"csrf": {csrf}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("end: %d", resp.StatusCode)
		}
		if _, err := p.api.Conference(context.Background(), c.E164); err == nil {
			t.Fatal("the conference still runs after End")
		}
		_, body = op.get("/conferences")
		if !strings.Contains(body, "Conference "+c.E164+" ended.") {
			t.Fatal("no word that the conference ended")
		}
	})

	t.Run("an operator stops and starts a plugin", func(t *testing.T) {
		host := p.st.Host.Name()
		_, body := op.get("/hosts")
		action := `action="/hosts/` + host + `/plugins/convene.breakout/stop"`
		if !strings.Contains(body, action) || strings.Contains(body, "/plugins/convene.console/stop") {
			t.Fatalf("the hosts page: want a stop button for breakout and none for the console")
		}
		state := func() string {
			hs, err := p.api.Hosts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hs {
				if ps, ok := h.Plugin("convene.breakout"); ok && h.Host == host {
					return ps.State
				}
			}
			return ""
		}
		op.post("/hosts/"+host+"/plugins/convene.breakout/stop", url.Values{"csrf": {csrfOf(t, body)}})
		testkit.AwaitWithin(t, 30*time.Second, "breakout stopped", func() bool { return state() == "stopped" })
		_, body = op.get("/hosts")
		op.post("/hosts/"+host+"/plugins/convene.breakout/start", url.Values{"csrf": {csrfOf(t, body)}})
		testkit.AwaitWithin(t, 30*time.Second, "breakout running", func() bool { return state() == "running" })
		_, body = ro.get("/hosts")
		if strings.Contains(body, "/plugins/convene.breakout/stop") {
			t.Fatal("a readonly session sees the stop buttons")
		}
	})

	t.Run("a fragment request gets the live part only", func(t *testing.T) {
		resp, body := op.do(http.MethodGet, "/conferences", "", nil, "HX-Request", "true")
		if resp.StatusCode != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, `id="conferences"`) {
			t.Fatalf("fragment: %d %.300s", resp.StatusCode, body)
		}
	})
}

func TestTenant(t *testing.T) {
	p := startPlatform(t, platformOptions{})
	mine := p.create("ours")
	other, err := p.api.CreateConference(context.Background(), apiclient.CreateConferenceRequest{
		Name: "theirs", Domain: "other", Scale: 8, Resolution: "720p", DurationMinutes: 60})
	if err != nil {
		t.Fatal(err)
	}
	b := p.browser()
	b.login(tnToken)
	_, body := b.get("/conferences")
	if !strings.Contains(body, `data-e164="`+mine.E164+`"`) || strings.Contains(body, other.E164) {
		t.Fatalf("a tenant's conferences page: want %s and not %s", mine.E164, other.E164)
	}
	_, body = b.get("/licences")
	if !strings.Contains(body, "Acme bank") || strings.Contains(body, "Other bank") {
		t.Fatal("a tenant sees another tenant's licence")
	}
	_, body = b.get("/nodes")
	if !strings.Contains(body, "Your token may not read this") {
		t.Fatal("the nodes page does not say the tenant's token may not read it")
	}
	_, body = b.get("/platforms")
	if strings.Contains(body, "Fail…") {
		t.Fatal("a tenant sees the room actions")
	}
}

func TestUnavailableParts(t *testing.T) {
	// No call records server, no alarms: the pages say so, they do not
	// fail.
	p := startPlatform(t, platformOptions{})
	b := p.browser()
	b.login(opToken)
	for _, path := range []string{"/calls", "/alarms", "/"} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Not available") {
			t.Errorf("GET %s: %d, want a page saying what is not available", path, resp.StatusCode)
		}
	}
	// The static files are served, vendored.
	for _, f := range []string{"/static/vendor/htmx-2.0.11.min.js", "/static/vendor/uPlot-1.6.32.iife.min.js", "/static/console.css"} {
		resp, body := b.get(f)
		if resp.StatusCode != http.StatusOK || len(body) < 100 {
			t.Errorf("GET %s: %d", f, resp.StatusCode)
		}
	}
}

func TestEventRelay(t *testing.T) {
	p := startPlatform(t, platformOptions{})
	b := p.browser()
	b.login(opToken)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/console/events", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /console/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	c := p.create("relayed")
	for seen := false; !seen; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended before the conference's event")
			}
			seen = strings.HasPrefix(l, "data: ") && strings.Contains(l, c.E164)
		case <-ctx.Done():
			t.Fatal("no event of the new conference")
		}
	}
	// Logging out ends the session's streams.
	if resp, _ := b.do(http.MethodDelete, "/v1/session", "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatal("the stream outlived its session")
		}
	}
}

// The platforms page counts each room's conferences from its nodes, and
// those moving out of a failed room, without reading the whole list.
func TestPlatformsCountsByRoom(t *testing.T) {
	p := startPlatform(t, platformOptions{})
	for i := range 6 {
		p.create("counted " + strconv.Itoa(i))
	}
	b := p.browser()
	b.login(opToken)
	rooms := func() map[string][2]int {
		_, body := b.get("/platforms")
		out := map[string][2]int{}
		row := regexp.MustCompile(`(?s)<tr data-room="([^"]+)">.*?<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>`)
		for _, m := range row.FindAllStringSubmatch(body, -1) {
			running, _ := strconv.Atoi(m[3])
			moving, _ := strconv.Atoi(m[4])
			out[m[1]] = [2]int{running, moving}
		}
		return out
	}
	want := map[string][2]int{}
	confs, err := p.api.PlatformConferences(context.Background(), "p1", "")
	if err != nil || len(confs) != 6 {
		t.Fatalf("conferences: %d, %v", len(confs), err)
	}
	for _, c := range confs {
		n := want[c.Room]
		n[0]++
		want[c.Room] = n
	}
	got := rooms()
	for room, n := range want {
		if got[room] != n {
			t.Fatalf("room %s: running, moving = %v; want %v (page: %v)", room, got[room], n, got)
		}
	}
	total := 0
	for _, n := range got {
		total += n[0] + n[1]
	}
	if total != 6 {
		t.Fatalf("the rooms count %d conferences, want 6: %v", total, got)
	}
}
