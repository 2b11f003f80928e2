package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestEvents(t *testing.T) {
	h := newHarness(t)
	sent := []struct {
		subject string
		msg     any
	}{
		{protocol.SubjectCMNotifications, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: "6600001", State: "running", Node: "n1"}},
		{protocol.SubjectCMNotifications, protocol.ConfDurationNtf{Type: protocol.MAUConfDurationNtf, E164: "6600002", DurationMinutes: 90}},
		{protocol.SubjectCMRequests, protocol.ConfWillEndNtf{Type: protocol.MAUConfWillEndNtf, E164: "6600001", Seconds: 300}},
		{protocol.SubjectCMNotifications, protocol.MonitorStoppedNtf{Type: protocol.MAUMonitorStoppedNtf, E164: "6600001", IP: "10.1.1.1", Port: 5000, Reason: "expired"}},
		{protocol.SubjectCMNotifications, protocol.ConfStateNtf{Type: protocol.MAUReleaseConfNtf, E164: "6600002", Reason: "ended"}},
	}
	before := time.Now().UTC()
	for _, s := range sent {
		if err := h.fakes.Publish(s.subject, s.msg); err != nil {
			t.Fatal(err)
		}
	}
	var evs []apiclient.Event
	testkit.Await(t, "5 events", func() bool {
		_, body := h.do("GET", "/v1/events", "")
		evs = decodeBody[apiclient.EventList](t, body).Events
		return len(evs) == 5
	})
	// Two subscriptions, so only the order within a subject is certain.
	var mccntf []string
	for _, e := range evs {
		if e.Type != protocol.MAUConfWillEndNtf {
			mccntf = append(mccntf, e.Type)
		}
		if e.Time.Before(before) || e.E164 == "" {
			t.Errorf("event %+v: time or number missing", e)
		}
	}
	want := []string{protocol.MAUConfStateNtf, protocol.MAUConfDurationNtf, protocol.MAUMonitorStoppedNtf, protocol.MAUReleaseConfNtf}
	if !equalJSON(t, mccntf, want) {
		t.Fatalf("meeting.mccntf events in order %v, want %v", mccntf, want)
	}

	_, body := h.do("GET", "/v1/events?e164=6600002", "")
	evs = decodeBody[apiclient.EventList](t, body).Events
	if len(evs) != 2 || evs[0].Type != protocol.MAUConfDurationNtf || evs[1].Type != protocol.MAUReleaseConfNtf {
		t.Fatalf("events of 6600002: %s", body)
	}
	var dur protocol.ConfDurationNtf
	if err := json.Unmarshal(evs[0].Payload, &dur); err != nil || dur.DurationMinutes != 90 {
		t.Fatalf("payload %s: %+v %v", evs[0].Payload, dur, err)
	}
	_, body = h.do("GET", "/v1/events?e164=6600001&limit=1", "")
	if evs = decodeBody[apiclient.EventList](t, body).Events; len(evs) != 1 {
		t.Fatalf("limit 1: %s", body)
	}
}

func TestRing(t *testing.T) {
	r := newRing(3)
	if got := r.list("", 10); len(got) != 0 {
		t.Fatalf("empty ring lists %v", got)
	}
	for i := 1; i <= 5; i++ {
		r.add(apiclient.Event{Type: fmt.Sprint(i), E164: map[bool]string{true: "111", false: "222"}[i%2 == 1]})
	}
	types := func(es []apiclient.Event) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Type)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		e164  string
		limit int
		want  string
	}{
		{"", 10, "3,4,5"},
		{"", 2, "4,5"},
		{"111", 10, "3,5"},
		{"222", 10, "4"},
		{"333", 10, ""},
	} {
		if got := types(r.list(tc.e164, tc.limit)); got != tc.want {
			t.Errorf("list(%q, %d) = %q, want %q", tc.e164, tc.limit, got, tc.want)
		}
	}
}

// TestRenameApproval: a media node's rename request relayed on
// meeting.css is answered on the conference's control subject.
func TestRenameApproval(t *testing.T) {
	h := newHarness(t)
	const e164 = "6600005"
	answers := make(chan protocol.ModifyConfNameReq, 4)
	h.fake(protocol.SubjectConfControl(e164), func(m *bus.Msg) any {
		var a protocol.ModifyConfNameReq
		if err := m.Decode(&a); err != nil {
			t.Error(err)
		}
		answers <- a
		return nil
	})
	for _, tc := range []struct {
		name, newName string
		wantType      string
		wantCode      string
	}{
		{"ordinary name", "Board meeting", protocol.CMMCUModifyConfNameAck, ""},
		{"128 characters", strings.Repeat("名", 128), protocol.CMMCUModifyConfNameAck, ""},
		{"empty", "", protocol.CMMCUModifyConfNameNak, codes.RenameRejected},
		{"blank", "   ", protocol.CMMCUModifyConfNameNak, codes.RenameRejected},
		{"129 characters", strings.Repeat("x", 129), protocol.CMMCUModifyConfNameNak, codes.RenameRejected},
		{"bidi override", "Board\u202Egnitee", protocol.CMMCUModifyConfNameNak, codes.RenameRejected},
		{"terminal escape", "\x1b[2JBoard", protocol.CMMCUModifyConfNameNak, codes.RenameRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := protocol.ModifyConfNameReq{
				Type: protocol.MCUCMModifyConfNameReq, E164: e164, Name: tc.newName, IP: "10.0.0.1", PID: "7", MtReqID: "req-" + tc.name,
			}
			if err := h.fakes.Publish(protocol.SubjectCMRequests, req); err != nil {
				t.Fatal(err)
			}
			select {
			case a := <-answers:
				want := req
				want.Type, want.ErrCode = tc.wantType, tc.wantCode
				if a != want {
					t.Fatalf("answer %+v, want %+v", a, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no answer on the control subject")
			}
		})
	}
	// Requests are recorded as events too.
	testkit.Await(t, "the rename requests among the events", func() bool {
		_, body := h.do("GET", "/v1/events?e164="+e164, "")
		return len(decodeBody[apiclient.EventList](t, body).Events) == 7
	})
	// A notice that is not a rename gets no answer.
	if err := h.fakes.Publish(protocol.SubjectCMRequests, protocol.ConfWillEndNtf{Type: protocol.MAUConfWillEndNtf, E164: e164}); err != nil {
		t.Fatal(err)
	}
	testkit.Await(t, "the notice among the events", func() bool {
		_, body := h.do("GET", "/v1/events?e164="+e164, "")
		return len(decodeBody[apiclient.EventList](t, body).Events) == 8
	})
	// Then a rename: the next answer must be the rename's.
	after := protocol.ModifyConfNameReq{Type: protocol.MCUCMModifyConfNameReq, E164: e164, Name: "after", MtReqID: "after"}
	if err := h.fakes.Publish(protocol.SubjectCMRequests, after); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answers:
		if a.MtReqID != "after" || a.Type != protocol.CMMCUModifyConfNameAck {
			t.Fatalf("answer after the notice: %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer to the rename after the notice")
	}
	if err := h.fakes.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answers:
		t.Fatalf("an extra answer: %+v", a)
	default:
	}
}
