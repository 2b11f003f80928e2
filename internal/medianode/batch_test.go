package medianode

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func restoreMany(nums ...string) protocol.NodeConfsReq {
	req := protocol.NodeConfsReq{Type: protocol.MAUMCURestoreConfsReq}
	for _, e := range nums {
		req.Confs = append(req.Confs, protocol.Conference{E164: e, Name: "conf " + e, EndTime: 77, DurationMinutes: 60})
	}
	return req
}

func TestRestoreManyHostsEachOnceAndAnswersEach(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	n, _ := h.node(Options{IP: "10.0.0.7", Capacity: 1500})
	nums := make([]string, 1200)
	for i := range nums {
		nums[i] = e164(i)
	}
	var ack protocol.NodeConfsAck
	if err := h.call("sim-1", restoreMany(nums...), &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Type != protocol.MCURestoreConfsAck || ack.IP != "10.0.0.7" || ack.PID != n.PID() || len(ack.Results) != len(nums) {
		t.Fatalf("ack = %s %s %s with %d results", ack.Type, ack.IP, ack.PID, len(ack.Results))
	}
	for i, r := range ack.Results {
		if r.E164 != nums[i] || r.ErrCode != "" {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	created := map[string]int64{}
	for _, c := range n.Conferences() {
		created[c.E164] = c.CreateTime
		if c.Name != "conf "+c.E164 || c.EndTime != 77 || c.DurationMinutes != 60 {
			t.Fatalf("hosted %+v", c)
		}
	}
	if len(created) != len(nums) {
		t.Fatalf("hosts %d, want %d", len(created), len(nums))
	}

	// The same request again, as after a lost answer: each counts as
	// restored, none is hosted twice or anew.
	time.Sleep(2 * time.Millisecond) // a new create time would differ
	var again protocol.NodeConfsAck
	if err := h.call("sim-1", restoreMany(nums...), &again); err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Results {
		if r.E164 != nums[i] || r.ErrCode != "" {
			t.Fatalf("repeated result %d = %+v", i, r)
		}
	}
	hosted := n.Conferences()
	if len(hosted) != len(nums) {
		t.Fatalf("after the repeat it hosts %d, want %d", len(hosted), len(nums))
	}
	for _, c := range hosted {
		if c.CreateTime != created[c.E164] {
			t.Fatalf("%s was hosted anew by the repeat", c.E164)
		}
	}

	// Past its capacity each extra conference is refused on its own.
	more := []string{e164(5000), nums[0], e164(5001)}
	for i := 0; i < 398; i++ {
		more = append(more, e164(6000+i))
	}
	var full protocol.NodeConfsAck
	if err := h.call("sim-1", restoreMany(more...), &full); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, r := range full.Results {
		if r.ErrCode == CodeNodeFull {
			refused++
		} else if r.ErrCode != "" {
			t.Fatalf("result %+v", r)
		}
	}
	if got := len(n.Conferences()); got != 1500 || refused != len(more)-1-(1500-len(nums)) {
		t.Fatalf("hosts %d (want 1500), %d refused", got, refused)
	}

	// The log has the batch once and each of its conferences.
	batches, each := 0, 0
	for _, r := range n.Received() {
		switch {
		case r.Type == protocol.MAUMCURestoreConfsReq && r.E164 == "":
			batches++
		case r.Type == protocol.MAUMCURestoreConfReq:
			each++
		}
	}
	if batches != 3 || each != 2*len(nums)+len(more) {
		t.Fatalf("log: %d batches, %d conferences", batches, each)
	}
}

func TestRestoreManyRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	n, _ := h.node(Options{})
	err := h.call("sim-1", protocol.NodeConfsReq{Type: protocol.MAUMCURestoreConfsReq}, nil)
	var ne *bus.NackError
	if !errors.As(err, &ne) || ne.Type != protocol.MCURestoreConfsNack || ne.Code != protocol.ErrBadRequest {
		t.Fatalf("empty batch: %v", err)
	}
	var ack protocol.NodeConfsAck
	if err := h.call("sim-1", restoreMany("1001", "", "1002"), &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Results[1].ErrCode != protocol.ErrBadRequest || ack.Results[0].ErrCode != "" || ack.Results[2].ErrCode != "" {
		t.Fatalf("results %+v", ack.Results)
	}
	// A fault on the per-conference restore covers its batch form.
	n.SetFault(Fault{Nack: "NODE_BUSY", Only: []string{protocol.MAUMCURestoreConfReq}})
	if err := h.call("sim-1", restoreMany("1003", "1004"), &ack); err != nil {
		t.Fatal(err)
	}
	for _, r := range ack.Results {
		if r.ErrCode != "NODE_BUSY" {
			t.Fatalf("under a NACK fault: %+v", ack.Results)
		}
	}
	if n.Hosts("1003") || n.Hosts("1004") {
		t.Fatal("a refused batch was applied")
	}
	n.SetFault(Fault{Silent: true})
	if err := h.call("sim-1", restoreMany("1005"), &ack); err == nil {
		t.Fatal("a silent node answered a batch")
	}
	if n.Hosts("1005") {
		t.Fatal("a silent node applied a batch")
	}
}

func TestReleaseManyEndsWhatItHostsWithoutNotices(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	notices := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{ConfListInterval: time.Hour})
	var keep, drop []string
	for i := range 3000 {
		e := e164(i)
		n.Inject(e, 0)
		if i%3 == 0 {
			keep = append(keep, e)
		} else {
			drop = append(drop, e)
		}
	}
	cmd := protocol.ConfsCmd{Type: protocol.MAUMCUReleaseConfsCmd, E164s: append([]string{"8888"}, drop...)}
	var ack protocol.ConfsAck
	if err := h.call("sim-1", cmd, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Type != protocol.MCUReleaseConfsAck || len(ack.Released) != len(drop) {
		t.Fatalf("ack %s releasing %d, want %d", ack.Type, len(ack.Released), len(drop))
	}
	for _, e := range drop {
		if n.Hosts(e) {
			t.Fatalf("%s still hosted", e)
		}
	}
	for _, e := range keep {
		if !n.Hosts(e) {
			t.Fatalf("%s was ended too", e)
		}
	}
	// Sent without a reply subject (as the scheduler does), and again:
	// nothing more goes, and no per-conference notice either way.
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), cmd); err != nil {
		t.Fatal(err)
	}
	if err := h.call("sim-1", protocol.ConfsCmd{Type: protocol.MAUMCUReleaseConfsCmd, E164s: keep[:1]}, &ack); err != nil || len(ack.Released) != 1 {
		t.Fatalf("a release after the repeat: %+v, %v", ack, err)
	}
	if got := len(n.Conferences()); got != len(keep)-1 {
		t.Fatalf("hosts %d, want %d", got, len(keep)-1)
	}
	if m := notices.of(protocol.MCUReleaseConfNtf); len(m) != 0 {
		t.Fatalf("%d release notices for a batch release", len(m))
	}
	// A silent node applies nothing.
	n.SetFault(Fault{Silent: true, Only: []string{protocol.MAUMCUReleaseConfCmd}})
	if err := h.call("sim-1", protocol.ConfsCmd{Type: protocol.MAUMCUReleaseConfsCmd, E164s: keep[1:]}, &ack); err == nil {
		t.Fatal("a silent node answered")
	}
	if got := len(n.Conferences()); got != len(keep)-1 {
		t.Fatalf("a silent node released: hosts %d", got)
	}
}

// listAt is the latest conference list the scheduler's stand-in received.
func listAt(t *testing.T, lists *inbox, n int) protocol.ConfListNtf {
	t.Helper()
	testkit.Eventually(t, testkit.Wait, testkit.Cond(fmt.Sprintf("conference list %d", n), func() bool { return len(lists.of(protocol.MCUConfListNtf)) >= n }))
	msgs := lists.of(protocol.MCUConfListNtf)
	var got protocol.ConfListNtf
	if err := msgs[n-1].Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// digestOf is the digest of a whole list.
func digestOf(l map[string]int64) uint64 {
	var d uint64
	for e, ct := range l {
		d ^= protocol.ListEntryHash(e, ct)
	}
	return d
}

func TestConfListDeltasOnceAcknowledged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	lists := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{ConfListInterval: time.Hour, Capacity: 2000})
	for i := range 1000 {
		n.Inject(e164(i), int64(i+1))
	}
	// Without an acknowledgement every list goes whole.
	first := listAt(t, lists, 1)
	if first.Delta || first.Version == 0 {
		t.Fatalf("first list: delta %v, version %d", first.Delta, first.Version)
	}
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	whole := listAt(t, lists, 2)
	held := map[string]int64{}
	for _, c := range whole.Confs {
		held[c.E164] = c.CreateTime
	}
	if whole.Delta || len(held) != 1000 || whole.Count != 1000 || whole.Digest != digestOf(held) {
		t.Fatalf("unacknowledged list: delta %v, %d conferences, count %d", whole.Delta, len(held), whole.Count)
	}
	ack := func(v uint64, pid string) {
		t.Helper()
		if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), protocol.ConfListAck{Type: protocol.MAUMCUConfListAck, PID: pid, Version: v}); err != nil {
			t.Fatal(err)
		}
		if err := h.sched.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// An acknowledgement from another process's point of view changes
	// nothing.
	ack(whole.Version, "not-"+n.PID())
	// Nothing changes and the scheduler holds it: an empty delta.
	ack(whole.Version, n.PID())
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the acknowledgement", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.list.acked == whole.Version
	}))
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	same := listAt(t, lists, 3)
	if !same.Delta || same.Since != whole.Version || same.Version != whole.Version || len(same.Confs)+len(same.Removed) != 0 || same.Count != 1000 || same.Digest != whole.Digest {
		t.Fatalf("unchanged list = %+v", same)
	}
	// Changes: only they go, and applying them gives the node's list.
	h.create("sim-1", "7001")
	n.Forget(e164(3))
	n.Inject(e164(4), 999_999)
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	d := listAt(t, lists, 4)
	if !d.Delta || d.Since != whole.Version || len(d.Confs) != 2 || len(d.Removed) != 1 || d.Removed[0] != e164(3) {
		t.Fatalf("delta = %+v", d)
	}
	for _, c := range d.Confs {
		held[c.E164] = c.CreateTime
	}
	for _, e := range d.Removed {
		delete(held, e)
	}
	if len(held) != d.Count || digestOf(held) != d.Digest || d.Count != len(n.Conferences()) {
		t.Fatalf("applied delta: %d conferences, digest match %v; node hosts %d", len(held), digestOf(held) == d.Digest, len(n.Conferences()))
	}
	// Until the scheduler holds the new version, the same changes go
	// again; after, none.
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	if again := listAt(t, lists, 5); len(again.Confs) != 2 || len(again.Removed) != 1 {
		t.Fatalf("delta before its acknowledgement = %+v", again)
	}
	ack(d.Version, n.PID())
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the second acknowledgement", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.list.acked == d.Version
	}))
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	if after := listAt(t, lists, 6); !after.Delta || len(after.Confs)+len(after.Removed) != 0 {
		t.Fatalf("delta after its acknowledgement = %+v", after)
	}
	// Asked for it whole, it goes whole; a delta only once that one is
	// acknowledged.
	n.Inject("7002", 0)
	held["7002"] = 0
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd}); err != nil {
		t.Fatal(err)
	}
	asked := listAt(t, lists, 7)
	if asked.Delta || len(asked.Confs) != len(held) || asked.Version <= d.Version {
		t.Fatalf("list on request: delta %v, %d conferences", asked.Delta, len(asked.Confs))
	}
	ack(d.Version, n.PID()) // older than the whole list: ignored
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	if next := listAt(t, lists, 8); next.Delta {
		t.Fatal("a delta went before the whole list was acknowledged")
	}
	// A delta on request is one when it can be.
	ack(asked.Version, n.PID())
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the acknowledgement of the whole list", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.list.acked == asked.Version
	}))
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd, Delta: true}); err != nil {
		t.Fatal(err)
	}
	if onRequest := listAt(t, lists, 9); !onRequest.Delta {
		t.Fatal("a delta asked for went whole")
	}
	// A restarted process starts whole again.
	n.Kill()
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if restarted := listAt(t, lists, 10); restarted.Delta || restarted.PID == whole.PID {
		t.Fatalf("after a restart: delta %v, pid %s", restarted.Delta, restarted.PID)
	}
}

func TestOldProtocolNodeKnowsNoBatches(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	lists := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{OldProtocol: true, ConfListInterval: time.Hour})
	err := h.call("sim-1", restoreMany("1001"), nil)
	var ne *bus.NackError
	if !errors.As(err, &ne) || ne.Type != protocol.ErrorReplyType || ne.Code != protocol.ErrBadRequest {
		t.Fatalf("a batch to an old node: %v", err)
	}
	if n.Hosts("1001") {
		t.Fatal("an old node applied a batch")
	}
	h.create("sim-1", "1002")
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), protocol.ConfListAck{Type: protocol.MAUMCUConfListAck, PID: n.PID(), Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	got := listAt(t, lists, 2)
	if got.Delta || got.Version != 0 || len(got.Confs) != 1 {
		t.Fatalf("an old node's list = %+v", got)
	}
}
