package cdr

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Recorder is the SIP edge's write path: the generator drives it as the
// edge does, so generated calls go where real ones go (records, live
// calls, roll-ups, the change feed).
type Recorder interface {
	CallStarted(ctx context.Context, e CallEvent) error
	CallAnswered(ctx context.Context, e CallEvent) error
	CallEnded(ctx context.Context, e CallEvent) error
}

// GenerateOptions shape generated calls.
type GenerateOptions struct {
	Count int    // calls to write
	Days  int    // spread over the last Days days up to Now (at least 1)
	Seed  uint64 // the same seed plans the same calls
	Now   time.Time
	// Location is the time zone of the business hours calls cluster in
	// (default UTC).
	Location    *time.Location
	Platform    string   // default "demo"
	Nodes       []string // the SIP nodes that carry them (default sip-a, sip-b)
	Concurrency int      // calls written at once (default 2048)
	// Progress, when set, is called (from any goroutine) after every
	// 10,000 calls written, with the number written so far.
	Progress func(done int)
}

func (o GenerateOptions) withDefaults() GenerateOptions {
	if o.Days < 1 {
		o.Days = 1
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Platform == "" {
		o.Platform = "demo"
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"sip-a", "sip-b"}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2048
	}
	return o
}

// GenerateSummary says what Generate wrote.
type GenerateSummary struct {
	Calls, Voice, Video, Connected, Conference int
	Elapsed                                    time.Duration
}

// hourWeight is how busy each hour of a working day is (a bank's
// branches: mornings and afternoons, a lunch dip, quiet nights).
var hourWeight = [24]float64{.03, .02, .02, .02, .02, .04, .1, .3, .7, 1, 1, .95, .6, .7, 1, 1, .95, .8, .45, .25, .18, .12, .08, .05}

// PlanCall is the i-th call of a generation: the whole call as its end
// reports it (start, answer, end, status, ...). It depends only on the
// options (Count and Concurrency aside) and i, so a test can plan the
// same calls to compute what the records must say.
//
// The mix: 12% of calls dial a conference (6600001-6600040; 70% video,
// 95% answered, about 25 minutes), the rest an extension of another
// branch (8001001-8012200, popular extensions more often; 25% video, 80%
// answered, a median of 2.5 minutes, long-tailed); 8% come from mobile
// numbers. Unanswered calls end busy (486), cancelled (487), unanswered
// (480), unknown (404) or declined (603) after a ring time to match.
// Starts follow the business hours of Location, quieter at weekends.
func PlanCall(o GenerateOptions, i int) CallEvent {
	o = o.withDefaults()
	r := rand.New(rand.NewPCG(o.Seed, uint64(i)*0x9e3779b97f4a7c15+1))
	window := time.Duration(o.Days) * 24 * time.Hour
	var start time.Time
	for try := 0; ; try++ {
		start = o.Now.Add(-window + time.Duration(r.Int64N(int64(window))))
		l := start.In(o.Location)
		w := hourWeight[l.Hour()]
		if l.Weekday() == time.Saturday || l.Weekday() == time.Sunday {
			w *= .3
		}
		if try == 64 || r.Float64() < w {
			break
		}
	}
	node := o.Nodes[r.IntN(len(o.Nodes))]
	e := CallEvent{
		CallID:   fmt.Sprintf("%016x-%d-%d@%s", r.Uint64(), o.Seed, i, node),
		FromTag:  fmt.Sprintf("%08x", r.Uint32()),
		ToTag:    fmt.Sprintf("%08x", r.Uint32()),
		Caller:   extension(r),
		Type:     Voice,
		Node:     node,
		Platform: o.Platform,
		Start:    start.Truncate(time.Millisecond),
	}
	if r.Float64() < .08 {
		e.Caller = fmt.Sprintf("13%09d", r.IntN(1e9))
	}
	var (
		answered bool
		median   float64 // seconds
		sigma    float64
		limit    float64
	)
	if r.Float64() < .12 {
		e.Called = fmt.Sprintf("66%05d", 1+r.IntN(40))
		e.E164 = e.Called
		if r.Float64() < .7 {
			e.Type = Video
		}
		answered, median, sigma, limit = r.Float64() < .95, 1500, .6, 4*3600
	} else {
		for e.Called = extension(r); e.Called == e.Caller; e.Called = extension(r) {
		}
		if r.Float64() < .25 {
			e.Type = Video
		}
		answered, median, sigma, limit = r.Float64() < .8, 150, 1, 2*3600
	}
	seconds := func(lo, hi float64) time.Duration {
		return time.Duration((lo + r.Float64()*(hi-lo)) * float64(time.Second)).Truncate(time.Millisecond)
	}
	if answered {
		e.Answer = e.Start.Add(seconds(1.5, 12))
		d := math.Min(limit, median*math.Exp(sigma*r.NormFloat64()))
		e.End = e.Answer.Add(time.Duration(d * float64(time.Second)).Truncate(time.Millisecond))
		e.Status, e.Connected = 200, true
	} else {
		switch p := r.Float64(); {
		case p < .35:
			e.Status, e.End = 486, e.Start.Add(seconds(.2, 2))
		case p < .65:
			e.Status, e.End = 487, e.Start.Add(seconds(3, 40))
		case p < .85:
			e.Status, e.End = 480, e.Start.Add(seconds(20, 60))
		case p < .95:
			e.Status, e.End = 404, e.Start.Add(seconds(.05, .5))
		default:
			e.Status, e.End = 603, e.Start.Add(seconds(2, 15))
		}
	}
	if late := e.End.Sub(o.Now); late >= 0 { // it must have ended by now
		shift := late + time.Second
		e.Start, e.End = e.Start.Add(-shift), e.End.Add(-shift)
		if !e.Answer.IsZero() {
			e.Answer = e.Answer.Add(-shift)
		}
	}
	return e
}

