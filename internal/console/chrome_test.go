package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chrome is a headless Chromium tab driven by the test.
type chrome struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shots   string
	dialogs *atomic.Int32
}

// on is the same tab for a subtest.
func (c *chrome) on(t *testing.T) *chrome {
	cc := *c
	cc.t = t
	return &cc
}

// chromiumPath is Debian's chromium (make test installs it), or
// $CHROMIUM.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("no chromium: make test installs it (apt-get install -y chromium), or set CHROMIUM to a Chrome binary")
	return ""
}

// newChrome starts a browser for the test, at 1280×800. Screenshots go to
// $CONVENE_CONSOLE_SHOTS, else the test's temporary directory.
func newChrome(t *testing.T, base string) *chrome {
	t.Helper()
	if testing.Short() {
		t.Skip("a browser test; -short leaves it out")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // as root, Chromium's sandbox refuses to start
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	shots := os.Getenv("CONVENE_CONSOLE_SHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	c := &chrome{t: t, ctx: ctx, base: base, shots: shots, dialogs: new(atomic.Int32)}
	// The first run starts the browser; it must not carry a deadline.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void]("1")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			c.dialogs.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// do runs steps, each run bounded.
func (c *chrome) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("browser: %v", err)
	}
}

// open navigates to a path of the console and waits for its main part.
func (c *chrome) open(path string) {
	c.t.Helper()
	c.do(chromedp.Navigate(c.base+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// eval evaluates expr in the page as T.
func eval[T any](c *chrome, expr string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		c.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is true in the page (polling; the page may
// navigate meanwhile).
func (c *chrome) waitJS(what, expr string) {
	c.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " stream=" + document.body.getAttribute("data-stream")`))
			cancel()
			c.t.Fatalf("timed out waiting for %s (%s; page %s; last error %v)", what, expr, state, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// follow clicks the link sel names until done holds: the live part of
// a page is redrawn when the platform changes, and a click that lands
// while its link is replaced is lost. Only for links, which are safe to
// follow twice.
func (c *chrome) follow(sel, what, done string) {
	c.t.Helper()
	click := fmt.Sprintf(`(function(){var a = document.querySelector(%q); if (a) { a.click(); return true; } return false;})()`, sel)
	deadline := time.Now().Add(45 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](click))
		cancel()
		for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](done))
			cancel()
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out following %s to %s (%s; last error %v)", sel, what, done, err)
		}
	}
}

// shot saves a screenshot of the whole page as name.png (lossless).
func (c *chrome) shot(name string) {
	c.t.Helper()
	c.waitJS("the page loaded", `document.readyState === "complete" && document.documentElement.clientWidth > 0`)
	var img []byte
	var err error
	for range 3 { // a page still laying out has no width yet
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		img, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(c.shots, name+".png"), img, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// login logs in through the login form.
func (c *chrome) login(token string) {
	c.t.Helper()
	c.open("/login")
	c.shot("login")
	c.do(chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("#token")))
	c.waitJS("the overview after logging in", `location.pathname === "/" && document.querySelector("h1").textContent === "Overview"`)
}

// timing is a page's navigation timing, in milliseconds from the request.
type timing struct {
	FirstByte float64 `json:"first_byte"`
	Load      float64 `json:"load"`
}

// measure opens path and reads its navigation timing once it loaded.
func (c *chrome) measure(path string) timing {
	c.t.Helper()
	c.open(path)
	return c.timing(path)
}

// timing reads the navigation timing of the page open now (path names
// it) once it loaded.
func (c *chrome) timing(path string) timing {
	c.t.Helper()
	c.waitJS("the load of "+path, `performance.getEntriesByType("navigation")[0].loadEventEnd > 0`)
	raw := eval[string](c, `(function(){var n=performance.getEntriesByType("navigation")[0];
		return JSON.stringify({first_byte: n.responseStart - n.requestStart, load: n.loadEventEnd - n.startTime});})()`)
	var tm timing
	if err := json.Unmarshal([]byte(raw), &tm); err != nil {
		c.t.Fatal(err)
	}
	return tm
}

func (tm timing) String() string {
	return fmt.Sprintf("first byte %6.1f ms, loaded %7.1f ms", tm.FirstByte, tm.Load)
}
