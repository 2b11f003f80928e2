package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// A node that dies or hangs is still offered by RMS until its detection
// grace is over. Creates in that window must not fail: one the node does
// not answer is tried on another node, and the node is passed over until
// it answers again.
func TestDyingNodeDoesNotSwallowCreates(t *testing.T) {
	for _, fault := range []string{"killed", "frozen"} {
		t.Run(fault, func(t *testing.T) {
			e := hdStart(t, hdOptions{nodes: 3, slowDetection: true})
			victim := e.st.Nodes[1]
			if fault == "killed" {
				e.st.KillNode(1)
			} else {
				e.st.FreezeNode(1)
			}
			const n = 45
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				want = hdWant{}
				errs []string
			)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := e.create(fmt.Sprintf("during the grace %d", i))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, fmt.Sprintf("create %d: %s", i, apiCodeOf(err)))
						return
					}
					want.add(c)
				}()
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("%d of %d creates failed while node %s was %s:\n  %v", len(errs), n, victim.ID(), fault, errs)
			}
			if len(want) != n {
				t.Fatalf("%d distinct conferences for %d creates", len(want), n)
			}
			// The node was still offered: the creates had to go around it.
			for _, nd := range e.st.RMS.Nodes() {
				if nd.Node == victim.ID() && nd.State != protocol.NodeUp {
					t.Fatalf("RMS declared %s %s during the test: the creates did not run in its grace", nd.Node, nd.State)
				}
			}
			if retried := e.counter("convene_scheduler_operations_total", map[string]string{"op": "create-retry"}); retried == 0 {
				t.Fatal("no create was retried: none went to the dying node, the test proves nothing")
			}
			if fault == "frozen" && received(victim, protocol.MAUMCUCreateConfReq, "") == 0 {
				t.Fatal("the frozen node was never asked: the test proves nothing")
			}
			e.exactly("after creates around a "+fault+" node", want, victim.ID())
			if fault == "killed" {
				return
			}
			// It wakes up and answers again: it is offered again, and as the
			// least loaded node it takes the next creates.
			victim.SetFault(medianode.Fault{})
			testkit.Eventually(t, 20*time.Second, testkit.Cond("a create to land on the node that woke up", func() bool {
				c, err := e.create("after the wake-up")
				if err != nil {
					t.Fatalf("create after the wake-up: %s", apiCodeOf(err))
				}
				want.add(c)
				return c.Node == victim.ID()
			}))
			e.exactly("after the node woke up", want)
		})
	}
}

// apiCodeOf is an API error's code, or the error.
func apiCodeOf(err error) string {
	if ae, ok := err.(*apiclient.Error); ok {
		return ae.Code + ": " + ae.Message
	}
	return err.Error()
}
