package store_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// hgetallCounter counts the conference records a client reads whole,
// alone or in pipelines.
type hgetallCounter struct{ n atomic.Int64 }

func (h *hgetallCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *hgetallCounter) count(cmd redis.Cmder) {
	if strings.EqualFold(cmd.Name(), "hgetall") {
		h.n.Add(1)
	}
}

func (h *hgetallCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *hgetallCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

// loadPages reserves n conferences in two domains; every third runs.
func loadPages(t *testing.T, s *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	publish(t, s, "acme", license.Limits{"8_720p": n})
	publish(t, s, "beta", license.Limits{"8_720p": n})
	for i := range n {
		dom := "acme"
		if i%2 == 1 {
			dom = "beta"
		}
		e164, err := s.Reserve(ctx, reservation(dom, ""))
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := s.Commit(ctx, store.Placement{E164: e164, Node: "n1", Room: "r1", RealPlatform: "p1"}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// numbers are the conferences' numbers, in order.
func numbers(confs []protocol.Conference) []string {
	out := make([]string, len(confs))
	for i := range confs {
		out[i] = confs[i].E164
	}
	return out
}

// walk reads every page and returns the numbers in the order the pages
// gave them.
func walk(t *testing.T, read func(q store.PageQuery) (store.ConferencePage, error), q store.PageQuery) []string {
	t.Helper()
	var got []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pages never end")
		}
		p, err := read(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Conferences) > q.Size {
			t.Fatalf("a page of %d holds %d conferences", q.Size, len(p.Conferences))
		}
		got = append(got, numbers(p.Conferences)...)
		if p.Next == "" {
			return got
		}
		if len(p.Conferences) == 0 || p.Next != p.Conferences[len(p.Conferences)-1].E164 {
			t.Fatalf("next %q is not the page's last number (%v)", p.Next, numbers(p.Conferences))
		}
		q.After = p.Next
	}
}

func TestConferencePages(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		loadPages(t, s, 40)
		all, err := s.AllConferences(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := func(keep func(*protocol.Conference) bool) []string {
			var out []string
			for i := range all {
				if keep(&all[i]) {
					out = append(out, all[i].E164)
				}
			}
			sort.Strings(out)
			return out
		}
		platform := func(q store.PageQuery) (store.ConferencePage, error) { return s.ConferencePage(ctx, q) }
		domain := func(q store.PageQuery) (store.ConferencePage, error) { return s.DomainConferencePage(ctx, "beta", q) }
		public := func(c *protocol.Conference) bool { return c.E164[len(c.E164)-1]%2 == 0 }
		for _, size := range []int{1, 3, 7, 40, 41, 1000} {
			for _, tc := range []struct {
				name string
				read func(store.PageQuery) (store.ConferencePage, error)
				q    store.PageQuery
				keep func(*protocol.Conference) bool
			}{
				{"platform", platform, store.PageQuery{}, func(*protocol.Conference) bool { return true }},
				{"platform running", platform, store.PageQuery{State: protocol.StateRunning},
					func(c *protocol.Conference) bool { return c.State == protocol.StateRunning }},
				{"platform creating", platform, store.PageQuery{State: protocol.StateCreating},
					func(c *protocol.Conference) bool { return c.State == protocol.StateCreating }},
				{"platform pending-restore", platform, store.PageQuery{State: protocol.StatePendingRestore},
					func(c *protocol.Conference) bool { return false }},
				{"platform kept", platform, store.PageQuery{Keep: public}, public},
				{"domain", domain, store.PageQuery{}, func(c *protocol.Conference) bool { return c.Domain == "beta" }},
				{"domain running kept", domain, store.PageQuery{State: protocol.StateRunning, Keep: public},
					func(c *protocol.Conference) bool {
						return c.Domain == "beta" && c.State == protocol.StateRunning && public(c)
					}},
			} {
				t.Run(fmt.Sprintf("%s by %d", tc.name, size), func(t *testing.T) {
					q := tc.q
					q.Size = size
					got := walk(t, tc.read, q)
					if w := want(tc.keep); !slices.Equal(got, w) {
						t.Fatalf("pages gave %v,\nwant %v", got, w)
					}
				})
			}
		}
		t.Run("counts", func(t *testing.T) {
			wantCounts := func(domain string) map[string]int {
				m := map[string]int{protocol.StateRunning: 0, protocol.StateCreating: 0, protocol.StatePendingRestore: 0}
				for i := range all {
					if domain == "" || all[i].Domain == domain {
						m[all[i].State]++
					}
				}
				return m
			}
			p, err := s.ConferencePage(ctx, store.PageQuery{Size: 1, State: protocol.StateRunning})
			if w := wantCounts(""); err != nil || !maps.Equal(p.Counts, w) {
				t.Fatalf("platform counts %v, %v; want %v", p.Counts, err, w)
			}
			p, err = s.DomainConferencePage(ctx, "beta", store.PageQuery{Size: 1})
			if w := wantCounts("beta"); err != nil || !maps.Equal(p.Counts, w) {
				t.Fatalf("domain counts %v, %v; want %v", p.Counts, err, w)
			}
		})
		t.Run("after the last number", func(t *testing.T) {
			last := want(func(*protocol.Conference) bool { return true })[len(all)-1]
			for _, after := range []string{last, last + "0", "99999999"} {
				p, err := s.ConferencePage(ctx, store.PageQuery{After: after, Size: 5})
				if err != nil || len(p.Conferences) != 0 || p.Next != "" {
					t.Fatalf("after %s: %v, next %q, %v; want an empty last page", after, numbers(p.Conferences), p.Next, err)
				}
			}
		})
		t.Run("after a number no conference has", func(t *testing.T) {
			w := want(func(*protocol.Conference) bool { return true })
			p, err := s.ConferencePage(ctx, store.PageQuery{After: w[2] + "5", Size: 2})
			if err != nil || !slices.Equal(numbers(p.Conferences), w[3:5]) {
				t.Fatalf("after %s5: %v, %v; want %v", w[2], numbers(p.Conferences), err, w[3:5])
			}
		})
		t.Run("a page reads the page, not the store", func(t *testing.T) {
			h := &hgetallCounter{}
			s.Client().AddHook(h)
			p, err := s.ConferencePage(ctx, store.PageQuery{Size: 3})
			if err != nil || len(p.Conferences) != 3 {
				t.Fatalf("page: %v, %v", numbers(p.Conferences), err)
			}
			// The page and the one after it, which says a next page exists.
			if n := h.n.Load(); n != 4 {
				t.Fatalf("a page of 3 of %d conferences read %d records, want 4", len(all), n)
			}
		})
	})
}
