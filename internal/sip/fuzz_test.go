package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// fuzzNode is one node per process for FuzzRequest: the embedded store,
// a SQLite records file, no bus; its log fails the fuzzing when a
// request's handling panicked (the node recovers, answers 500 and logs
// it: still a defect).
var fuzzNode struct {
	once    sync.Once
	err     error
	n       *Node
	panics  atomic.Int64
	lastLog atomic.Value // string
}

type panicWatch struct{ slog.Handler }

func (p panicWatch) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "handling failed") {
		fuzzNode.panics.Add(1)
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, "%s=%v\n", a.Key, a.Value); return true })
		fuzzNode.lastLog.Store(b.String())
	}
	return nil
}
func (p panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (p panicWatch) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p panicWatch) WithGroup(string) slog.Handler            { return p }

func startFuzzNode() (*Node, error) {
	fuzzNode.once.Do(func() {
		ctx := context.Background()
		emb, err := store.StartEmbedded("127.0.0.1:0")
		if err != nil {
			fuzzNode.err = err
			return
		}
		st, err := store.Open(ctx, store.Options{URL: emb.URL()}, nil)
		if err != nil {
			fuzzNode.err = err
			return
		}
		dir, err := os.MkdirTemp("", "sip-fuzz-")
		if err != nil {
			fuzzNode.err = err
			return
		}
		db, err := records.Open(ctx, "sqlite://"+filepath.Join(dir, "records.db"), nil)
		if err != nil {
			fuzzNode.err = err
			return
		}
		s, _ := NewSubscriber("1001", "pw-1001", testDomain)
		if _, _, err := db.PutSIPSubscriber(ctx, s); err != nil {
			fuzzNode.err = err
			return
		}
		log := slog.New(panicWatch{slog.DiscardHandler})
		n, err := New(Options{Name: "fuzz", Platform: testPlatform, Domain: testDomain, UDP: "127.0.0.1:0", RingTimeout: time.Second},
			Deps{Store: st, Subscribers: db, Log: log})
		if err == nil {
			err = n.Start(ctx)
		}
		fuzzNode.n, fuzzNode.err = n, err
	})
	return fuzzNode.n, fuzzNode.err
}

// FuzzRequest sends a datagram to a running node, then an OPTIONS: the
// node must answer it (it did not die or hang on the datagram), and must
// not have panicked handling it.
func FuzzRequest(f *testing.F) {
	const via = "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-seed\r\n"
	for _, s := range []string{
		"\x00\x01garbage",
		"INVITE\r\n\r\n",
		"SIP/2.0 200 OK\r\n" + via + "\r\n",
		"OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + via + "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		"REGISTER sip:" + testDomain + " SIP/2.0\r\n" + via + "From: <sip:1001@" + testDomain + ">;tag=1\r\nTo: <sip:1001@" + testDomain + ">\r\n" +
			"Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.1:5999>;expires=60;q=0.5\r\nExpires: 60\r\n" +
			`Authorization: Digest username="1001", realm="` + testDomain + `", nonce="AAAA", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c"` + "\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:1001@" + testDomain + " SIP/2.0\r\n" + via + "From: <sip:1001@" + testDomain + ">;tag=2\r\nTo: <sip:5100001@" + testDomain + ">\r\n" +
			"Call-ID: i1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 0\r\nContact: <sip:1001@127.0.0.1:5999>\r\nSession-Expires: 90;refresher=uac\r\n" +
			"Content-Type: application/sdp\r\nContent-Length: 40\r\n\r\nv=0\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 96\r\n",
		"BYE sip:1001@127.0.0.1 SIP/2.0\r\n" + via + "Route: <sip:127.0.0.1;lr;cvn=other>\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>;tag=2\r\ni: b1\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n",
		"CANCEL sip:x@y SIP/2.0\r\n" + via + "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: c1\r\nCSeq: 1 CANCEL\r\nContent-Length: 99999\r\n\r\n",
		"REGISTER sip:" + testDomain + " SIP/2.0\r\n" + via + "From: <sip:1001@" + testDomain + ">;tag=1\r\nTo: <sip:1001@" + testDomain + ">\r\n" +
			"Call-ID: r2\r\nCSeq: 4294967295 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	n, err := startFuzzNode()
	if err != nil {
		f.Fatal(err)
	}
	var probes atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8000 {
			return
		}
		before := fuzzNode.panics.Load()
		conn, err := net.Dial("udp", n.UDPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(data); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("probe-%d-%d", os.Getpid(), probes.Add(1))
		probe := "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK-" + id + "\r\n" +
			"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:node@127.0.0.1>\r\nCall-ID: " + id + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := conn.Write([]byte(probe)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		buf := make([]byte, 65536)
		for {
			_ = conn.SetReadDeadline(deadline)
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("the node did not answer an OPTIONS after the datagram %q: %v", data, err)
			}
			if strings.Contains(string(buf[:k]), id) {
				break
			}
		}
		if fuzzNode.panics.Load() > before {
			t.Fatalf("the node panicked handling %q:\n%v", data, fuzzNode.lastLog.Load())
		}
	})
}
