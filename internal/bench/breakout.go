package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
)

// Breakout is `convene bench breakout`: users connected over WebSocket to
// a breakout-service instance beside a platform in this process are
// started in rooms, moved, and stopped with a countdown.
type Breakout struct {
	Users, Rooms, Moves int
	Window              int           // moves whose notifications may be on their way at once
	Delay               time.Duration // the stop's countdown
	Notify              string        // the start notify's form: compact or full
	Store               string        // embedded or redis (one started here)
	Log                 *slog.Logger
}

func (b *Breakout) config() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = 10
	}
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "bench", NumberSegment: "7", E164Digits: 7, Rooms: []config.Room{{Moid: "bench-r1", Type: "main"}}}},
		Domains:   []config.Domain{{Moid: "bench", License: limits}},
		API:       config.API{Tokens: []config.Token{{Name: "bench", Token: Token}}},
	}
	c.Defaults()
	return c
}

// benchUser is one connected user and when it received what.
type benchUser struct {
	id        uint32
	c         *breakout.Client
	start     time.Time
	startSize int         // the start notify's size
	startMsg  []byte      // the start notify when it is compact
	moves     []time.Time // by move index
	notice    time.Time   // the countdown's notify
	final     time.Time   // the final notify
	other     atomic.Int64
}

// Run connects the users, starts, moves and stops, and prints each
// phase's fan-out; false when the check at the end fails.
func (b *Breakout) Run(ctx context.Context, out io.Writer) (bool, error) {
	if b.Users < 2 || b.Rooms < 1 || b.Moves < 1 || b.Delay < time.Second {
		return false, errors.New("bench breakout: need 2 users or more, a room or more, a move or more (the countdown needs users in rooms) and a countdown of a second or more")
	}
	if b.Notify != protocol.NotifyCompact && b.Notify != protocol.NotifyFull {
		return false, fmt.Errorf("--notify %q: use %s or %s", b.Notify, protocol.NotifyCompact, protocol.NotifyFull)
	}
	log := b.Log
	opts := stack.Options{Config: b.config(), Listen: "127.0.0.1:0", NATSListen: "none", SimNodes: 1, Log: log}
	if b.Store == "redis" {
		url, stop, err := StartRedis()
		if err != nil {
			return false, err
		}
		defer stop()
		opts.Redis = url
	} else if b.Store != "embedded" {
		return false, fmt.Errorf("--store %q: use embedded or redis", b.Store)
	}
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return false, err
	}
	defer st.Stop(context.Background())
	if err := WaitNodes(ctx, st, 1); err != nil {
		return false, err
	}
	svc, base, stopSvc, err := startBreakout(ctx, st, log)
	if err != nil {
		return false, err
	}
	defer stopSvc()
	conf, err := apiclient.New("http://"+st.API.Addr(), Token).CreateConference(ctx, apiclient.CreateConferenceRequest{
		Name: "breakout bench", Domain: "bench", Scale: 8, Resolution: "720p", DurationMinutes: 60,
	})
	if err != nil {
		return false, err
	}
	e164 := conf.E164
	fmt.Fprintf(out, "bench breakout: %d users, %d rooms, %d moves, a %s countdown; %s start notify; store %s, conference %s\n",
		b.Users, b.Rooms, b.Moves, b.Delay, b.Notify, b.Store, e164)

	t0 := time.Now()
	users, err := b.connect(ctx, base, e164)
	if err != nil {
		return false, err
	}
	defer func() {
		stopSvc() // first, so that no user leaves the conference meanwhile
		for _, u := range users {
			_ = u.c.CloseNow()
		}
	}()
	fmt.Fprintf(out, "  connect          %d users in %.2f s\n", len(users), time.Since(t0).Seconds())

	var wg sync.WaitGroup
	if b.Moves > len(users) {
		return false, fmt.Errorf("--moves %d: at most one move per user (%d)", b.Moves, len(users))
	}
	moveOf := map[uint32]int{}
	for i := range b.Moves {
		moveOf[users[i].id] = i
	}
	var starts, moves, notices, finals atomic.Int64
	heard := make([]atomic.Int64, b.Moves) // users who heard each move
	for _, u := range users {
		u.moves = make([]time.Time, b.Moves)
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.listen(u, moveOf, heard, &starts, &moves, &notices, &finals)
		}()
	}
	host := users[0]
	all := int64(len(users))

	// start
	if err := settle(ctx, st, svc, e164); err != nil {
		return false, err
	}
	req := protocol.BreakoutRoomsStart{Type: protocol.BMSBreakoutRoomsStart, ConfID: e164, UserID: host.id}
	for r := range b.Rooms {
		req.RoomInfos = append(req.RoomInfos, protocol.BreakoutRoomInfo{RoomID: uint32(r + 1), Name: fmt.Sprintf("room %d", r+1), MixerMode: uint32(r % 2)})
	}
	for i, u := range users {
		ri := &req.RoomInfos[i%b.Rooms]
		ri.UserItems = append(ri.UserItems, protocol.BreakoutRoomUserItem{UserID: u.id})
	}
	sentStart := time.Now()
	if err := host.c.Send(ctx, req); err != nil {
		return false, err
	}
	if err := waitCount(ctx, &starts, all, 30*time.Second, "start notifications"); err != nil {
		return false, err
	}
	startLat := since(sentStart, users, func(u *benchUser) time.Time { return u.start })
	startBad := b.checkStarts(users)

	// moves: move i goes once every user heard move i-window
	if err := settle(ctx, st, svc, e164); err != nil {
		return false, err
	}
	sent := make([]time.Time, b.Moves)
	t0 = time.Now()
	for i := range b.Moves {
		if j := i - max(1, b.Window); j >= 0 {
			if err := waitCount(ctx, &heard[j], all, 30*time.Second, fmt.Sprintf("notifications of move %d", j)); err != nil {
				return false, err
			}
		}
		u := users[i%len(users)]
		sent[i] = time.Now()
		if err := host.c.Send(ctx, protocol.SetUserBreakoutRoom{
			Type: protocol.BMSSetUserBreakoutRoom, ConfID: e164, OperatorID: host.id,
			DestItem: protocol.BreakoutRoomUserItem{UserID: u.id, UserCurrentRoomID: uint32(i%len(users)%b.Rooms + 1)},
		}); err != nil {
			return false, err
		}
	}
	if err := waitCount(ctx, &moves, all*int64(b.Moves), 60*time.Second, "move notifications"); err != nil {
		return false, err
	}
	moveTime := time.Since(t0)
	var moveLat []time.Duration
	for _, u := range users {
		for i, at := range u.moves {
			if !at.IsZero() {
				moveLat = append(moveLat, at.Sub(sent[i]))
			}
		}
	}

	// stop with a countdown, then its end
	if err := settle(ctx, st, svc, e164); err != nil {
		return false, err
	}
	secs := uint32(b.Delay / time.Second)
	sentStop := time.Now()
	if err := host.c.Send(ctx, protocol.BreakoutRoomsStop{Type: protocol.BMSBreakoutRoomsStop, ConfID: e164, UserID: host.id, DelayTime: secs}); err != nil {
		return false, err
	}
	if err := waitCount(ctx, &notices, all, 30*time.Second, "countdown notifications"); err != nil {
		return false, err
	}
	noticeLat := since(sentStop, users, func(u *benchUser) time.Time { return u.notice })
	if err := waitCount(ctx, &finals, all, b.Delay+30*time.Second, "final notifications"); err != nil {
		return false, err
	}
	finalLat := since(sentStop.Add(time.Duration(secs)*time.Second), users, func(u *benchUser) time.Time { return u.final })

	startBytes := 0
	for _, u := range users {
		startBytes += u.startSize
	}
	mark := func(lat []time.Duration) string {
		if pct(lat, .99) <= 50*time.Millisecond {
			return "p99 within 50 ms"
		}
		return "p99 OVER 50 ms"
	}
	fmt.Fprintf(out, "  start            fan-out %s  %s  (%d notifications of %.1f KB, %s)\n",
		pcts(startLat), mark(startLat), len(startLat), float64(startBytes)/float64(max(1, len(users)))/1024, b.Notify)
	fmt.Fprintf(out, "  moves            fan-out %s  %s  (%d notifications; %d moves in %.2f s, %.0f/s)\n",
		pcts(moveLat), mark(moveLat), len(moveLat), b.Moves, moveTime.Seconds(), float64(b.Moves)/moveTime.Seconds())
	fmt.Fprintf(out, "  countdown        fan-out %s  %s\n", pcts(noticeLat), mark(noticeLat))
	fmt.Fprintf(out, "  end              fan-out %s  %s  (from the deadline)\n", pcts(finalLat), mark(finalLat))
	every := slices.Concat(startLat, moveLat, noticeLat, finalLat)
	fmt.Fprintf(out, "  all              %d notifications: p50 %s  p99 %s  %s\n", len(every), millis(pct(every, .5)), millis(pct(every, .99)), mark(every))
	if startBad != nil {
		fmt.Fprintf(out, "  check            FAILED: %s\n", startBad.Error())
		return false, nil
	}
	return b.check(ctx, out, st, svc, e164, users)
}

