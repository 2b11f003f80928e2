package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// A media node that restarts comes back as a new process (a new pid)
// without the conferences it hosted: they are restored (000 §9.2: the
// store's ip and pid for them differ from the node's now), none lost, none
// doubled, none cleared as if they had ended.
func TestNodeRestartedWithANewPID(t *testing.T) {
	t.Run("RMS sees the new pid", func(t *testing.T) {
		e := hdStart(t, hdOptions{nodes: 3, slowDetection: true})
		want := e.createAll(15)
		node := e.st.Nodes[0]
		on := e.onNode(node.ID())
		if len(on) == 0 {
			t.Fatal("nothing runs on the node to restart")
		}
		pid := node.PID()
		node.Kill()
		if err := node.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if node.PID() == pid {
			t.Fatalf("the node came back with the same pid %s", pid)
		}
		e.exactly("after the node restarted", want)
		e.wereRestored(on)
	})
	t.Run("only its conference list tells", func(t *testing.T) {
		// RMS missed the restart (its connection and registration look
		// unchanged): the node's conference list, from the same ip with
		// another pid and without the conferences, is what tells.
		e := hdStart(t, hdOptions{nodes: 3, slowDetection: true})
		want := e.createAll(15)
		node := e.st.Nodes[0]
		on := e.onNode(node.ID())
		if len(on) == 0 {
			t.Fatal("nothing runs on the node to restart")
		}
		node.Kill() // its process is gone; its bus connection, as RMS sees it, is not
		b, err := e.st.Connect("restarted-node-list")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		// A conference list is only believed about conferences older than
		// a create can take; the node repeats it, as it does every period.
		testkit.Eventually(t, 20*time.Second, testkit.Cond("the node's conferences to leave it", func() bool {
			ntf := protocol.ConfListNtf{
				Type: protocol.MCUConfListNtf, Node: node.ID(), IP: node.IP(), PID: node.PID() + "0",
				Room: "r1", Confs: []protocol.ConfListEntry{}, SentAtMs: time.Now().UnixMilli(),
			}
			if err := b.Publish(protocol.SubjectFromNodes("p1"), ntf); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			return len(e.onNode(node.ID())) == 0
		}))
		e.exactly("after the node's list showed its restart", want, node.ID())
		e.wereRestored(on)
	})
}

// onNode lists the conferences the store runs on a node.
func (e *hdEnv) onNode(node string) []string {
	e.t.Helper()
	confs, err := e.st.Store.AllConferences(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, c := range confs {
		if c.Node == node {
			out = append(out, c.E164)
		}
	}
	return out
}

// wereRestored fails the test unless each conference was restored (a
// restore request reached some node): a conference cleared and booked
// anew would not have been.
func (e *hdEnv) wereRestored(e164s []string) {
	e.t.Helper()
	for _, num := range e164s {
		n := 0
		for _, node := range e.st.Nodes {
			n += received(node, protocol.MAUMCURestoreConfReq, num)
		}
		if n == 0 {
			e.t.Fatalf("%s was never restored", num)
		}
	}
}
