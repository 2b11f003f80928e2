package console_test

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/convene/convene/internal/apiclient"
)

var (
	rowRe  = regexp.MustCompile(`<tr data-e164="(\d+)"`)
	nextRe = regexp.MustCompile(`<a href="([^"]*)" rel="next" id="next-page">`)
)

// listed reads a conferences page as a browser without scripts does:
// its rows, and the address of the next page ("" on the last).
func listed(t *testing.T, b *browser, path string) (rows []string, next, body string) {
	t.Helper()
	resp, body := b.get(path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", path, resp.StatusCode, body)
	}
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		rows = append(rows, m[1])
	}
	if m := nextRe.FindStringSubmatch(body); m != nil {
		next = html.UnescapeString(m[1])
	}
	return rows, next, body
}

// walkConferences follows the next links from path and returns every row.
func walkConferences(t *testing.T, b *browser, path string) (rows []string, pages int) {
	t.Helper()
	for path != "" {
		if pages++; pages > 20 {
			t.Fatal("the next links never end")
		}
		r, next, body := listed(t, b, path)
		if len(r) > 50 {
			t.Fatalf("GET %s: %d rows, want a page of at most 50", path, len(r))
		}
		if pages > 1 && !strings.Contains(body, `rel="first"`) {
			t.Fatalf("GET %s: no link to the first page", path)
		}
		rows = append(rows, r...)
		path = next
	}
	return rows, pages
}

func TestConferencesPaged(t *testing.T) {
	p := startPlatform(t, platformOptions{})
	const mine = 57
	var (
		mu     sync.Mutex
		acme   []string
		needle []string
	)
	create := func(name, domain string) {
		c, err := p.api.CreateConference(context.Background(), apiclient.CreateConferenceRequest{
			Name: name, Domain: domain, Scale: 8, Resolution: "720p", DurationMinutes: 60})
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if domain == "acme" {
			acme = append(acme, c.E164)
		} else {
			needle = append(needle, c.E164)
		}
	}
	var wg sync.WaitGroup
	work := make(chan [2]string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range work {
				create(w[0], w[1])
			}
		}()
	}
	for range mine {
		work <- [2]string{"weekly", "acme"}
	}
	for range 3 {
		work <- [2]string{"Needle in the stack", "other"}
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	sort.Strings(acme)
	sort.Strings(needle)
	all := slices.Sorted(slices.Values(append(slices.Clone(acme), needle...)))

	op := p.browser()
	op.login(opToken)

	t.Run("the first page, then the next link to the rest", func(t *testing.T) {
		rows, next, body := listed(t, op, "/conferences")
		if !slices.Equal(rows, all[:50]) {
			t.Fatalf("the first page shows %v, want the first 50 numbers %v", rows, all[:50])
		}
		if next == "" || !strings.Contains(next, "after="+all[49]) {
			t.Fatalf("the first page's next link is %q, want one after %s", next, all[49])
		}
		if !strings.Contains(body, "60 conferences") || strings.Contains(body, `rel="first"`) {
			t.Fatal("the first page does not count 60 conferences, or links to itself as the first page")
		}
		got, pages := walkConferences(t, op, "/conferences")
		if !slices.Equal(got, all) || pages != 2 {
			t.Fatalf("%d pages gave %v, want 2 pages of %v", pages, got, all)
		}
	})

	t.Run("filters hold across pages", func(t *testing.T) {
		if got, _ := walkConferences(t, op, "/conferences?state=running"); !slices.Equal(got, all) {
			t.Fatalf("running: %v, want %v", got, all)
		}
		if got, _ := walkConferences(t, op, "/conferences?state=creating"); len(got) != 0 {
			t.Fatalf("creating: %v, want none", got)
		}
		if got, _ := walkConferences(t, op, "/conferences?domain=acme"); !slices.Equal(got, acme) {
			t.Fatalf("domain acme: %v, want %v", got, acme)
		}
		if got, _ := walkConferences(t, op, "/conferences?name=needle"); !slices.Equal(got, needle) {
			t.Fatalf("name needle: %v, want %v", got, needle)
		}
	})

	t.Run("a tenant pages through its own domain", func(t *testing.T) {
		tn := p.browser()
		tn.login(tnToken)
		if got, _ := walkConferences(t, tn, "/conferences"); !slices.Equal(got, acme) {
			t.Fatalf("the tenant's pages: %v, want %v", got, acme)
		}
	})

	t.Run("a page after the last number is empty and says so", func(t *testing.T) {
		rows, next, body := listed(t, op, "/conferences?after="+all[len(all)-1])
		if len(rows) != 0 || next != "" || !strings.Contains(body, "No conference matches.") {
			t.Fatalf("after the last: rows %v, next %q", rows, next)
		}
	})

	t.Run("a bad cursor shows the API's refusal", func(t *testing.T) {
		_, _, body := listed(t, op, "/conferences?after=nonsense")
		if !strings.Contains(body, "BAD_REQUEST") || !strings.Contains(body, "after") {
			t.Fatalf("a bad cursor: %.2000s", body)
		}
	})
}
