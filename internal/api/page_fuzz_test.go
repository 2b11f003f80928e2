package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/protocol"
)

// FuzzPageQuery: page_size and after of the conference lists. A refusal
// is a BAD_REQUEST naming the parameter; an accepted page is 1 to the
// largest size, after a number or empty.
func FuzzPageQuery(f *testing.F) {
	for _, q := range []string{
		"", "page_size=10", "page_size=10&after=6600001", "after=6600001", "after=", "page_size=0", "page_size=1001",
		"page_size=-5", "page_size=+5", "page_size=0x10", "page_size=%00", "after=abc", "after=%1b%5b2J",
		"after=" + strings.Repeat("9", 40), "page_size=1&page_size=2000", "after=12&after=6600001", "%zz",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := request(http.MethodGet, "/", nil)
		r.URL.RawQuery = raw
		q, paged, e := pageQuery(r)
		if e != nil {
			wantRefusal(t, []byte(raw), e)
			if !strings.Contains(e.Message, `"page_size"`) && !strings.Contains(e.Message, `"after"`) {
				t.Fatalf("%q: refusal %q names neither parameter", raw, e.Message)
			}
			return
		}
		if !paged {
			if v := r.URL.Query(); v.Has("page_size") || v.Get("after") != "" {
				t.Fatalf("%q: paging asked for and not done", raw)
			}
			return
		}
		if q.Size < 1 || q.Size > apiclient.MaxConferencePageSize {
			t.Fatalf("%q: accepted a page of %d", raw, q.Size)
		}
		if q.After != "" && !protocol.ValidE164(q.After) {
			t.Fatalf("%q: accepted after %q", raw, q.After)
		}
	})
}
