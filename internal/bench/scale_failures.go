package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
)

// crash kills the most loaded node and measures its conferences' restore.
func (r *ScaleRun) crash(ctx context.Context, before map[string]confPlace) error {
	i, confs := mostLoaded(r.st)
	fmt.Fprintf(r.out, "crash of %s, the most loaded node (%d conferences)%s\n", r.st.Nodes[i].ID(), len(confs), LoadAverage())
	w, err := Watch(r.st)
	if err != nil {
		return err
	}
	defer w.Close()
	killed := time.Now()
	r.st.KillNode(i)
	detected, err := r.detectAndRestore(ctx, w, i, killed, confs)
	if err != nil {
		return err
	}
	r.printUndoubled(ctx, allNodes(r.st), detected, "detection")
	return r.audit(ctx, before, "")
}

// freeze hangs the most loaded live node, measures its conferences'
// restore, then wakes it and measures how long its stale copies last.
func (r *ScaleRun) freeze(ctx context.Context, before map[string]confPlace) error {
	crashed := slices.IndexFunc(r.st.Nodes, func(n *medianode.Node) bool { return !n.Running() })
	i, confs := mostLoaded(r.st, crashed)
	fmt.Fprintf(r.out, "freeze of %s, the most loaded live node (%d conferences), and thaw%s\n", r.st.Nodes[i].ID(), len(confs), LoadAverage())
	w, err := Watch(r.st)
	if err != nil {
		return err
	}
	defer w.Close()
	frozen := time.Now()
	r.st.FreezeNode(i)
	if _, err := r.detectAndRestore(ctx, w, i, frozen, confs); err != nil {
		return err
	}
	// Wake the node: its stale copies must be ended.
	thawed := time.Now()
	r.st.Nodes[i].SetFault(medianode.Fault{})
	r.printUndoubled(ctx, []int{i}, thawed, "the node came back")
	return r.audit(ctx, before, "")
}

// detectAndRestore waits for node i's down notice and for its conferences
// to run again, and prints both; it answers the detection.
func (r *ScaleRun) detectAndRestore(ctx context.Context, w *Watcher, i int, at time.Time, confs []string) (time.Time, error) {
	detected, err := w.WaitDown(ctx, r.st.Nodes[i].ID(), 30*time.Second)
	if err != nil {
		return detected, err
	}
	fmt.Fprintf(r.out, "  detection        %s\n", Ms(detected.Sub(at)))
	recovered, err := w.WaitRestored(ctx, confs, r.b.Wait)
	if err != nil {
		if ctx.Err() != nil {
			return detected, err
		}
		fmt.Fprintf(r.out, "  all running      never: %v\n", err)
		return detected, nil
	}
	fmt.Fprintf(r.out, "  all running      %s after detection\n", Ms(recovered.Sub(detected)))
	return detected, nil
}

// printUndoubled waits until no conference the nodes host is hosted by
// another node too, and prints when, after since. When none is at the
// first look it says so: any there were had ended before it.
func (r *ScaleRun) printUndoubled(ctx context.Context, nodes []int, since time.Time, what string) {
	limit := time.Minute
	if Doubled(r.st, nodes) == 0 {
		fmt.Fprintf(r.out, "  doubled until    none at the first look, %s after %s\n", Ms(time.Since(since)), what)
		return
	}
	if at, ok := r.waitUndoubled(ctx, nodes, limit); ok {
		fmt.Fprintf(r.out, "  doubled until    %s after %s\n", Ms(max(0, at.Sub(since))), what)
	} else {
		fmt.Fprintf(r.out, "  doubled until    still doubled %s after %s\n", limit, what)
	}
}

