package sipplugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/apiclient"
	_ "github.com/convene/convene/internal/bus/busplugin"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip/account"
	"github.com/convene/convene/internal/sip/sipp"
	"github.com/convene/convene/internal/sip/sipplugin"
	"github.com/convene/convene/internal/testkit"
)

// edge is a host running the SIP edge's three plugins on real
// infrastructure: the embedded bus and store, a SQLite records file.
type edge struct {
	t       *testing.T
	h       *host.Host
	api     *httptest.Server
	sipAddr string
	acct    string
	db      string
}

func startEdge(t *testing.T) *edge {
	t.Helper()
	dir := t.TempDir()
	e := &edge{t: t, db: filepath.Join(dir, "records.db")}
	file := fmt.Sprintf(`
host: {name: edge-1, data_dir: %q}
infrastructure:
  bus: {plugin: convene.bus.nats, embedded: {listen: none, in_memory: true}}
  store: {plugin: convene.store.redis, embedded: {in_memory: true}}
  records: {plugin: convene.records.sql, url: %q}
servers:
  sip: {plugin: convene.sip.proxy, name: sip-a, listen: %q, algorithms: [MD5, SHA-256], sweep_interval: 50ms}
  sip-account: {plugin: convene.sip.account, listen: %q, account: sip-a}
  sip-records: {plugin: convene.sip.records}
`, dir, e.db, "127.0.0.1:0", "127.0.0.1:0")
	f, err := host.Parse("edge.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	e.h, err = host.New(f, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = e.h.Stop(ctx)
	})
	p, ok := e.h.Instance("sip")
	if !ok {
		t.Fatal("no SIP node running")
	}
	e.sipAddr = p.(*sipplugin.Proxy).Node().UDPAddr()
	a, ok := e.h.Instance("sip-account")
	if !ok {
		t.Fatal("no account API running")
	}
	e.acct = a.(*sipplugin.Account).Addr()
	e.api = httptest.NewServer(e.h.Handler())
	t.Cleanup(e.api.Close)
	return e
}

