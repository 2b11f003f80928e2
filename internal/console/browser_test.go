package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/records"
)

// ladderCaller is the caller of the call whose log the test opens.
const ladderCaller = "99900001"

// evilHeader is a SIP header value from outside that must show as text.
const evilHeader = `<img src=x onerror=alert(2)>`

// writeCalls records n generated calls over the last days, and one call
// with a SIP log, into the records file, as the SIP edge reports them.
func writeCalls(t *testing.T, file string, n, days int) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	db, err := records.Open(ctx, "sqlite://"+file, log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := cdr.New(cdr.Options{}, db, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = svc.Shutdown(sctx)
	}()
	if n > 0 {
		if _, err := cdr.Generate(ctx, svc, cdr.GenerateOptions{Count: n, Days: days, Seed: 7, Now: time.Now(), Location: svc.Location(), Platform: "p1"}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Minute)
	ev := cdr.CallEvent{CallID: "ladder-call@10.0.0.9", FromTag: "ft1", Caller: ladderCaller, Called: "8001002", Type: "voice",
		Node: "sip-a", Platform: "p1", Start: start}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(svc.CallStarted(ctx, ev))
	lines := []cdr.LogLine{
		{Time: start, Node: "sip-a", Direction: "in", Peer: "10.0.0.9:5060", Message: "INVITE sip:8001002@convene SIP/2.0\nUser-Agent: " + evilHeader},
		{Time: start.Add(time.Millisecond), Node: "sip-a", Message: "route 8001002 to 10.0.0.20:5060"},
		{Time: start.Add(2 * time.Millisecond), Node: "sip-a", Direction: "out", Peer: "10.0.0.20:5060", Message: "INVITE sip:8001002@10.0.0.20 SIP/2.0"},
		{Time: start.Add(30 * time.Millisecond), Node: "sip-a", Direction: "in", Peer: "10.0.0.20:5060", Message: "SIP/2.0 200 OK"},
		{Time: start.Add(31 * time.Millisecond), Node: "sip-a", Direction: "out", Peer: "10.0.0.9:5060", Message: "SIP/2.0 200 OK"},
	}
	for _, l := range lines {
		must(svc.Log(ctx, ev.CallID, l))
	}
	ev.Answer, ev.ToTag, ev.Connected = start.Add(30*time.Millisecond), "tt1", true
	must(svc.CallAnswered(ctx, ev))
	ev.End, ev.Status = start.Add(20*time.Second), 200
	must(svc.CallEnded(ctx, ev))
}

// served says whether the API serves path (anything but a 404).
func (p *platform) served(path string) bool {
	req, _ := http.NewRequest(http.MethodGet, p.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+opToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound
}

// count is the number of elements matching a CSS selector.
func count(c *chrome, sel string) int {
	return eval[int](c, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

func TestBrowser(t *testing.T) {
	file := recordsFile(t)
	writeCalls(t, file, 300, 1)
	p := startPlatform(t, platformOptions{records: file, alarms: true})
	c := newChrome(t, p.base)

	c.login(opToken)
	c.shot("overview")

	t.Run("three nodes", func(t *testing.T) {
		c := c.on(t)
		c.open("/nodes")
		c.waitJS("three nodes", `document.querySelectorAll("tr[data-node]").length === 3`)
		c.shot("nodes")
	})

	var evil string
	t.Run("a conference appears without a reload, its name as text", func(t *testing.T) {
		c := c.on(t)
		c.open("/conferences")
		eval[bool](c, `window.notReloaded = true`)
		const name = "<script>alert(1)</script>"
		evil = p.create(name).E164
		sel := fmt.Sprintf(`tr[data-e164=%q] td.name`, evil)
		c.waitJS("the new conference in the list", fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
		if !eval[bool](c, `window.notReloaded === true`) {
			t.Fatal("the page reloaded to show the new conference")
		}
		if got := eval[string](c, fmt.Sprintf(`document.querySelector(%q).textContent`, sel)); got != name {
			t.Fatalf("the name shows as %q, want the text %q", got, name)
		}
		if n := c.dialogs.Load(); n != 0 {
			t.Fatalf("%d script dialogs opened", n)
		}
		c.shot("conferences")
		c.open("/conferences/" + evil)
		c.shot("conference")
	})

	t.Run("end a conference from the page", func(t *testing.T) {
		c := c.on(t)
		c.open("/conferences")
		// The list refreshes itself: the button is found and clicked in
		// one step, again if a refresh took it away first.
		c.follow(fmt.Sprintf(`tr[data-e164=%q] button`, evil), "the conference gone from the list",
			fmt.Sprintf(`location.pathname === "/conferences" && document.querySelector(%q) === null && document.querySelector(".flash") !== null`,
				`tr[data-e164="`+evil+`"]`))
		if _, err := p.api.Conference(context.Background(), evil); err == nil {
			t.Fatal("the API still has the conference")
		}
	})

	t.Run("fail a room and watch its conferences move", func(t *testing.T) {
		c := c.on(t)
		for i := range 6 {
			p.create("moving " + strconv.Itoa(i))
		}
		confs, err := p.api.PlatformConferences(context.Background(), "p1", "")
		if err != nil || len(confs) == 0 {
			t.Fatalf("conferences: %v", err)
		}
		room := confs[0].Room
		c.open("/platforms")
		c.shot("platforms")
		c.follow(fmt.Sprintf(`tr[data-room=%q] a.button`, room), "the confirmation", `document.querySelector("#confirm") !== null`)
		if !strings.Contains(eval[string](c, `document.querySelector(".confirm").textContent`), "Room "+room+" will stop") {
			t.Fatal("the confirmation does not say what moves")
		}
		c.shot("confirm-room")
		c.do(chromedp.Click(chromedp.CSS("#confirm")))
		c.waitJS("the move to settle on the platforms page", `location.pathname === "/platforms" && document.querySelector("#moving.settled") !== null &&
			document.querySelector('tr[data-room="`+room+`"] .state').textContent !== "normal"`)
		c.shot("platforms-settled")
		c.open("/conferences")
		c.waitJS("every conference out of room "+room, fmt.Sprintf(
			`(function(){var rs=[...document.querySelectorAll("#conferences td.room")].map(e=>e.textContent);
			return rs.length > 0 && rs.every(r => r !== %q);})()`, room))
		c.shot("conferences-moved")

		t.Run("acknowledge the room's alarm", func(t *testing.T) {
			c := c.on(t)
			if !p.served("/v1/alarms") {
				t.Fatal("GET /v1/alarms answers 404: the stack runs the alarm service (Options.Alarms)")
			}
			c.open("/alarms")
			c.waitJS("an alarm to acknowledge", `document.querySelector("#active-alarms form button") !== null`)
			c.shot("alarms")
			// The alarms refresh themselves: found and clicked in one step
			// (an acknowledgement sent twice is one).
			c.follow("#active-alarms form button", "the acknowledgement",
				`location.pathname === "/alarms" && document.querySelector(".flash") !== null && document.querySelector(".flash").textContent.includes("acknowledged")`)
		})

		c.open("/platforms")
		c.follow(fmt.Sprintf(`tr[data-room=%q] a.button`, room), "the recovery's confirmation", `document.querySelector("#confirm") !== null`)
		c.do(chromedp.Click(chromedp.CSS("#confirm")))
		c.waitJS("the room back", fmt.Sprintf(`location.pathname === "/platforms" && document.querySelector('tr[data-room=%q] .state').textContent === "normal"`, room))
	})

	t.Run("query calls and see the hourly chart", func(t *testing.T) {
		c := c.on(t)
		if !p.served("/v1/cdrs/stats") {
			t.Fatal("GET /v1/cdrs/stats answers 404: the stack runs the call records server")
		}
		c.open("/calls")
		c.waitJS("the chart", `document.querySelector("#chart canvas") !== null`)
		var d struct {
			Bucket string  `json:"bucket"`
			Voice  []int64 `json:"voice"`
		}
		if err := json.Unmarshal([]byte(eval[string](c, `document.querySelector("#chart-data").textContent`)), &d); err != nil {
			t.Fatal(err)
		}
		if d.Bucket != "hour" || len(d.Voice) != 24 {
			t.Fatalf("chart of today: bucket %q with %d bars, want 24 hourly bars", d.Bucket, len(d.Voice))
		}
		if count(c, "#records tbody tr") == 0 {
			t.Fatal("no call records listed")
		}
		c.shot("calls")
		// Several days: daily bars.
		from := time.Now().AddDate(0, 0, -2).Format("2006-01-02")
		c.open("/calls?from=" + from)
		c.waitJS("the daily chart", `document.querySelector("#chart canvas") !== null && JSON.parse(document.querySelector("#chart-data").textContent).bucket === "day"`)
		c.shot("calls-days")
	})

	t.Run("a call's log as a ladder", func(t *testing.T) {
		c := c.on(t)
		if !p.served("/v1/cdrs") {
			t.Fatal("GET /v1/cdrs answers 404: the stack runs the call records server")
		}
		var page struct {
			CDRs []struct {
				ID string `json:"id"`
			} `json:"cdrs"`
		}
		req, _ := http.NewRequest(http.MethodGet, p.base+"/v1/cdrs?caller="+ladderCaller+"&start="+
			time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), nil)
		req.Header.Set("Authorization", "Bearer "+opToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || len(page.CDRs) != 1 {
			t.Fatalf("the ladder call: %v %+v", err, page)
		}
		c.open("/calls/" + page.CDRs[0].ID)
		c.waitJS("the ladder", `document.querySelectorAll("#ladder tbody tr").length === 5`)
		if got := count(c, "#ladder thead th"); got != 4 { // time and three parties
			t.Fatalf("the ladder has %d columns, want time and 3 parties", got)
		}
		if !strings.Contains(eval[string](c, `document.querySelector("#ladder").textContent`), evilHeader) || c.dialogs.Load() != 0 {
			t.Fatal("the SIP header does not show as text")
		}
		c.shot("call-log")
	})

	t.Run("licences and hosts", func(t *testing.T) {
		c := c.on(t)
		c.open("/licences")
		if count(c, "meter") == 0 {
			t.Fatal("no licence bars")
		}
		c.shot("licences")
		c.open("/hosts")
		c.waitJS("the plugins", `document.querySelector('tr[data-plugin="convene.scheduler"]') !== null`)
		c.shot("hosts")
	})

	t.Run("phone width", func(t *testing.T) {
		c := c.on(t)
		c.do(chromedp.EmulateViewport(390, 844))
		c.open("/conferences")
		if w := eval[int](c, `document.documentElement.scrollWidth`); w > 390+20 {
			t.Errorf("the page is %d px wide on a 390 px screen", w)
		}
		c.shot("conferences-phone")
		c.do(chromedp.EmulateViewport(1280, 800))
	})
}
