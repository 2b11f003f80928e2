package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/console"
)

// fakeAPI answers the records, calls and alarms routes with the bodies
// their interface documents, and records what the console asked.
type fakeAPI struct {
	mu     sync.Mutex
	acks   []string
	tokens []string
	export string
	stats  []string // the queries of GET /v1/cdrs/stats
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	f.tokens = append(f.tokens, tok)
	f.mu.Unlock()
	if tok != opToken && tok != roToken {
		w.WriteHeader(http.StatusUnauthorized)
		if r.URL.Path == "/healthz" {
			fmt.Fprint(w, `{"status":"ok"}`)
		}
		return
	}
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	send := func(s string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, s)
	}
	switch {
	case r.URL.Path == "/healthz":
		send(`{"status":"ok","store":"ok","bus":"ok"}`)
	case r.URL.Path == "/v1/cdrs/stats":
		f.mu.Lock()
		f.stats = append(f.stats, r.URL.RawQuery)
		f.mu.Unlock()
		var b []string
		for h := range 24 {
			b = append(b, fmt.Sprintf(`{"start":%q,"count":%d,"duration_seconds":60,"voice":{"count":%d,"duration_seconds":60},"video":{"count":0,"duration_seconds":0}}`,
				day.Add(time.Duration(h)*time.Hour).Format(time.RFC3339), h, h))
		}
		send(fmt.Sprintf(`{"bucket":"hour","start":%q,"end":%q,"time_zone":"Asia/Shanghai","totals":{"start":%q,"count":276,"duration_seconds":1440,"voice":{"count":276,"duration_seconds":1440},"video":{"count":0,"duration_seconds":0}},"buckets":[%s]}`,
			day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339), day.Format(time.RFC3339), strings.Join(b, ",")))
	case r.URL.Path == "/v1/cdrs":
		send(`{"cdrs":[{"id":"c1","call_id":"abc@h","caller":"8001001","called":"<b>8001002</b>","type":"voice","connected":true,"start":"2026-12-01T09:00:00+08:00","duration_seconds":30,"node":"sip-a"}],"next":"cursor-2"}`)
	case r.URL.Path == "/v1/cdrs/export":
		f.mu.Lock()
		f.export = r.URL.RawQuery
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprint(w, "id,caller\nc1,8001001\n")
	case r.URL.Path == "/v1/calls/live":
		send(`{"calls":[{"id":"c9","call_id":"live@h","caller":"8001003","called":"8001004","type":"video","start":"2026-12-01T10:00:00+08:00","node":"sip-b"}]}`)
	case r.URL.Path == "/v1/cdrs/c1":
		send(`{"id":"c1","call_id":"abc@h","caller":"8001001","called":"8001002","type":"voice","connected":true,"start":"2026-12-01T09:00:00+08:00","status":200,"node":"sip-a"}`)
	case r.URL.Path == "/v1/cdrs/c1/log":
		send(`{"id":"c1","call_id":"abc@h","lines":[
			{"time":"2026-12-01T09:00:00+08:00","level":"INFO","node":"sip-a","direction":"in","peer":"10.0.0.9:5060","message":"INVITE sip:8001002 SIP/2.0\nUser-Agent: <script>alert(3)</script>"},
			{"time":"2026-12-01T09:00:00.001+08:00","level":"INFO","node":"sip-a","message":"route to 10.0.0.20"},
			{"time":"2026-12-01T09:00:00.002+08:00","level":"INFO","node":"sip-a","direction":"out","peer":"10.0.0.20:5060","message":"INVITE sip:8001002 SIP/2.0"},
			{"time":"2026-12-01T09:00:00.030+08:00","level":"INFO","node":"sip-a","direction":"in","peer":"10.0.0.20:5060","message":"SIP/2.0 200 OK"}]}`)
	case r.URL.Path == "/v1/alarms":
		send(`{"alarms":[{"id":"a1","kind":"room.failed","subject":"r1","severity":"critical","raised_at":"2026-12-01T09:00:00Z","cleared_at":null,"acked":false},
			{"id":"a0","kind":"node.down","subject":"sim-2","severity":"major","raised_at":"2026-12-01T08:00:00Z","cleared_at":"2026-12-01T08:01:00Z","acked":true}]}`)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/alarms/a1/ack":
		if tok != opToken {
			w.WriteHeader(http.StatusForbidden)
			send(`{"error":{"code":"FORBIDDEN","message":"a readonly token may not acknowledge"}}`)
			return
		}
		f.mu.Lock()
		f.acks = append(f.acks, "a1")
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
		send(`{"error":{"code":"NOT_FOUND","message":"no route"}}`)
	}
}

