// Package stackkit starts a whole platform in the test's process
// (internal/stack) and ends it with the test. It is apart from testkit
// because it imports every service: a service's own tests use testkit,
// end-to-end tests use both.
//
// Test support: only tests import it.
package stackkit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

// stopTimeout bounds the stack's stop at the end of the test.
const stopTimeout = 10 * time.Second

// Start starts a platform with o, stopped when the test ends, and waits
// until each of its o.SimNodes simulated nodes is up in RMS. (Its
// scheduler may stand by: another platform's instance on the same store
// may hold the lease; Active waits for its own.)
func Start(t testing.TB, o stack.Options) *stack.Stack {
	t.Helper()
	st, err := stack.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(st) })
	testkit.Eventually(t, testkit.Wait, func() error {
		if up := NodesUp(st); up != o.SimNodes {
			return fmt.Errorf("%d of %d nodes up", up, o.SimNodes)
		}
		return nil
	})
	return st
}

// Active waits until one of st's schedulers holds the lease.
func Active(t testing.TB, st *stack.Stack) {
	t.Helper()
	testkit.Eventually(t, testkit.Wait, func() error {
		if st.ActiveScheduler() == nil {
			return errors.New("no scheduler of this platform holds the lease")
		}
		return nil
	})
}

// Stop stops st, bounded; safe after the stack stopped.
func Stop(st *stack.Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	st.Stop(ctx)
}

// NodesUp counts the nodes RMS holds up.
func NodesUp(st *stack.Stack) int {
	up := 0
	for _, n := range st.RMS.Nodes() {
		if n.State == protocol.NodeUp {
			up++
		}
	}
	return up
}