// checkStarts checks that every user of the compact form received what
// it needs to act: its own entry with its preset room, every room, the
// server's time and the state's version.
func (b *Breakout) checkStarts(users []*benchUser) error {
	if b.Notify != protocol.NotifyCompact {
		return nil
	}
	for i, u := range users {
		var n protocol.BreakoutRoomsStartCompactNotify
		if err := json.Unmarshal(u.startMsg, &n); err != nil {
			return fmt.Errorf("user %d: start notify not compact (%d bytes): %w", u.id, u.startSize, err)
		}
		preset := uint32(i%b.Rooms + 1)
		switch {
		case n.Form != protocol.NotifyCompact || n.Version <= 0 || n.Timestamp == 0:
			return fmt.Errorf("user %d: start notify of form %q, version %d, timestamp %d", u.id, n.Form, n.Version, n.Timestamp)
		case len(n.Rooms) != b.Rooms+1:
			return fmt.Errorf("user %d: start notify names %d rooms, not %d and the main room", u.id, len(n.Rooms), b.Rooms)
		case n.UserItem == nil || n.UserItem.UserID != u.id || n.UserItem.UserPresetRoomID != preset:
			return fmt.Errorf("user %d: start notify's own entry is %+v, not preset in room %d", u.id, n.UserItem, preset)
		}
	}
	return nil
}

