package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// loadConferences writes n conferences of acme, every third still
// creating and every fourth public, and returns their numbers.
func (h *harness) loadConferences(n int) []string {
	h.t.Helper()
	if err := h.store.SetLicenseLimits(context.Background(), "acme", license.Limits{"8_720p": n}); err != nil {
		h.t.Fatal(err)
	}
	out := make([]string, 0, n)
	for i := range n {
		node := "node-1"
		if i%3 == 0 {
			node = ""
		}
		c := h.conference(protocol.Conference{Public: i%4 == 0}, node)
		out = append(out, c.E164)
	}
	return out
}

// listNumbers are the numbers of a list, in its order.
func listNumbers(cs []apiclient.Conference) []string {
	out := make([]string, len(cs))
	for i := range cs {
		out[i] = cs[i].E164
	}
	return out
}

// walkPages reads every page of path (a list route with its filters) and
// returns the numbers in the order the pages gave them.
func (h *harness) walkPages(path string, size int) []string {
	h.t.Helper()
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 500 {
			h.t.Fatalf("%s: pages never end", path)
		}
		q := url.Values{"page_size": {strconv.Itoa(size)}}
		if after != "" {
			q.Set("after", after)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		status, body := h.do(http.MethodGet, path+sep+q.Encode(), "")
		if status != http.StatusOK {
			h.t.Fatalf("%s after %q: %d %s", path, after, status, body)
		}
		p := decodeBody[apiclient.ConferencePage](h.t, body)
		if p.Conferences == nil {
			h.t.Fatalf("%s: conferences is null, want a list: %s", path, body)
		}
		if len(p.Conferences) > size {
			h.t.Fatalf("%s: a page of %d holds %d", path, size, len(p.Conferences))
		}
		got = append(got, listNumbers(p.Conferences)...)
		if p.Next == "" {
			return got
		}
		if p.Next != p.Conferences[len(p.Conferences)-1].E164 {
			h.t.Fatalf("%s: next %q is not the page's last number", path, p.Next)
		}
		after = p.Next
	}
}