// allNodes is the index of every simulated node.
func allNodes(st *stack.Stack) []int {
	out := make([]int, len(st.Nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

// failRoom fails the room running the most conferences through the API and
// measures their restore in the other rooms and the end of their old
// copies.
func (r *ScaleRun) failRoom(ctx context.Context, before map[string]confPlace) error {
	now, err := r.conferenceSet(ctx)
	if err != nil {
		return err
	}
	perRoom := map[string]int{}
	for _, c := range now {
		if c.state == protocol.StateRunning {
			perRoom[c.room]++
		}
	}
	var confs []string
	room := ""
	for _, rm := range r.st.Config.Local().Rooms {
		if room == "" || perRoom[rm.Moid] > perRoom[room] {
			room = rm.Moid
		}
	}
	var inRoom []int
	nodeRoom := map[string]string{}
	for _, n := range r.st.RMS.Nodes() {
		nodeRoom[n.Node] = n.Room
	}
	for i, n := range r.st.Nodes {
		if nodeRoom[n.ID()] == room {
			inRoom = append(inRoom, i)
		}
	}
	for e, c := range now {
		if c.state == protocol.StateRunning && c.room == room {
			confs = append(confs, e)
		}
	}
	fmt.Fprintf(r.out, "room failure of %s (%d nodes, %d conferences)%s\n", room, len(inRoom), len(confs), LoadAverage())
	w, err := Watch(r.st)
	if err != nil {
		return err
	}
	defer w.Close()
	rw, err := watchRoom(r.st, room)
	if err != nil {
		return err
	}
	defer rw.close()
	client := apiclient.New("http://"+r.st.API.Addr(), Token)
	failed := time.Now()
	if _, err := client.FailRoom(ctx, room, "bench scale"); err != nil {
		return err
	}
	detected, err := rw.wait(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  detection        %s (the room's failure notice)\n", Ms(detected.Sub(failed)))
	recovered, err := w.WaitRestored(ctx, confs, r.b.Wait)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		fmt.Fprintf(r.out, "  all running      never: %v\n", err)
	default:
		fmt.Fprintf(r.out, "  all running      %s after detection, in the other rooms\n", Ms(recovered.Sub(detected)))
	}
	r.printUndoubled(ctx, inRoom, failed, "the failure")
	return r.audit(ctx, before, room)
}

// audit waits for the platform to settle and audits it, then checks that
// the conferences running are those of before, none of them in the failed
// room.
func (r *ScaleRun) audit(ctx context.Context, before map[string]confPlace, failedRoom string) error {
	ok, err := r.auditSettled(ctx, len(before))
	if err != nil {
		return err
	}
	now, err := r.conferenceSet(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(r.out, "  identity         unknown: the store did not answer: %v\n", err)
		r.audits = append(r.audits, false)
		return nil
	}
	gone, waiting, extra, inFailed, some := compareSets(before, now, failedRoom)
	r.lost = max(r.lost, gone)
	switch {
	case gone == 0 && waiting == 0 && extra == 0 && inFailed == 0:
		fmt.Fprintf(r.out, "  identity         the same %d conferences run as before the failures\n", len(before))
	default:
		ok = false
		fmt.Fprintf(r.out, "  identity         of the conferences of before %d are gone from the store and %d do not run (such as %s); %d are new; %d still run in the failed room\n",
			gone, waiting, strings.Join(some, " "), extra, inFailed)
	}
	r.audits = append(r.audits, ok)
	return nil
}

// compareSets compares the conferences of before (all running) with those
// of now: how many are gone from the store, how many are there but do not
// run, how many are new, and how many run in the failed room (if any);
// some names up to five of the first two kinds.
func compareSets(before, now map[string]confPlace, failedRoom string) (gone, waiting, extra, inFailed int, some []string) {
	for e := range before {
		c, ok := now[e]
		switch {
		case !ok:
			gone++
		case c.state != protocol.StateRunning:
			waiting++
		default:
			continue
		}
		some = append(some, e)
	}
	slices.Sort(some)
	some = some[:min(5, len(some))]
	for e, c := range now {
		if _, ok := before[e]; !ok {
			extra++
		}
		if failedRoom != "" && c.room == failedRoom && c.state == protocol.StateRunning {
			inFailed++
		}
	}
	return gone, waiting, extra, inFailed, some
}

// roomWatch hears PMS's room notices and answers when a room was first
// said to have failed.
type roomWatch struct {
	sub  *bus.Subscription
	room string
	mu   sync.Mutex
	at   time.Time
	wake chan struct{}
}

func watchRoom(st *stack.Stack, room string) (*roomWatch, error) {
	rw := &roomWatch{room: room, wake: make(chan struct{}, 1)}
	sub, err := st.Bus.Subscribe(protocol.SubjectServerRoomNotify, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.ServerRoomStateNtf
		if m.Decode(&ntf) != nil || ntf.Platform != st.Config.Platform {
			return
		}
		for _, r := range ntf.Rooms {
			if r.Room == room && r.State == protocol.RoomAbnormal {
				rw.mu.Lock()
				if rw.at.IsZero() {
					rw.at = time.Now()
				}
				rw.mu.Unlock()
				select {
				case rw.wake <- struct{}{}:
				default:
				}
			}
		}
	}))
	if err != nil {
		return nil, err
	}
	rw.sub = sub
	if err := st.Bus.Flush(context.Background()); err != nil {
		rw.close()
		return nil, err
	}
	return rw, nil
}

func (rw *roomWatch) close() { _ = rw.sub.Unsubscribe() }

func (rw *roomWatch) wait(ctx context.Context, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		rw.mu.Lock()
		at := rw.at
		rw.mu.Unlock()
		if !at.IsZero() {
			return at, nil
		}
		select {
		case <-rw.wake:
		case <-deadline:
			return time.Time{}, errors.New("room " + rw.room + ": no failure notice within " + limit.String())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// mostLoaded is the running node hosting the most conferences, not one of
// skip, and the conferences it hosts.
func mostLoaded(st *stack.Stack, skip ...int) (int, []string) {
	best, most := -1, []string(nil)
	for i, n := range st.Nodes {
		if !n.Running() || slices.Contains(skip, i) {
			continue
		}
		if c := n.Numbers(); best < 0 || len(c) > len(most) {
			best, most = i, c
		}
	}
	return best, most
}

// pollPause is how long to wait before looking again after a look that
// took took: every 25 ms at most, and no more than a fifth of a core
// taken from the platform being measured, whose every node and
// conference a look may go through.
func pollPause(took time.Duration) time.Duration { return max(25*time.Millisecond, 4*took) }

// waitUndoubled waits until no conference the given nodes host is hosted
// by another running node too, and answers when the look that found none
// began.
func (r *ScaleRun) waitUndoubled(ctx context.Context, nodes []int, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for {
		t := time.Now()
		if Doubled(r.st, nodes) == 0 {
			return t, true
		}
		took := time.Since(t)
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-time.After(pollPause(took)):
		}
	}
}

// auditSettled waits, for at most settleLimit, for the platform to settle
// with n conferences running, and prints its audit. A store too busy to
// answer is asked again; one that never answers fails the audit.
func (r *ScaleRun) auditSettled(ctx context.Context, n int) (bool, error) {
	deadline := time.Now().Add(settleLimit)
	for {
		t := time.Now()
		rep, err := r.st.Audit(ctx)
		switch {
		case ctx.Err() != nil:
			return false, ctx.Err()
		case err != nil && time.Now().After(deadline):
			fmt.Fprintf(r.out, "  audit            unknown: the store did not answer within %s: %v\n", settleLimit, err)
			return false, nil
		case err != nil:
			if !sleepCtx(ctx, pollPause(time.Since(t))) {
				return false, ctx.Err()
			}
			continue
		}
		settled := rep.OK() && rep.Creating == 0 && rep.Pending == 0 && rep.Running == n
		if settled || time.Now().After(deadline) {
			fmt.Fprintf(r.out, "  audit            %s\n", rep)
			return settled, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pollPause(time.Since(t))):
		}
	}
}

// settleLimit is how long the platform has to settle after a failure, and
// how long a store too busy to answer the benchmark's reads is waited for.
const settleLimit = 30 * time.Second

// conferenceSet is conferenceSet, asked again while the store is too busy
// to answer, for at most settleLimit.
func (r *ScaleRun) conferenceSet(ctx context.Context) (map[string]confPlace, error) {
	deadline := time.Now().Add(settleLimit)
	for {
		t := time.Now()
		set, err := conferenceSet(ctx, r.st)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return set, err
		}
		if !sleepCtx(ctx, pollPause(time.Since(t))) {
			return nil, ctx.Err()
		}
	}
}

// sleepCtx sleeps for d, or less when ctx ends first: then it answers
// false.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
