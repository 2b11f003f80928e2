package sipplugin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/pgtest"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip/sipplugin"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends are the records databases the call records routes are tested
// on: a SQLite file and a real PostgreSQL.
var backends = []struct {
	name string
	url  func(t testing.TB) string
}{
	{records.SQLite, func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "records.db") }},
	{records.Postgres, pgtest.Start},
}

const (
	opsZone  = "Asia/Shanghai"
	opsToken = "bank-systems-token-0123456789"
)

// opsHost is a host serving the call records routes and the call records
// interface over a records database.
type opsHost struct {
	t     *testing.T
	h     *host.Host
	api   *httptest.Server
	third string // the interface's base URL
	db    *records.DB
}

func startOps(t *testing.T, dbURL string) *opsHost {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "cdr-token")
	if err := os.WriteFile(tokenFile, []byte(opsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := host.Parse("ops.yaml", []byte(fmt.Sprintf(`
host: {name: ops-1, data_dir: %q}
infrastructure:
  records: {plugin: convene.records.sql, url: %q}
servers:
  sip-records: {plugin: convene.sip.records, time_zone: %s}
  cdr-thirdparty: {plugin: convene.cdr.thirdparty, listen: "127.0.0.1:0", token_file: %q, time_zone: %s}
`, dir, dbURL, opsZone, tokenFile, opsZone)))
	if err != nil {
		t.Fatal(err)
	}
	o := &opsHost{t: t}
	if o.h, err = host.New(f, host.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := o.h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = o.h.Stop(ctx)
	})
	o.api = httptest.NewServer(o.h.Handler())
	t.Cleanup(o.api.Close)
	tp, ok := o.h.Instance("cdr-thirdparty")
	if !ok {
		t.Fatal("no call records interface running")
	}
	o.third = "http://" + tp.(*sipplugin.ThirdParty).Addr()
	rs, ok := o.h.Instance("records")
	if !ok {
		t.Fatal("no records database")
	}
	o.db = rs.(*records.PluginServer).Resource().(*records.DB)
	return o
}

