package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/testkit"
)

// These tests drive the two nodes with sipp (Debian's sip-tester), as the
// terminals of seed 003 would: scenarios in testdata/.

func udpPort(t *testing.T, n *Node) string {
	t.Helper()
	_, p, ok := strings.Cut(n.UDPAddr(), "127.0.0.1:")
	if !ok {
		t.Fatalf("node address %s", n.UDPAddr())
	}
	return p
}

// registerSipp registers user (password pw) through node with sipp on a
// port of its own, and returns the port: a UAS started there answers
// the user's calls.
func registerSipp(t *testing.T, node *Node, user, pw string) int {
	t.Helper()
	port := freePort(t)
	runSipp(t, "register.xml", node.UDPAddr(), sippOpts{service: user, user: user, pass: pw, port: port,
		keys: map[string]string{"expires": "3600"}})
	return port
}

// callID is the one call the recorder saw start with this caller and
// called number.
func (e *env) callID(t *testing.T, caller, called string) string {
	t.Helper()
	var id string
	testkit.AwaitWithin(t, 15*time.Second, fmt.Sprintf("a call from %s to %s", caller, called), func() bool {
		e.rec.mu.Lock()
		defer e.rec.mu.Unlock()
		n := 0
		for cid, s := range e.rec.started {
			if s[0].Caller == caller && s[0].Called == called {
				id, n = cid, n+1
			}
		}
		if n > 1 {
			t.Fatalf("%d calls from %s to %s", n, caller, called)
		}
		return n == 1
	})
	return id
}

func TestSippRegisterWithDigest(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "secret-1001")
	registerSipp(t, e.a, "1001", "secret-1001")
	b := e.bindings("1001")
	if len(b) != 1 || b[0].Node != "sip-a" || b[0].Transport != "UDP" {
		t.Fatalf("bindings %+v", b)
	}
}

func TestSippWrongPasswordRefused(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "secret-1001")
	runSipp(t, "register_refused.xml", e.a.UDPAddr(), sippOpts{service: "1001", user: "1001", pass: "not-the-password",
		keys: map[string]string{"expires": "3600"}})
	if b := e.bindings("1001"); len(b) != 0 {
		t.Fatalf("a wrong password registered %+v", b)
	}
}

// Credentials sent a second time as they were (same nonce, same count)
// are refused, whichever node they reach.
func TestSippReplayedNonceRefused(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "secret-1001")
	// A challenge as node A would issue it: the platform's key signs it.
	secret, err := e.st.Store.SIPDigestSecret(context.Background(), "unused")
	if err != nil {
		t.Fatal(err)
	}
	nonce := digest.NewNonces([]byte(secret), time.Minute).New()
	port := freePort(t)
	uri := "sip:" + e.b.UDPAddr()
	resp := digest.Response(digest.MD5, digest.HA1(digest.MD5, "1001", testDomain, "secret-1001"), nonce, "00000001", "cafe", "auth", "REGISTER", uri)
	creds := fmt.Sprintf(`Digest username="1001", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=00000001, cnonce="cafe"`,
		testDomain, nonce, uri, resp)
	runSipp(t, "register_replay.xml", e.b.UDPAddr(), sippOpts{service: "1001", port: port, inf: []string{creds + ";"}})
	if b := e.bindings("1001"); len(b) != 1 {
		t.Fatalf("the first use did not register: %+v", b)
	}
}

// A user registered through A (one datacenter) is called through B (the
// other) at once.
func TestSippRegisterAtACallThroughB(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	e.subscriber("1002", "pw-1002")
	port := registerSipp(t, e.a, "1002", "pw-1002")
	uas := startSipp(t, "uas.xml", e.a.UDPAddr(), sippOpts{service: "1002", port: port})
	runSipp(t, "uac.xml", e.b.UDPAddr(), sippOpts{service: "1002", user: "1001", pass: "pw-1001",
		keys: map[string]string{"video_port": "0"}, pause: 200 * time.Millisecond})
	uas.wait()
	ev := e.rec.waitEnd(t, e.callID(t, "1001", "1002"))
	if !ev.Connected || ev.Node != "sip-b" || ev.Media != MediaVoice || ev.Reason != EndBye || ev.Status != 200 || ev.Duration() <= 0 {
		t.Fatalf("record %+v", ev)
	}
	e.rec.check(t)
}

