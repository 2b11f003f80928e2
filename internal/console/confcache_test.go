package console

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

func TestConfCache(t *testing.T) {
	c := newConfCache(10 * time.Second)
	var reads atomic.Int64
	fetch := func(context.Context) ([]apiclient.Conference, error) {
		n := reads.Add(1)
		return []apiclient.Conference{{E164: strconv.FormatInt(n, 10)}}, nil
	}
	get := func(stale bool) string {
		t.Helper()
		confs, err := c.get(context.Background(), "p1", stale, fetch)
		if err != nil || len(confs) != 1 {
			t.Fatalf("get: %v %v", confs, err)
		}
		return confs[0].E164
	}
	if got := get(true); got != "1" {
		t.Fatalf("the first list is read: got read %s", got)
	}
	if got := get(false); got != "1" || reads.Load() != 1 {
		t.Fatalf("a fresh list is kept: got read %s after %d reads", got, reads.Load())
	}
	// A change the stream reported: a page drawn from scratch may show
	// the list of before while a new one is read; a live part waits for it.
	c.changed(false)
	if got := get(true); got != "1" {
		t.Fatalf("a page after a change: read %s, want the stale list 1", got)
	}
	if got := get(false); got != "2" {
		t.Fatalf("a live part after a change: read %s, want a list read after it (2)", got)
	}
	// A change made from the console: nobody sees the list of before.
	c.changed(true)
	if got := get(true); got != "3" {
		t.Fatalf("a page after an action: read %s, want a list read after it (3)", got)
	}
}

func TestConfCacheWarm(t *testing.T) {
	c := newConfCache(10 * time.Second)
	var reads atomic.Int64
	release := make(chan struct{})
	fetch := func(context.Context) ([]apiclient.Conference, error) {
		n := reads.Add(1)
		<-release
		return []apiclient.Conference{{E164: strconv.FormatInt(n, 10)}}, nil
	}
	ctx := context.Background()
	c.warm(ctx, "p1", fetch)
	c.warm(ctx, "p1", fetch) // a read is under way: no second one
	close(release)
	confs, err := c.get(ctx, "p1", true, fetch)
	if err != nil || len(confs) != 1 || confs[0].E164 != "1" || reads.Load() != 1 {
		t.Fatalf("after warming: %v %v with %d reads; want the warmed list 1, read once", confs, err, reads.Load())
	}
	c.warm(ctx, "p1", fetch) // a list of the last minute is kept
	c.changed(false)
	c.warm(ctx, "p1", fetch) // stale, but still shown to a page drawn from scratch
	if n := reads.Load(); n != 1 {
		t.Fatalf("warming a kept list read it again (%d reads)", n)
	}
	c.changed(true)
	c.warm(ctx, "p1", fetch) // not to be shown: read again
	if _, err := c.get(ctx, "p1", false, fetch); err != nil || reads.Load() != 2 {
		t.Fatalf("after an action: %v with %d reads, want 2", err, reads.Load())
	}
}