// get sends a GET with an optional bearer token and returns the status,
// content type and body.
func get(t *testing.T, u, token string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func decode[T any](t *testing.T, what string, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	return v
}

// planned is a generated call as the records must show it, computed from
// the generator's plan alone.
type planned struct {
	id, caller, called, typ string
	connected               bool
	start                   time.Time
	seconds                 int64
}

func plan(o cdr.GenerateOptions) []planned {
	out := make([]planned, 0, o.Count)
	for i := range o.Count {
		e := cdr.PlanCall(o, i)
		h := sha256.Sum256([]byte(e.CallID + "\x00" + e.FromTag))
		p := planned{id: hex.EncodeToString(h[:12]), caller: e.Caller, called: e.Called, typ: e.Type, connected: !e.Answer.IsZero(), start: e.Start}
		if p.connected {
			p.seconds = int64(math.Round(e.End.Sub(e.Answer).Seconds()))
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b planned) int {
		if c := b.start.Compare(a.start); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	return out
}

// generate writes the planned calls through a call records service on
// the host's records database, as the SIP edge would.
func (o *opsHost) generate(g cdr.GenerateOptions) {
	o.t.Helper()
	ctx := context.Background()
	svc, err := cdr.New(cdr.Options{TimeZone: opsZone}, o.db, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		o.t.Fatal(err)
	}
	defer svc.Shutdown(ctx)
	if _, err := cdr.Generate(ctx, svc, g); err != nil {
		o.t.Fatal(err)
	}
}

func rangeQuery(from, to time.Time, extra ...string) string {
	v := url.Values{"start": {from.Format(time.RFC3339)}, "end": {to.Format(time.RFC3339)}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v.Encode()
}

// walk follows the pages of a listing from base?query and returns the
// pages' bodies.
func walk(t *testing.T, base, query, token string) [][]byte {
	t.Helper()
	var bodies [][]byte
	next := ""
	for range 1000 {
		q := query
		if next != "" {
			q += "&page=" + url.QueryEscape(next)
		}
		code, _, body := get(t, base+"?"+q, token)
		if code != 200 {
			t.Fatalf("GET %s?%s: %d %s", base, q, code, body)
		}
		bodies = append(bodies, body)
		if next = decode[apiclient.CDRPage](t, "page", body).Next; next == "" {
			return bodies
		}
	}
	t.Fatal("the pages never end")
	return nil
}

func ids(t *testing.T, bodies [][]byte) []string {
	var out []string
	for _, b := range bodies {
		for _, c := range decode[apiclient.CDRPage](t, "page", b).CDRs {
			out = append(out, c.ID)
		}
	}
	return out
}

func plannedIDs(ps []planned, keep func(planned) bool) []string {
	var out []string
	for _, p := range ps {
		if keep(p) {
			out = append(out, p.id)
		}
	}
	return out
}

// The REST routes and the call records interface answer what the
// generated calls say: listings page by page, statistics per hour and
// per day, the CSV export; on SQLite and on PostgreSQL.
func TestCDRRoutesMatchGeneratedCalls(t *testing.T) {
	loc, err := time.LoadLocation(opsZone)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 6, 15, 30, 0, 0, loc)
	g := cdr.GenerateOptions{Count: 700, Days: 4, Seed: 12, Now: now, Location: loc}
	calls := plan(g)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			o := startOps(t, b.url(t))
			o.generate(g)
			from, to := time.Date(2025, 3, 2, 0, 0, 0, 0, loc), time.Date(2025, 3, 7, 0, 0, 0, 0, loc)
			in := func(p planned) bool { return !p.start.Before(from) && p.start.Before(to) }

			t.Run("list", func(t *testing.T) {
				got := ids(t, walk(t, o.api.URL+"/v1/cdrs", rangeQuery(from, to, "page_size", "37"), ""))
				if want := plannedIDs(calls, in); !slices.Equal(got, want) || len(want) != g.Count {
					t.Fatalf("listed %d records, planned %d in range (of %d)", len(got), len(want), g.Count)
				}
				filtered := func(p planned) bool {
					return in(p) && p.typ == cdr.Video && p.connected && strings.HasPrefix(p.caller, "8001")
				}
				got = ids(t, walk(t, o.api.URL+"/v1/cdrs", rangeQuery(from, to, "type", "video", "connected", "true", "caller", "8001*"), ""))
				if want := plannedIDs(calls, filtered); !slices.Equal(got, want) || len(want) == 0 {
					t.Fatalf("filtered: listed %v, planned %v", got, want)
				}
			})

			t.Run("stats", func(t *testing.T) {
				day := time.Date(2025, 3, 5, 0, 0, 0, 0, loc)
				for _, tc := range []struct {
					name     string
					from, to time.Time
					bucket   string
					extra    []string
					keep     func(planned) bool
					step     func(time.Time) time.Time
				}{
					{"one day", day, day.AddDate(0, 0, 1), "hour", nil, func(planned) bool { return true },
						func(t time.Time) time.Time { return t.Add(time.Hour) }},
					{"five days", from, to, "day", nil, func(planned) bool { return true },
						func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
					{"five days, voice not connected", from, to, "day", []string{"type", "voice", "connected", "false"},
						func(p planned) bool { return p.typ == cdr.Voice && !p.connected },
						func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
				} {
					t.Run(tc.name, func(t *testing.T) {
						code, _, body := get(t, o.api.URL+"/v1/cdrs/stats?"+rangeQuery(tc.from, tc.to, tc.extra...), "")
						if code != 200 {
							t.Fatalf("%d %s", code, body)
						}
						// The shape, by its keys.
						raw := decode[map[string]json.RawMessage](t, "stats", body)
						for _, k := range []string{"bucket", "totals", "buckets"} {
							if _, ok := raw[k]; !ok {
								t.Fatalf("no %q in %s", k, body)
							}
						}
						st := decode[apiclient.CDRStats](t, "stats", body)
						var want []apiclient.CDRBucket
						var total apiclient.CDRBucket
						for s := tc.from; s.Before(tc.to); s = tc.step(s) {
							bk := apiclient.CDRBucket{Start: s}
							for _, p := range calls {
								if p.start.Before(s) || !p.start.Before(tc.step(s)) || !tc.keep(p) {
									continue
								}
								bk.Count++
								bk.DurationSeconds += p.seconds
								c := &bk.Voice
								if p.typ == cdr.Video {
									c = &bk.Video
								}
								c.Count++
								c.DurationSeconds += p.seconds
							}
							total.Count += bk.Count
							total.DurationSeconds += bk.DurationSeconds
							total.Voice.Count += bk.Voice.Count
							total.Voice.DurationSeconds += bk.Voice.DurationSeconds
							total.Video.Count += bk.Video.Count
							total.Video.DurationSeconds += bk.Video.DurationSeconds
							want = append(want, bk)
						}
						if st.Bucket != tc.bucket || len(st.Buckets) != len(want) {
							t.Fatalf("bucket %q with %d buckets, want %q with %d", st.Bucket, len(st.Buckets), tc.bucket, len(want))
						}
						for i, w := range want {
							gb := st.Buckets[i]
							if !gb.Start.Equal(w.Start) || gb.Count != w.Count || gb.DurationSeconds != w.DurationSeconds || gb.Voice != w.Voice || gb.Video != w.Video {
								t.Fatalf("bucket %d: got %+v, want %+v", i, gb, w)
							}
						}
						if st.Totals.Count != total.Count || st.Totals.DurationSeconds != total.DurationSeconds ||
							st.Totals.Voice != total.Voice || st.Totals.Video != total.Video || total.Count == 0 {
							t.Fatalf("totals %+v, want %+v", st.Totals, total)
						}
					})
				}
			})

			t.Run("export", func(t *testing.T) {
				code, ctype, body := get(t, o.api.URL+"/v1/cdrs/export?"+rangeQuery(from, to, "type", "video"), "")
				if code != 200 || !strings.HasPrefix(ctype, "text/csv") {
					t.Fatalf("%d %s %.200s", code, ctype, body)
				}
				rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(rows[0], cdr.CSVHeader) {
					t.Fatalf("header %v", rows[0])
				}
				var got []string
				for _, r := range rows[1:] {
					if r[6] != cdr.Video {
						t.Fatalf("row of type %s: %v", r[6], r)
					}
					got = append(got, r[0])
				}
				want := plannedIDs(calls, func(p planned) bool { return in(p) && p.typ == cdr.Video })
				if !slices.Equal(got, want) || len(want) == 0 {
					t.Fatalf("exported %d rows, planned %d", len(got), len(want))
				}
			})

			t.Run("third-party interface", func(t *testing.T) {
				q := rangeQuery(from, to, "page_size", "50", "connected", "true")
				api := walk(t, o.api.URL+"/v1/cdrs", q, "")
				third := walk(t, o.third+sipplugin.ThirdPartyPath, q, opsToken)
				if len(api) != len(third) || len(api) < 2 {
					t.Fatalf("%d pages on the API, %d on the interface", len(api), len(third))
				}
				for i := range api {
					if !bytes.Equal(api[i], third[i]) {
						t.Fatalf("page %d differs:\nAPI       %.300s\ninterface %.300s", i, api[i], third[i])
					}
				}
				want := plannedIDs(calls, func(p planned) bool { return in(p) && p.connected })
				if got := ids(t, third); !slices.Equal(got, want) {
					t.Fatalf("the interface listed %d, planned %d", len(got), len(want))
				}
			})
		})
	}
}

// The literal routes win over GET /v1/cdrs/{id}; each route refuses bad
// parameters with 400 BAD_REQUEST naming the parameter.
func TestCDRRoutesRefuseBadParameters(t *testing.T) {
	o := startOps(t, backends[0].url(t))
	for _, tc := range []struct {
		path, param string
	}{
		{"/v1/cdrs?type=fax", "type"},
		{"/v1/cdrs/stats?connected=maybe", "connected"},
		{"/v1/cdrs/stats?start=yesterday", "start"},
		{"/v1/cdrs/stats?start=2025-03-02T00:00:00Z&end=2025-03-01T00:00:00Z", "end"},
		{"/v1/cdrs/stats?start=1980-01-01T00:00:00Z&end=2025-03-01T00:00:00Z", "end"},
		{"/v1/cdrs/stats?colour=red", "colour"},
		{"/v1/cdrs/export?caller=80**", "caller"},
		{"/v1/cdrs/export?page_size=1001", "page_size"},
		{"/v1/cdrs/export?page=not-a-cursor", "page"},
		{"/v1/calls/live?page_size=0", "page_size"},
		{"/v1/calls/live?type=voice", "type"},
	} {
		code, ctype, body := get(t, o.api.URL+tc.path, "")
		env := decode[envelope](t, tc.path, body)
		if code != 400 || env.Error.Code != "BAD_REQUEST" || !strings.Contains(env.Error.Message, `"`+tc.param+`"`) || !strings.HasPrefix(ctype, "application/json") {
			t.Errorf("%s: %d %s %s", tc.path, code, ctype, body)
		}
	}
	// No records yet: the routes answer empty, never 404 (stats and
	// export are not ids).
	for _, p := range []string{"/v1/cdrs/stats", "/v1/cdrs/export", "/v1/calls/live"} {
		if code, _, body := get(t, o.api.URL+p, ""); code != 200 {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	st := decode[apiclient.CDRStats](t, "stats", func() []byte { _, _, b := get(t, o.api.URL+"/v1/cdrs/stats", ""); return b }())
	if st.Bucket != "hour" || len(st.Buckets) != 24 || st.Totals.Count != 0 {
		t.Errorf("today's stats: %+v", st)
	}
}

// The call records interface wants its own token, reads only, and
// serves only /cdrs.
func TestThirdPartyInterfaceAccess(t *testing.T) {
	o := startOps(t, backends[0].url(t))
	for _, tc := range []struct {
		name, auth string
	}{
		{"no token", ""},
		{"wrong token", "Bearer " + strings.Replace(opsToken, "0", "1", 1)},
		{"the token's prefix", "Bearer " + opsToken[:len(opsToken)-1]},
		{"another scheme", "Basic " + opsToken},
	} {
		req, _ := http.NewRequest(http.MethodGet, o.third+"/cdrs", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		env := decode[envelope](t, tc.name, body)
		if resp.StatusCode != 401 || env.Error.Code != "UNAUTHORIZED" || resp.Header.Get("WWW-Authenticate") == "" || bytes.Contains(body, []byte(opsToken[:10])) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
	if code, _, body := get(t, o.third+"/cdrs", opsToken); code != 200 || decode[apiclient.CDRPage](t, "empty", body).CDRs == nil {
		t.Errorf("the right token: %d %s", code, body)
	}
	if code, _, body := get(t, o.third+"/cdrs?page_size=5000", opsToken); code != 400 || !strings.Contains(decode[envelope](t, "page_size", body).Error.Message, `"page_size"`) {
		t.Errorf("a bad page size: %d %s", code, body)
	}
	if code, _, body := get(t, o.third+"/v1/cdrs", opsToken); code != 404 {
		t.Errorf("another path: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, o.third+"/cdrs", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Errorf("POST: %d %v", resp.StatusCode, resp.Header)
	}
}

// Without a credential, or with one too short, the interface does not
// start, and says what to set.
func TestThirdPartyInterfaceNeedsACredential(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, keys, want string
	}{
		{"none", ``, "token_file"},
		{"too short", `token: short`, "at least 16"},
		{"empty file", fmt.Sprintf(`token_file: %q`, empty), "is empty"},
		{"both", fmt.Sprintf(`token: %s, token_file: %q`, opsToken, empty), "once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := "{plugin: convene.cdr.thirdparty, listen: \"127.0.0.1:0\"}"
			if tc.keys != "" {
				sec = "{plugin: convene.cdr.thirdparty, listen: \"127.0.0.1:0\", " + tc.keys + "}"
			}
			f, err := host.Parse("tp.yaml", []byte(fmt.Sprintf(`
host: {name: tp, data_dir: %q}
infrastructure:
  records: {plugin: convene.records.sql, url: %q}
servers:
  cdr-thirdparty: %s
`, dir, filepath.Join(t.TempDir(), "records.db"), sec)))
			if err == nil {
				var h *host.Host
				if h, err = host.New(f, host.Options{}); err == nil {
					err = h.Start(context.Background())
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					defer h.Stop(ctx)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), opsToken) {
				t.Fatalf("started, or not saying %q: %v", tc.want, err)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

// GET /v1/calls/live lists the calls in progress and drops those that
// end.
func TestLiveCallsRoute(t *testing.T) {
	o := startOps(t, backends[0].url(t))
	ctx := context.Background()
	svc, err := cdr.New(cdr.Options{TimeZone: opsZone}, o.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := range 3 {
		e := cdr.CallEvent{CallID: fmt.Sprintf("live-%d", i), FromTag: "f", Caller: "8001001", Called: fmt.Sprintf("800200%d", i),
			Type: cdr.Video, Node: "sip-a", Start: start.Add(time.Duration(i) * time.Second)}
		if err := svc.CallStarted(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	live := func(q string) apiclient.LiveCalls {
		code, _, body := get(t, o.api.URL+"/v1/calls/live"+q, "")
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		return decode[apiclient.LiveCalls](t, "live", body)
	}
	l := live("")
	if len(l.Calls) != 3 || l.Calls[0].Called != "8002002" || l.Calls[2].Called != "8002000" || l.Calls[0].End != nil || l.Next != "" {
		t.Fatalf("live %+v", l)
	}
	first := live("?page_size=2")
	if len(first.Calls) != 2 || first.Next == "" {
		t.Fatalf("first page %+v", first)
	}
	if rest := live("?page_size=2&page=" + url.QueryEscape(first.Next)); len(rest.Calls) != 1 || rest.Calls[0].Called != "8002000" {
		t.Fatalf("second page %+v", rest)
	}
	if err := svc.CallEnded(ctx, cdr.CallEvent{CallID: "live-1", FromTag: "f", Status: 487}); err != nil {
		t.Fatal(err)
	}
	if l := live(""); len(l.Calls) != 2 || l.Calls[0].Called != "8002002" || l.Calls[1].Called != "8002000" {
		t.Fatalf("after an end %+v", l)
	}
}

// POST /v1/cdrs/generate writes the planned calls through the call
// records; the same request sent again adds nothing.
func TestGenerateRoute(t *testing.T) {
	o := startOps(t, backends[0].url(t))
	loc, _ := time.LoadLocation(opsZone)
	req := apiclient.CDRGenerateRequest{Count: 120, Days: 2, Seed: 9, Now: time.Date(2025, 3, 6, 15, 30, 0, 0, loc), Nodes: []string{"sip-x"}}
	post := func(body any) (int, []byte) {
		data, _ := json.Marshal(body)
		resp, err := http.Post(o.api.URL+"/v1/cdrs/generate", "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	for range 2 {
		if code, body := post(req); code != 200 || decode[apiclient.CDRGenerated](t, "generated", body).Calls != 120 {
			t.Fatalf("%d %s", code, body)
		}
	}
	calls := plan(cdr.GenerateOptions{Count: 120, Days: 2, Seed: 9, Now: req.Now, Location: loc, Nodes: req.Nodes})
	from, to := req.Now.AddDate(0, 0, -3), req.Now.AddDate(0, 0, 1)
	pages := walk(t, o.api.URL+"/v1/cdrs", rangeQuery(from, to, "page_size", "1000"), "")
	if got, want := ids(t, pages), plannedIDs(calls, func(planned) bool { return true }); !slices.Equal(got, want) {
		t.Fatalf("after two requests: %d records, planned %d", len(got), len(want))
	}
	first := decode[apiclient.CDRPage](t, "page", pages[0]).CDRs[0]
	if first.Node != "sip-x" || first.Platform != "plat-a" {
		t.Fatalf("record %+v", first)
	}
	for _, bad := range []any{
		apiclient.CDRGenerateRequest{Count: 0, Days: 1, Now: req.Now},
		apiclient.CDRGenerateRequest{Count: 1, Days: 0, Now: req.Now},
		apiclient.CDRGenerateRequest{Count: 1, Days: 1},
		apiclient.CDRGenerateRequest{Count: 1, Days: 1, Now: req.Now, Nodes: []string{"a b"}},
		map[string]any{"count": 1, "days": 1, "now": req.Now, "speed": 3},
	} {
		if code, body := post(bad); code != 400 || decode[envelope](t, "bad", body).Error.Code != "BAD_REQUEST" {
			t.Errorf("%+v: %d %s", bad, code, body)
		}
	}
}

// The section serve adds, with the token file it makes once, starts the
// interface, which takes the file's token.
func TestThirdPartySectionWithItsTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cdr-token")
	for i, want := range []bool{true, false} {
		wrote, err := sipplugin.EnsureThirdPartyToken(file)
		if err != nil || wrote != want {
			t.Fatalf("call %d: wrote %v, %v", i, wrote, err)
		}
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file %v %v", st, err)
	}
	data, _ := os.ReadFile(file)
	token := strings.TrimSpace(string(data))
	if len(token) != 48 {
		t.Fatalf("token of %d characters", len(token))
	}
	sec := sipplugin.ThirdPartySection("127.0.0.1:0", file)
	hf, err := json.Marshal(map[string]any{
		"host":           map[string]any{"name": "tp", "data_dir": dir},
		"infrastructure": map[string]any{"records": map[string]any{"plugin": "convene.records.sql", "url": filepath.Join(dir, "records.db")}},
		"servers":        map[string]any{"cdr-thirdparty": sec},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := host.Parse("tp.yaml", hf) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(f, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Stop(context.Background()) })
	inst, _ := h.Instance("cdr-thirdparty")
	base := "http://" + inst.(*sipplugin.ThirdParty).Addr() + sipplugin.ThirdPartyPath
	if code, _, body := get(t, base, token); code != 200 {
		t.Fatalf("the file's token: %d %s", code, body)
	}
	if code, _, _ := get(t, base, opsToken); code != 401 {
		t.Fatalf("another token: %d", code)
	}
}
