package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// wantRefusal fails the test unless err is an API error with that status
// and code and a message.
func wantRefusal(t *testing.T, err error, status int, code string) *apiclient.Error {
	t.Helper()
	ae, ok := err.(*apiclient.Error)
	if !ok || ae.Status != status || ae.Code != code || ae.Message == "" {
		t.Fatalf("got %v; want %d %s with a message", err, status, code)
	}
	return ae
}

// RMS answers GET_RES_REQ with a NACK whose code the scheduler does not
// know: the create is refused with RMS_ERROR, naming RMS's code, and
// leaves nothing behind.
func TestRMSErrorRefusesTheCreate(t *testing.T) {
	e := hdStart(t, hdOptions{nodes: 1})
	want := e.createAll(3)
	ctx := context.Background()
	if err := e.st.RMS.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// In RMS's place, one that fails in a way no one planned for.
	b, err := e.st.Connect("broken-rms")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	asked := make(chan struct{}, 16)
	if _, err := b.Subscribe(protocol.SubjectRMS("p1"), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		asked <- struct{}{}
		_ = m.Nack(protocol.RMSGetResNack, "RESOURCE_DB_DOWN", "the resource database is unreachable")
	})); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.create("refused by RMS")
	ae := wantRefusal(t, err, 502, protocol.ErrRMSError)
	if len(asked) == 0 {
		t.Fatal("the stand-in RMS was never asked")
	}
	if !strings.Contains(ae.Message, "RESOURCE_DB_DOWN") {
		t.Fatalf("the refusal does not name RMS's code: %q", ae.Message)
	}
	e.exactly("after RMS refused", want)
}

// A platform whose segment is all taken refuses numberless creates with
// E164_EXHAUSTED, leaving nothing behind; a number freed is handed out
// again.
func TestNumberSegmentExhausted(t *testing.T) {
	e := hdStart(t, hdOptions{nodes: 2, tune: func(c *config.Config) { c.Platforms[0].E164Digits = 3 }})
	const space = 1000 // "51" and three digits
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want = hdWant{}
		errs []string
	)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := e.create(fmt.Sprintf("filler %d", i))
				mu.Lock()
				if err != nil {
					errs = append(errs, apiCodeOf(err))
				} else {
					want.add(c)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range space {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 || len(want) != space {
		t.Fatalf("%d conferences for %d creates; refusals: %v", len(want), space, errs)
	}
	for i := range space {
		if num := fmt.Sprintf("51%03d", i); want[num] == (hdIdent{}) {
			t.Fatalf("number %s was not handed out; the segment is not full", num)
		}
	}
	_, err := e.create("one too many")
	wantRefusal(t, err, 409, protocol.ErrE164Exhausted)
	e.exactly("after the segment ran out", want)

	if err := e.client.EndConference(context.Background(), "51234"); err != nil {
		t.Fatal(err)
	}
	want = want.without("51234")
	c, err := e.create("in the freed number")
	if err != nil {
		t.Fatal(err)
	}
	if c.E164 != "51234" {
		t.Fatalf("got number %s; the only free one is 51234", c.E164)
	}
	want.add(c)
	e.exactly("after a number was freed and taken again", want)
}

// The store fails after the node acknowledged the create: the caller gets
// STORE_ERROR, the node lets the conference go, and once the store is
// back the licence is given back: nothing of the create is left.
func TestStoreFailureAfterTheNodesAck(t *testing.T) {
	e := hdStart(t, hdOptions{nodes: 1, aof: true})
	want := e.createAll(2)
	node := e.st.Nodes[0]
	node.SetFault(medianode.Fault{AckDelay: 700 * time.Millisecond, Only: []string{protocol.MAUMCUCreateConfReq}})
	done := make(chan error, 1)
	go func() {
		_, err := e.create("its store fails")
		done <- err
	}()
	testkit.Eventually(t, 20*time.Second, testkit.Cond("the node to host the new conference", func() bool { return len(node.Conferences()) == 3 }))
	e.redis.Kill()
	err := <-done
	wantRefusal(t, err, 500, protocol.ErrStoreError)
	node.SetFault(medianode.Fault{})
	testkit.Eventually(t, 20*time.Second, testkit.Cond("the node to let the conference go", func() bool { return len(node.Conferences()) == 2 }))
	e.redis.Restart()
	e.exactly("after the store came back", want)
}

// A node that acts on a release late (after the scheduler stopped waiting
// for it) must not end a new conference of the same number: the number
// freed is taken again at once, and picks pass over the node that has
// not confirmed the release until it answers, so the late release finds
// nothing of the new conference there.
func TestLateReleaseEndsNoNewConferenceOfItsNumber(t *testing.T) {
	e := hdStart(t, hdOptions{nodes: 2})
	ctx := context.Background()
	want := e.createAll(1)
	// The second conference goes to the empty node: after its end that
	// node is again the emptier one, the one a pick prefers.
	c, err := e.create("freed and taken again")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.st.Store.Conference(ctx, c.E164)
	if err != nil {
		t.Fatal(err)
	}
	var slow *medianode.Node
	for _, n := range e.st.Nodes {
		if n.ID() == stored.Node {
			slow = n
		}
	}
	if slow == nil || len(slow.Numbers()) != 1 {
		t.Fatalf("%s on node %q, which must host it alone", c.E164, stored.Node)
	}
	// The node handles releases after the scheduler's wait for them.
	slow.SetFault(medianode.Fault{ApplyDelay: 1500 * time.Millisecond, Only: []string{protocol.MAUMCUReleaseConfCmd}})
	if err := e.client.EndConference(ctx, c.E164); err != nil {
		t.Fatal(err)
	}
	again, err := e.create("in the freed number", func(r *apiclient.CreateConferenceRequest) { r.E164 = c.E164 })
	if err != nil {
		t.Fatal(err)
	}
	want.add(again)
	// Once the late release was handled, the new conference still runs.
	time.Sleep(2 * time.Second)
	slow.SetFault(medianode.Fault{})
	e.exactly("after a late release of the number's previous conference", want)
}