// startBreakout runs a breakout-service instance beside the stack, on its
// own bus connection, behind an API server of its own on loopback.
func startBreakout(ctx context.Context, st *stack.Stack, log *slog.Logger) (*breakout.Service, string, func(), error) {
	b, err := st.Connect("breakout-bench")
	if err != nil {
		return nil, "", nil, err
	}
	svc, err := breakout.New(breakout.Options{}, breakout.Deps{Bus: b, Store: st.Store, Log: log})
	if err != nil {
		b.Close()
		return nil, "", nil, err
	}
	if err := svc.Start(ctx); err != nil {
		b.Close()
		return nil, "", nil, err
	}
	srv, err := api.New(api.Options{Tokens: map[string]string{Token: "bench"}, Platform: st.Config.Platform},
		api.Deps{Bus: b, Store: st.Store, Config: st.Config, Routes: svc.Routes()})
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	stop := func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Shutdown(c)
		_ = hs.Close()
		b.Close()
	}
	return svc, "http://" + ln.Addr().String(), stop, nil
}

// connect gets a ticket for every user and connects them, a few at a
// time; each user enters the conference (BMS_CONF_INFO_REQUEST answered).
func (b *Breakout) connect(ctx context.Context, base, e164 string) ([]*benchUser, error) {
	users := make([]*benchUser, b.Users)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.Users {
					return
				}
				u, err := b.connectOne(ctx, hc, base, e164, uint32(i+1))
				if err != nil {
					errOnce.Do(func() { first = err })
					return
				}
				users[i] = u
			}
		}()
	}
	wg.Wait()
	if first != nil {
		for _, u := range users {
			if u != nil {
				_ = u.c.CloseNow()
			}
		}
		return nil, first
	}
	return users, nil
}