// A BYE that reaches the other datacenter's node ends the call there.
func TestSippByeThroughTheOtherNode(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	e.subscriber("1004", "pw-1004")
	port := registerSipp(t, e.b, "1004", "pw-1004")
	uas := startSipp(t, "uas.xml", e.b.UDPAddr(), sippOpts{service: "1004", port: port})
	runSipp(t, "uac_bye_other.xml", e.a.UDPAddr(), sippOpts{service: "1004", user: "1001", pass: "pw-1001",
		keys: map[string]string{"video_port": "0", "other_port": udpPort(t, e.b)}, pause: 100 * time.Millisecond})
	uas.wait()
	id := e.callID(t, "1001", "1004")
	ev := e.rec.waitEnd(t, id)
	if !ev.Connected || ev.Node != "sip-a" || ev.Reason != EndBye {
		t.Fatalf("record %+v", ev)
	}
	if log := e.rec.logText(id); !strings.Contains(log, "sip-b in ") || !strings.Contains(log, "BYE sip:1004@") {
		t.Fatalf("the BYE did not go through sip-b:\n%s", log)
	}
	e.rec.check(t)
}

func TestSippCancelBeforeAnswer(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	e.subscriber("1003", "pw-1003")
	port := registerSipp(t, e.a, "1003", "pw-1003")
	uas := startSipp(t, "uas_ring.xml", e.a.UDPAddr(), sippOpts{service: "1003", port: port})
	runSipp(t, "uac_cancel.xml", e.a.UDPAddr(), sippOpts{service: "1003", user: "1001", pass: "pw-1001",
		keys: map[string]string{"video_port": "0"}})
	uas.wait()
	ev := e.rec.waitEnd(t, e.callID(t, "1001", "1003"))
	if ev.Connected || ev.Reason != EndCancel || ev.Status != 487 {
		t.Fatalf("record %+v", ev)
	}
	e.rec.check(t)
}

// A call nobody hangs up is ended by the session timer: both parties get
// a BYE from the node, and the call is recorded as connected.
func TestSippCallWithoutByeEndedByTheTimer(t *testing.T) {
	e := start(t, setup{tune: func(o *Options) { o.MaxCallDuration = time.Second }})
	e.subscriber("1001", "pw-1001")
	e.subscriber("1005", "pw-1005")
	port := registerSipp(t, e.a, "1005", "pw-1005")
	uas := startSipp(t, "uas.xml", e.a.UDPAddr(), sippOpts{service: "1005", port: port})
	runSipp(t, "uac_nobye.xml", e.b.UDPAddr(), sippOpts{service: "1005", user: "1001", pass: "pw-1001",
		keys: map[string]string{"video_port": "6002"}})
	uas.wait()
	ev := e.rec.waitEnd(t, e.callID(t, "1001", "1005"))
	if !ev.Connected || ev.Reason != EndSessionExpired || ev.Media != MediaVideo || ev.Duration() < time.Second {
		t.Fatalf("record %+v", ev)
	}
	e.rec.check(t)
}

// A call to a conference reaches the media node running it; once that
// node fails and the conference is restored on another, a new call
// reaches the new node.
func TestSippCallFollowsItsConference(t *testing.T) {
	e := start(t, setup{sims: 2})
	e.subscriber("1001", "pw-1001")
	e164, node := e.conference("weekly")
	call := func(via *Node) {
		t.Helper()
		runSipp(t, "uac.xml", via.UDPAddr(), sippOpts{service: e164, user: "1001", pass: "pw-1001",
			keys: map[string]string{"video_port": "6002"}, pause: 50 * time.Millisecond})
	}
	call(e.b)
	first := e.sims[e.simIndex(node)]
	if calls := first.SIPCalls(); len(calls) != 1 || calls[0].E164 != e164 || calls[0].Status != 200 || !calls[0].Ended {
		t.Fatalf("node %s's calls: %+v", node, calls)
	}

	e.killSim(e.simIndex(node))
	var moved string
	testkit.AwaitWithin(t, 15*time.Second, "the conference restored on the other node", func() bool {
		en, ok := e.st.Registry.Lookup(e164)
		moved = en.Node
		return ok && en.Node != node && e.sims[e.simIndex(en.Node)].Hosts(e164)
	})
	call(e.a)
	if calls := e.sims[e.simIndex(moved)].SIPCalls(); len(calls) != 1 || calls[0].E164 != e164 || calls[0].Status != 200 {
		t.Fatalf("node %s's calls after the failover: %+v", moved, calls)
	}
	e.rec.mu.Lock()
	n := len(e.rec.started)
	for _, s := range e.rec.started {
		if s[0].E164 != e164 {
			t.Errorf("call %+v does not name conference %s", s[0], e164)
		}
	}
	e.rec.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d calls recorded, want 2", n)
	}
	for _, id := range e.rec.callIDs() {
		if ev := e.rec.waitEnd(t, id); !ev.Connected || ev.Media != MediaVideo {
			t.Fatalf("record %+v", ev)
		}
	}
	e.rec.check(t)
}

var _ = strconv.Itoa
