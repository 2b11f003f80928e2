package medianode

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

const offerAV = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 8 0\r\nm=video 6002 RTP/AVP 96\r\nm=application 6004 UDP/BFCP *\r\n"

func TestAnswerSDPMirrorsTheOffer(t *testing.T) {
	got := string(answerSDP([]byte(offerAV), "10.0.0.1"))
	for _, want := range []string{"m=audio 40000 RTP/AVP 8\r\n", "m=video 40002 RTP/AVP 96\r\n", "m=application 0 UDP/BFCP *\r\n", "c=IN IP4 10.0.0.1"} {
		if !strings.Contains(got, want) {
			t.Fatalf("answer %q lacks %q", got, want)
		}
	}
	if got := string(answerSDP(nil, "h")); !strings.Contains(got, "m=audio") {
		t.Fatalf("answer to no offer %q", got)
	}
}

// sipClient is a user agent client for the tests.
func sipClient(t *testing.T) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func invite(t *testing.T, c *sipgo.Client, contact, e164 string) (*sip.Request, *sip.Response) {
	t.Helper()
	var to sip.Uri
	if err := sip.ParseUri(contact, &to); err != nil {
		t.Fatal(err)
	}
	to.User = e164
	req := sip.NewRequest(sip.INVITE, to)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(offerAV))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return req, res
}

// A node with a SIP listener announces its contact and answers the calls
// to the conferences it hosts, and only those.
func TestNodeAnswersSIPCallsToItsConferences(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rms := h.rms(0, protocol.RegisterAck{})
	n, _ := h.node(Options{ID: "sim-sip", SIPListen: "127.0.0.1:0"})
	contact := n.SIPContact()
	if !strings.HasPrefix(contact, "sip:127.0.0.1:") {
		t.Fatalf("contact %q", contact)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("a registration and a beat with the contact", func() bool {
		rms.mu.Lock()
		defer rms.mu.Unlock()
		return len(rms.registers) > 0 && rms.registers[0].SIP == contact && len(rms.beats) > 0 && rms.beats[len(rms.beats)-1].SIP == contact
	}))
	h.create("sim-sip", "6600001")
	c := sipClient(t)

	req, res := invite(t, c, contact, "6600001")
	if res.StatusCode != sip.StatusOK || !strings.Contains(string(res.Body()), "m=video") || res.Contact() == nil {
		t.Fatalf("answer %d with %q", res.StatusCode, res.Body())
	}
	ack := sip.NewRequest(sip.ACK, req.Recipient)
	ack.AppendHeader(req.From())
	ack.AppendHeader(res.To())
	ack.AppendHeader(req.CallID())
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	if err := c.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	bye := sip.NewRequest(sip.BYE, res.Contact().Address)
	bye.AppendHeader(req.From())
	bye.AppendHeader(res.To())
	bye.AppendHeader(req.CallID())
	bye.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo + 1, MethodName: sip.BYE})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := c.Do(ctx, bye); err != nil || res.StatusCode != sip.StatusOK {
		t.Fatalf("BYE: %v, %v", res, err)
	}

	if _, res := invite(t, c, contact, "6600002"); res.StatusCode != sip.StatusNotFound {
		t.Fatalf("a call to a conference the node does not host: %d", res.StatusCode)
	}
	calls := n.SIPCalls()
	if len(calls) != 2 || calls[0].E164 != "6600001" || calls[0].Status != 200 || !calls[0].Ended || calls[1].Status != 404 {
		t.Fatalf("calls %+v", calls)
	}

	n.Kill()
	if n.SIPContact() != "" || n.SIPCalls() != nil {
		t.Fatal("a killed node still has a SIP contact")
	}
}