// consoleOn serves a console reading the API at api.
func consoleOn(t *testing.T, api http.Handler, o console.Options) (*httptest.Server, *console.Console) {
	t.Helper()
	fake := httptest.NewServer(api)
	t.Cleanup(fake.Close)
	o.APIURL = fake.URL
	c, err := console.New(o, console.Deps{Tokens: []config.Token{
		{Name: "ops", Token: opToken, Role: config.RoleOperator}, {Name: "auditor", Token: roToken, Role: config.RoleReadonly}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return srv, c
}

func browserOn(t *testing.T, base string) *browser {
	p := &platform{t: t, base: base}
	return p.browser()
}

func TestCallsPages(t *testing.T) {
	f := &fakeAPI{}
	srv, _ := consoleOn(t, f, console.Options{})
	b := browserOn(t, srv.URL)
	b.login(opToken)

	t.Run("calls: live list, totals, hourly bars, records, export", func(t *testing.T) {
		resp, body := b.get("/calls?type=voice&caller=8001*")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /calls: %d %s", resp.StatusCode, body)
		}
		for _, want := range []string{"1 live calls", "8001003", `<td>276</td>`, `id="chart-data"`, `&lt;b&gt;8001002&lt;/b&gt;`,
			`href="/calls/c1"`, `page=cursor-2`, `href="/calls.csv?`} {
			if !strings.Contains(body, want) {
				t.Errorf("the calls page lacks %q", want)
			}
		}
		i := strings.Index(body, `id="chart-data">`)
		raw := body[i+len(`id="chart-data">`):]
		raw = raw[:strings.Index(raw, "</script>")]
		var chart struct {
			Bucket string   `json:"bucket"`
			Labels []string `json:"labels"`
			Voice  []int64  `json:"voice"`
		}
		if err := json.Unmarshal([]byte(raw), &chart); err != nil {
			t.Fatalf("chart data %q: %v", raw, err)
		}
		if chart.Bucket != "hour" || len(chart.Voice) != 24 || chart.Labels[9] != "09:00" || chart.Voice[23] != 23 {
			t.Fatalf("chart %+v", chart)
		}
		resp, body = b.get("/calls.csv?type=voice&caller=8001*")
		if resp.StatusCode != http.StatusOK || body != "id,caller\nc1,8001001\n" || !strings.Contains(resp.Header.Get("Content-Disposition"), "calls.csv") {
			t.Fatalf("export: %d %q", resp.StatusCode, body)
		}
		q, _ := url.ParseQuery(f.export)
		if q.Get("type") != "voice" || q.Get("caller") != "8001*" {
			t.Fatalf("the export asked the API %q", f.export)
		}
	})

	t.Run("days of the query become the platform's day bounds", func(t *testing.T) {
		resp, body := b.get("/calls?from=2026-11-01&to=2026-11-03")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /calls: %d %s", resp.StatusCode, body)
		}
		f.mu.Lock()
		q, _ := url.ParseQuery(f.stats[len(f.stats)-1])
		f.mu.Unlock()
		// The platform's zone (+08:00) comes from the API's own answer;
		// the last day is included.
		if q.Get("start") != "2026-11-01T00:00:00+08:00" || q.Get("end") != "2026-11-04T00:00:00+08:00" {
			t.Fatalf("the range asked of the API: %v", q)
		}
		resp, body = b.get("/calls?from=yesterday")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "from: give days as YYYY-MM-DD") {
			t.Fatalf("a bad day: %d", resp.StatusCode)
		}
	})

	t.Run("a call's log is a ladder, its SIP headers text", func(t *testing.T) {
		_, body := b.get("/calls/c1")
		if strings.Contains(body, "<script>alert(3)") || !strings.Contains(body, "&lt;script&gt;alert(3)&lt;/script&gt;") {
			t.Fatal("the SIP message is not escaped")
		}
		for _, want := range []string{"<th scope=\"col\">10.0.0.9:5060</th><th scope=\"col\">sip-a</th><th scope=\"col\">10.0.0.20:5060</th>",
			`colspan="2" class="arrow right"`, `colspan="1" class="note"`, `<td></td><td colspan="2" class="arrow right"`, `<td></td><td colspan="2" class="arrow left"`} {
			if !strings.Contains(body, want) {
				t.Errorf("the ladder lacks %q", want)
			}
		}
	})

	t.Run("acknowledge an alarm; a readonly session may not", func(t *testing.T) {
		_, body := b.get("/alarms")
		if !strings.Contains(body, `action="/alarms/a1/ack"`) || !strings.Contains(body, "sim-2") {
			t.Fatalf("the alarms page: %.500s", body)
		}
		resp, _ := b.post("/alarms/a1/ack", url.Values{"csrf": {csrfOf(t, body)}})
		if resp.StatusCode != http.StatusSeeOther || len(f.acks) != 1 {
			t.Fatalf("ack: %d, acks %v", resp.StatusCode, f.acks)
		}
		ro := browserOn(t, srv.URL)
		ro.login(roToken)
		_, body = ro.get("/alarms")
		if strings.Contains(body, `action="/alarms/a1/ack"`) {
			t.Fatal("a readonly session sees the Acknowledge button")
		}
	})

	t.Run("the API gets the session's token, the browser never", func(t *testing.T) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, tok := range f.tokens {
			if tok != opToken && tok != roToken {
				t.Fatalf("the API was sent %q", tok)
			}
		}
	})
}

func TestSessionExpires(t *testing.T) {
	srv, _ := consoleOn(t, &fakeAPI{}, console.Options{IdleTimeout: time.Nanosecond})
	b := browserOn(t, srv.URL)
	b.login(opToken)
	resp, _ := b.get("/alarms")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("a page of an expired session: %d, want a redirect to /login", resp.StatusCode)
	}
}