// do sends a request to the host's routes and decodes the answer.
func (e *edge) do(method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, e.api.URL+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

type envelope struct {
	Error struct{ Code, Message string } `json:"error"`
}

func TestSubscribersOverREST(t *testing.T) {
	e := startEdge(t)
	var s apiclient.SIPSubscriber
	if code := e.do("POST", "/v1/sip/subscribers", apiclient.SIPSubscriberRequest{User: "1001", Password: "secret-1001"}, &s); code != 201 {
		t.Fatalf("create: %d %+v", code, s)
	}
	if s.User != "1001" || s.Realm != config.DefaultSIPDomain || s.Disabled || s.Version != 1 {
		t.Fatalf("created %+v", s)
	}
	// Sent again (a retry): nothing changes.
	if code := e.do("POST", "/v1/sip/subscribers", apiclient.SIPSubscriberRequest{User: "1001", Password: "secret-1001"}, &s); code != 200 || s.Version != 1 {
		t.Fatalf("again: %d %+v", code, s)
	}
	for _, tc := range []struct {
		name string
		body any
	}{
		{"bad user", apiclient.SIPSubscriberRequest{User: "a b", Password: "secret"}},
		{"short password", apiclient.SIPSubscriberRequest{User: "1002", Password: "abc"}},
		{"unknown field", map[string]string{"user": "1002", "password": "secret", "pin": "1"}},
	} {
		var env envelope
		if code := e.do("POST", "/v1/sip/subscribers", tc.body, &env); code != 400 || env.Error.Code != "BAD_REQUEST" {
			t.Errorf("%s: %d %+v", tc.name, code, env)
		}
	}
	e.do("POST", "/v1/sip/subscribers", apiclient.SIPSubscriberRequest{User: "1002", Password: "secret-1002"}, nil)
	var page apiclient.SIPSubscriberPage
	if code := e.do("GET", "/v1/sip/subscribers?page_size=1", nil, &page); code != 200 || len(page.Subscribers) != 1 || page.Next != "1001" {
		t.Fatalf("first page: %d %+v", code, page)
	}
	if code := e.do("GET", "/v1/sip/subscribers?page="+page.Next, nil, &page); code != 200 || len(page.Subscribers) != 1 || page.Subscribers[0].User != "1002" || page.Next != "" {
		t.Fatalf("second page: %d %+v", code, page)
	}
	if code := e.do("DELETE", "/v1/sip/subscribers/1002", nil, &s); code != 200 || !s.Disabled {
		t.Fatalf("disable: %d %+v", code, s)
	}
	var env envelope
	if code := e.do("DELETE", "/v1/sip/subscribers/1003", nil, &env); code != 404 || env.Error.Code != "NOT_FOUND" {
		t.Fatalf("disable an unknown subscriber: %d %+v", code, env)
	}
	// A stopped plugin's routes answer 503 PLUGIN_STOPPED, and come back.
	ctx := context.Background()
	if err := e.h.StopPlugin(ctx, sipplugin.RecordsID); err != nil {
		t.Fatal(err)
	}
	if code := e.do("GET", "/v1/sip/subscribers", nil, &env); code != 503 || env.Error.Code != "PLUGIN_STOPPED" {
		t.Fatalf("stopped: %d %+v", code, env)
	}
	if err := e.h.StartPlugin(ctx, sipplugin.RecordsID); err != nil {
		t.Fatal(err)
	}
	if code := e.do("GET", "/v1/sip/subscribers", nil, &page); code != 200 || len(page.Subscribers) != 2 {
		t.Fatalf("started again: %d %+v", code, page)
	}
}

func TestAccountAPIOnItsListenerAndMounted(t *testing.T) {
	e := startEdge(t)
	ts := time.Now().Format(account.TimestampLayout)
	good := map[string]any{"method": account.Method, "streamNumber": "89567", "token": account.Token(config.DemoAppID, ts), "timestamp": ts}
	bad := map[string]any{"method": account.Method, "streamNumber": 7, "token": account.Token("another-appid", ts), "timestamp": ts}
	for _, base := range []string{"http://" + e.acct, e.api.URL} {
		post := func(body any) (int, map[string]any) {
			data, _ := json.Marshal(body)
			resp, err := http.Post(base+account.Path, "application/json", bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out
		}
		if code, out := post(good); code != 200 || out["resCode"] != "0" || out["account"] != "sip-a" || out["streamNumber"] != "89567" {
			t.Errorf("%s: good token: %d %v", base, code, out)
		}
		if code, out := post(bad); code != 200 || out["resCode"] != "1" || out["account"] != nil {
			t.Errorf("%s: bad token: %d %v", base, code, out)
		}
		if code, out := post("not an object"); code != 400 || out["error"] == nil {
			t.Errorf("%s: malformed: %d %v", base, code, out)
		}
	}
}

// A call through the node leaves one call record, with its log lines,
// that GET /v1/cdrs lists.
func TestCallRecordedThroughThePlugins(t *testing.T) {
	if _, err := sipp.Bin(); err != nil {
		t.Fatalf("%v: make test installs it (scripts/install-deps.sh)", err)
	}
	e := startEdge(t)
	for _, u := range []string{"1001", "1002"} {
		e.do("POST", "/v1/sip/subscribers", apiclient.SIPSubscriberRequest{User: u, Password: "secret-" + u}, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := sipp.Start(sipp.Options{Scenario: sipp.Register, Target: e.sipAddr, Port: port,
		Lines: []string{sipp.Credentials("1002", "secret-1002")}, Keys: map[string]string{"expires": "3600"}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	uas, err := sipp.Start(sipp.Options{Scenario: sipp.UAS, Port: port, Service: "1002", Calls: 1, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	uac, err := sipp.Start(sipp.Options{Scenario: sipp.UAC, Target: e.sipAddr, Lines: []string{sipp.Credentials("1001", "secret-1001") + ";1002"},
		Pause: 100 * time.Millisecond, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := uac.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Successful != 1 || len(res.RTT) != 1 {
		t.Fatalf("the call: %+v", res)
	}
	if _, err := uas.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	var page cdr.Page
	testkit.AwaitWithin(t, 20*time.Second, "the call's record", func() bool {
		e.do("GET", "/v1/cdrs", nil, &page)
		return len(page.CDRs) == 1
	})
	c := page.CDRs[0]
	if c.Caller != "1001" || c.Called != "1002" || c.Type != records.CallVoice || !c.Connected || c.Node != "sip-a" ||
		c.Answer == nil || c.End == nil || c.Status != 200 || c.E164 != "" {
		t.Fatalf("record %+v", c)
	}
	var log cdr.CallLog
	testkit.AwaitWithin(t, 20*time.Second, "the call's log lines", func() bool {
		e.do("GET", "/v1/cdrs/"+c.ID+"/log", nil, &log)
		text := ""
		for _, l := range log.Lines {
			text += l.Direction + " " + l.Message + "\n"
		}
		return strings.Contains(text, "in INVITE sip:1002@") && strings.Contains(text, "in BYE ") && strings.Contains(text, "answered by")
	})
	if log.CallID != c.CallID {
		t.Fatalf("log of %s: %+v", c.CallID, log)
	}
	var env envelope
	if code := e.do("GET", "/v1/cdrs/0123456789abcdef01234567/log", nil, &env); code != 404 || env.Error.Code != "NOT_FOUND" {
		t.Fatalf("the log of no call: %d %+v", code, env)
	}
	if code := e.do("GET", "/v1/cdrs?type=fax", nil, &env); code != 400 || env.Error.Code != "BAD_REQUEST" {
		t.Fatalf("a bad query: %d %+v", code, env)
	}
}

// What convene serve adds parses as a host file's servers, and --sip-listen
// none leaves the routes only.
func TestServeSections(t *testing.T) {
	for _, tc := range []struct {
		sip, account string
		want         []string
	}{
		{"127.0.0.1:0", "none", []string{"sip", "sip-account", "sip-records"}},
		{"none", "127.0.0.1:0", []string{"sip-records"}},
	} {
		servers := sipplugin.ServeSections(tc.sip, tc.account, "sip-a")
		var names []string
		for name := range servers {
			names = append(names, name)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Fatalf("--sip-listen %s: servers %v, want %v", tc.sip, names, tc.want)
		}
		data, err := yaml.Marshal(map[string]any{
			"host": map[string]any{"name": "serve"},
			"infrastructure": map[string]any{
				"bus":     map[string]any{"plugin": "convene.bus.nats"},
				"store":   map[string]any{"plugin": "convene.store.redis"},
				"records": map[string]any{"plugin": "convene.records.sql"},
			},
			"servers": servers,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := host.Parse("serve", data); err != nil {
			t.Fatalf("--sip-listen %s: %v", tc.sip, err)
		}
	}
}