func (b *Breakout) connectOne(ctx context.Context, hc *http.Client, base, e164 string, id uint32) (*benchUser, error) {
	role := "participant"
	if id == 1 {
		role = "host"
	}
	// A few speak; the others listen, as in a class.
	audio := uint32(protocol.AudioMuted)
	if id <= 8 {
		audio = protocol.AudioUnmuted
	}
	tr, err := breakout.IssueTicket(ctx, hc, base, Token, e164, breakout.TicketRequest{
		UserID: id, Role: role, ClientType: protocol.ClientPC, AudioState: audio,
	})
	if err != nil {
		return nil, err
	}
	path := tr.URL
	if b.Notify == protocol.NotifyCompact {
		path = breakout.CompactPath(path)
	}
	c, err := breakout.Dial(ctx, base, path)
	if err != nil {
		return nil, err
	}
	if err := c.Send(ctx, protocol.ConfInfoRequest{Type: protocol.BMSConfInfoRequest, ConfID: e164, UserID: id}); err != nil {
		_ = c.CloseNow()
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		m, err := c.Next(rctx)
		if err != nil {
			_ = c.CloseNow()
			return nil, fmt.Errorf("user %d: no answer to entering: %w", id, err)
		}
		if m.Type == protocol.BMSConfInfoNotify {
			return &benchUser{id: id, c: c}, nil
		}
	}
}

// listen records when a user receives each notification.
func (b *Breakout) listen(u *benchUser, moveOf map[uint32]int, heard []atomic.Int64, starts, moves, notices, finals *atomic.Int64) {
	// The start's plan in the seed's form is large: keep the head of
	// each message only, in one buffer a compact start fits in.
	buf := make([]byte, 4<<10+128*b.Rooms)
	for {
		m, err := u.c.NextInto(context.Background(), buf)
		if err != nil {
			return
		}
		switch m.Type {
		case protocol.BMSBreakoutRoomsStartNotify:
			u.start, u.startSize = m.At, m.Size
			if b.Notify == protocol.NotifyCompact {
				u.startMsg = bytes.Clone(m.Data)
			}
			starts.Add(1)
		case protocol.BMSSetUserBreakoutRoomNotify:
			id, ok := destUser(m.Data)
			if !ok || m.StatusCode != 0 {
				u.other.Add(1)
				continue
			}
			i, ok := moveOf[id]
			if !ok {
				continue
			}
			u.moves[i] = m.At
			heard[i].Add(1)
			moves.Add(1)
		case protocol.BMSBreakoutRoomsStopNotify:
			var n protocol.BreakoutRoomsStopNotify
			if json.Unmarshal(m.Data, &n) != nil {
				continue
			}
			if n.DelayTime > 0 {
				u.notice = m.At
				notices.Add(1)
			} else {
				u.final = m.At
				finals.Add(1)
			}
		default:
			// Side effects (speaker-limit mutes) say so in their status;
			// anything else with a status is a refusal.
			if m.Type == protocol.BMSErrorNotify || (m.StatusCode != 0 && m.StatusCode != protocol.BreakoutSpeakerLimit) {
				u.other.Add(1)
			}
		}
	}
}

var destPrefix = []byte(`"destItem":{"userId":`)

// destUser reads a move notify's user without decoding all of it.
func destUser(data []byte) (uint32, bool) {
	i := bytes.Index(data, destPrefix)
	if i < 0 {
		var n struct {
			DestItem struct {
				UserID uint32 `json:"userId"`
			} `json:"destItem"`
		}
		err := json.Unmarshal(data, &n)
		return n.DestItem.UserID, err == nil
	}
	var id uint32
	digits := 0
	for _, c := range data[i+len(destPrefix):] {
		if c < '0' || c > '9' || digits == 10 {
			break
		}
		id = id*10 + uint32(c-'0')
		digits++
	}
	return id, digits > 0
}

