package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// client is the rolling drill's API client: it talks to one of the API
// processes and turns to the other only when a connection is refused
// (that API is down); any other error fails the operation. It opens a
// connection per request, so that an API that went away is seen as a
// refused connection rather than a broken kept-alive one.
type client struct {
	addrs []string
	token string
	httpc *http.Client
	cur   atomic.Int32 // index in addrs of the API in use
	// retryFor bounds how long an operation keeps turning from one API
	// to the other while both refuse.
	retryFor time.Duration
	// switched counts the turns to the other API.
	switched atomic.Int64
}

func newClient(addrs []string, token string) *client {
	tr := &http.Transport{DisableKeepAlives: true}
	return &client{addrs: addrs, token: token, httpc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, retryFor: 30 * time.Second}
}

// do sends a request with in as its JSON body (when not nil) and decodes
// a 2xx answer into out (when not nil); any other answer is an
// *apiclient.Error.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(c.retryFor)
	for {
		i := int(c.cur.Load())
		err := c.once(ctx, c.addrs[i], method, path, body, out)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		// That API is down: the other, if it has not been chosen meanwhile.
		if c.cur.CompareAndSwap(int32(i), int32((i+1)%len(c.addrs))) {
			c.switched.Add(1)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("every API refused connections for %s: %w", c.retryFor, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *client) once(ctx context.Context, addr, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiclient.ResponseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *client) create(ctx context.Context, name string) (apiclient.Conference, error) {
	var conf apiclient.Conference
	err := c.do(ctx, http.MethodPost, "/v1/conferences", apiclient.CreateConferenceRequest{
		Name: name, Domain: tenant, Scale: 8, Resolution: "720p", DurationMinutes: 120,
	}, &conf)
	return conf, err
}

func (c *client) end(ctx context.Context, e164 string) error {
	return c.do(ctx, http.MethodDelete, "/v1/conferences/"+e164, nil, nil)
}

// load creates and ends conferences at a steady rate: each tick ends the
// oldest of its conferences when it holds window of them, and creates
// one otherwise. What it created and did not end must run at the end;
// what an operation that failed may have left is uncertain and judged by
// the failure alone.
type load struct {
	c      *client
	rate   int
	window int
	start  time.Time

	mu        sync.Mutex
	live      []string         // running, oldest first
	idents    map[string]Ident // of live
	ops       int
	failures  []string
	uncertain map[string]bool
	maxPause  time.Duration
	busy      int // operations in flight
}

func newLoad(c *client, rate, window int) *load {
	return &load{c: c, rate: rate, window: window, start: time.Now(), idents: map[string]Ident{}, uncertain: map[string]bool{}}
}

// run drives the load until ctx ends, then waits for the operations in
// flight.
func (l *load) run(ctx context.Context) {
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		l.mu.Lock()
		if l.busy >= 64 {
			// The platform is not keeping up: the pause shows in the
			// operations' own times.
			l.mu.Unlock()
			continue
		}
		l.busy++
		var end string
		if len(l.live) >= l.window {
			end, l.live = l.live[0], l.live[1:]
		}
		l.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.op(end)
		}()
	}
}

// op ends e164, or creates a conference when e164 is "". It runs on its
// own context: an operation the drill started is finished, not cut.
func (l *load) op(e164 string) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	t0 := time.Now()
	var (
		conf apiclient.Conference
		err  error
	)
	if e164 == "" {
		conf, err = l.c.create(ctx, "rolling")
	} else {
		err = l.c.end(ctx, e164)
	}
	took := time.Since(t0)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy--
	l.ops++
	l.maxPause = max(l.maxPause, took)
	switch {
	case err != nil && e164 == "":
		l.failures = append(l.failures, fmt.Sprintf("create at %.3fs: %v", t0.Sub(l.start).Seconds(), err))
	case err != nil:
		l.failures = append(l.failures, fmt.Sprintf("end %s at %.3fs: %v", e164, t0.Sub(l.start).Seconds(), err))
		l.uncertain[e164] = true
		delete(l.idents, e164)
	case e164 == "":
		l.live = append(l.live, conf.E164)
		l.idents[conf.E164] = Ident{Domain: conf.Domain, Class: classOf(conf.Scale, conf.Resolution)}
	default:
		delete(l.idents, e164)
	}
}

// running is what the load created and did not end, and what failed
// operations left uncertain.
func (l *load) running() (Census, map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(Census, len(l.idents))
	for k, v := range l.idents {
		out[k] = v
	}
	unc := make(map[string]bool, len(l.uncertain))
	for k := range l.uncertain {
		unc[k] = true
	}
	return out, unc
}

// done is how many operations have finished.
func (l *load) done() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops
}