// extension is a number of the number plan: branch 8001 to 8012, then an
// extension 001 to 200, the low ones (desks that call most) more often.
func extension(r *rand.Rand) string {
	ext := int(math.Pow(r.Float64(), 2)*200) + 1
	return fmt.Sprintf("80%02d%03d", 1+r.IntN(12), ext)
}

// Steps are the events the SIP edge reports for a planned call: start,
// answer (when answered) and end.
func Steps(e CallEvent) (started, answered, ended CallEvent, wasAnswered bool) {
	started = e
	started.ToTag, started.Answer, started.End, started.Status, started.Connected = "", time.Time{}, time.Time{}, 0, false
	answered = e
	answered.End, answered.Status = time.Time{}, 0
	return started, answered, e, !e.Answer.IsZero()
}

// Generate writes o.Count planned calls (PlanCall) through rec, each as
// the SIP edge reports one: started, answered when it was, ended;
// Concurrency calls at a time, so that the recorder's transactions take
// many at once. It stops at the first error.
func Generate(ctx context.Context, rec Recorder, o GenerateOptions) (GenerateSummary, error) {
	o = o.withDefaults()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	began := time.Now()
	var (
		next, done                        atomic.Int64
		voice, video, connected, confCall atomic.Int64
		wg                                sync.WaitGroup
	)
	for range min(o.Concurrency, max(o.Count, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.Count || ctx.Err() != nil {
					return
				}
				e := PlanCall(o, i)
				started, answered, ended, wasAnswered := Steps(e)
				err := rec.CallStarted(ctx, started)
				if err == nil && wasAnswered {
					err = rec.CallAnswered(ctx, answered)
				}
				if err == nil {
					err = rec.CallEnded(ctx, ended)
				}
				if err != nil {
					cancel(fmt.Errorf("cdr: generate call %d: %w", i, err))
					return
				}
				if e.Type == Video {
					video.Add(1)
				} else {
					voice.Add(1)
				}
				if e.Connected {
					connected.Add(1)
				}
				if e.E164 != "" {
					confCall.Add(1)
				}
				if n := done.Add(1); o.Progress != nil && n%10000 == 0 {
					o.Progress(int(n))
				}
			}
		})
	}
	wg.Wait()
	sum := GenerateSummary{Calls: int(done.Load()), Voice: int(voice.Load()), Video: int(video.Load()),
		Connected: int(connected.Load()), Conference: int(confCall.Load()), Elapsed: time.Since(began)}
	if err := context.Cause(ctx); err != nil {
		return sum, err
	}
	return sum, nil
}