// settle waits until the media node holds the plan of the state as it is
// now, so that a phase is not measured while the node still digests the
// one before.
func settle(ctx context.Context, st *stack.Stack, svc *breakout.Service, e164 string) error {
	cf, err := st.Store.Conference(ctx, e164)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, p, err := svc.Snapshot(ctx, e164)
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.ID() != cf.Node {
				continue
			}
			a := n.AudioPlan(e164)
			if p.Check(breakout.Applied{Mixer: a.Mixer, CDTS: a.CDTS, CDTSSubscriptions: a.CDTSSubscriptions, MixerSubscriptions: a.MixerSubscriptions}) == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the media node did not catch up with the plan within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCount waits for a counter to reach n.
func waitCount(ctx context.Context, c *atomic.Int64, n int64, limit time.Duration, what string) error {
	deadline := time.Now().Add(limit)
	for c.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d %s within %s", c.Load(), n, what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func since(t0 time.Time, users []*benchUser, at func(*benchUser) time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(users))
	for _, u := range users {
		if a := at(u); !a.IsZero() {
			out = append(out, a.Sub(t0))
		}
	}
	return out
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func pcts(lat []time.Duration) string {
	return fmt.Sprintf("min %s  p50 %s  p99 %s  max %s", millis(pct(lat, 0)), millis(pct(lat, .50)), millis(pct(lat, .99)), millis(pct(lat, 1)))
}

func millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// check waits for the state to settle and checks it: the rooms closed,
// every user in the main room, nobody heard a refusal, and the media node
// holds the audio plan the state implies.
func (b *Breakout) check(ctx context.Context, out io.Writer, st *stack.Stack, svc *breakout.Service, e164 string, users []*benchUser) (bool, error) {
	var refusals int64
	for _, u := range users {
		refusals += u.other.Load()
	}
	cf, err := st.Store.Conference(ctx, e164)
	if err != nil {
		return false, err
	}
	var node interface {
		ID() string
	}
	var plan breakout.Applied
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, p, err := svc.Snapshot(ctx, e164)
		if err != nil {
			return false, err
		}
		last = nil
		inMain := 0
		for _, u := range state.Users {
			if u.Online() && u.Current == breakout.MainRoom {
				inMain++
			}
		}
		switch {
		case state.Meta.Active:
			last = errors.New("the rooms still run")
		case inMain != len(users):
			last = fmt.Errorf("%d of %d users in the main room", inMain, len(users))
		}
		for _, n := range st.Nodes {
			if n.ID() == cf.Node {
				node = n
				a := n.AudioPlan(e164)
				plan = breakout.Applied{Mixer: a.Mixer, CDTS: a.CDTS, CDTSSubscriptions: a.CDTSSubscriptions, MixerSubscriptions: a.MixerSubscriptions}
				if last == nil {
					last = p.Check(plan)
				}
				if last == nil {
					audio := 0
					for _, r := range n.Received() {
						if r.E164 == e164 && strings.HasPrefix(r.Type, "AUDIO_") {
							audio++
						}
					}
					fmt.Fprintf(out, "  node             %s received %d audio messages (changes merged while it was busy); it holds the plan of version %d\n", n.ID(), audio, state.Version)
				}
			}
		}
		if node == nil {
			last = fmt.Errorf("conference %s runs on %q, not a simulated node", e164, cf.Node)
		}
		if last == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last == nil && refusals > 0 {
		last = fmt.Errorf("users heard %d refusals", refusals)
	}
	if last != nil {
		fmt.Fprintf(out, "  check            FAILED: %s\n", last.Error())
		return false, nil
	}
	fmt.Fprintf(out, "  check            ok: rooms closed, %d users in the main room, the node follows the plan\n", len(users))
	return true, nil
}