func TestConferenceListPages(t *testing.T) {
	h := newHarness(t)
	const n = 23
	h.loadConferences(n)
	whole := func(path string) []string {
		t.Helper()
		status, body := h.do(http.MethodGet, path, "")
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		return listNumbers(decodeBody[apiclient.ConferenceList](t, body).Conferences)
	}
	lists := []string{
		"/v1/platforms/plat-a/conferences",
		"/v1/platforms/plat-a/conferences?state=running",
		"/v1/platforms/plat-a/conferences?state=creating",
		"/v1/platforms/plat-a/conferences?state=pending-restore",
		"/v1/domains/acme/conferences",
		"/v1/domains/acme/conferences?state=creating",
		"/v1/domains/acme/conferences?public_only=true",
		"/v1/domains/acme/conferences?public_only=true&state=running",
		"/v1/domains/empty/conferences",
	}
	for _, path := range lists {
		want := whole(path)
		if !slices.IsSorted(want) {
			t.Fatalf("%s: the whole list is not in order: %v", path, want)
		}
		for _, size := range []int{1, 2, 5, n, n + 1, 1000} {
			t.Run(path+" by "+strconv.Itoa(size), func(t *testing.T) {
				got := h.walkPages(path, size)
				if !slices.Equal(got, want) {
					t.Fatalf("pages gave %v,\nthe whole list %v", got, want)
				}
			})
		}
	}
	if all := whole(lists[0]); len(all) != n {
		t.Fatalf("the platform lists %d conferences, want %d", len(all), n)
	}

	t.Run("without page_size the answer is the whole list, as before", func(t *testing.T) {
		_, body := h.do(http.MethodGet, "/v1/platforms/plat-a/conferences", "")
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["next"]; ok || len(m) != 1 {
			t.Fatalf("the whole list's keys are %v, want conferences alone", m)
		}
	})

	t.Run("counts of the whole list", func(t *testing.T) {
		want := map[string]int{"running": 15, "creating": 8, "pending-restore": 0}
		for _, path := range []string{"/v1/platforms/plat-a/conferences?page_size=1&state=creating", "/v1/domains/acme/conferences?page_size=1&public_only=true"} {
			_, body := h.do(http.MethodGet, path, "")
			if p := decodeBody[apiclient.ConferencePage](t, body); !maps.Equal(p.Counts, want) {
				t.Fatalf("%s: counts %v, want %v", path, p.Counts, want)
			}
		}
	})

	t.Run("after the end", func(t *testing.T) {
		all := whole(lists[0])
		for _, after := range []string{all[len(all)-1], "99999999999"} {
			status, body := h.do(http.MethodGet, "/v1/platforms/plat-a/conferences?page_size=5&after="+after, "")
			p := decodeBody[apiclient.ConferencePage](t, body)
			if status != http.StatusOK || p.Conferences == nil || len(p.Conferences) != 0 || p.Next != "" {
				t.Fatalf("after %s: %d %s; want 200 and an empty last page", after, status, body)
			}
		}
	})

	t.Run("after alone pages by the default size", func(t *testing.T) {
		all := whole(lists[0])
		p, err := h.client.PlatformConferencePage(context.Background(), "plat-a", "", apiclient.PageOptions{Size: 2, After: all[0]})
		if err != nil || !slices.Equal(listNumbers(p.Conferences), all[1:3]) || p.Next != all[2] {
			t.Fatalf("client page after %s: %v next %q, %v; want %v", all[0], listNumbers(p.Conferences), p.Next, err, all[1:3])
		}
		status, body := h.do(http.MethodGet, "/v1/platforms/plat-a/conferences?after="+all[0], "")
		got := decodeBody[apiclient.ConferencePage](t, body)
		if status != http.StatusOK || !slices.Equal(listNumbers(got.Conferences), all[1:]) || got.Next != "" {
			t.Fatalf("after alone: %d %s", status, body)
		}
	})

	t.Run("unknown domain and platform", func(t *testing.T) {
		status, body := h.do(http.MethodGet, "/v1/domains/nosuch/conferences?page_size=5", "")
		wantError(t, status, body, http.StatusNotFound, "DOMAIN_NOT_FOUND", "nosuch")
		status, body = h.do(http.MethodGet, "/v1/platforms/nosuch/conferences?page_size=5", "")
		wantError(t, status, body, http.StatusNotFound, "NOT_FOUND", "nosuch")
	})
}

func TestConferencePageParams(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		query string
		param string // "" when the query is accepted
	}{
		{"page_size=1", ""},
		{"page_size=1000", ""},
		{"page_size=7&after=6600001", ""},
		{"after=", ""},
		{"page_size=5&after=", ""},
		{"page_size=0", "page_size"},
		{"page_size=1001", "page_size"},
		{"page_size=-1", "page_size"},
		{"page_size=abc", "page_size"},
		{"page_size=", "page_size"},
		{"page_size=1e3", "page_size"},
		{"page_size=99999999999999999999999", "page_size"},
		{"page_size=5&after=abc", "after"},
		{"page_size=5&after=12", "after"},
		{"after=" + strings.Repeat("1", 33), "after"},
		{"after=6600001%00", "after"},
		{"after=%2B6600001", "after"},
	} {
		for _, route := range []string{"/v1/platforms/plat-a/conferences", "/v1/domains/acme/conferences"} {
			t.Run(route+"?"+tc.query, func(t *testing.T) {
				status, body := h.do(http.MethodGet, route+"?"+tc.query, "")
				if tc.param == "" {
					if status != http.StatusOK {
						t.Fatalf("%d %s, want 200", status, body)
					}
					return
				}
				wantError(t, status, body, http.StatusBadRequest, "BAD_REQUEST", `query parameter "`+tc.param+`"`)
			})
		}
	}
}
