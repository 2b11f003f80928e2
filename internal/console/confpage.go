package console

import (
	"context"
	"sort"
	"strings"

	"github.com/convene/convene/internal/apiclient"
)

// The conferences page reads one page of a list from the API at a time
// (page_size and after), never the whole list: a page costs the API the
// page, whatever the number of conferences.

// pageSource reads the page of a list after a number.
type pageSource func(ctx context.Context, after string, size int) (apiclient.ConferencePage, error)

// platformSource is a platform's list in a state ("" every state).
func platformSource(api *apiclient.Client, platform, state string) pageSource {
	return func(ctx context.Context, after string, size int) (apiclient.ConferencePage, error) {
		return api.PlatformConferencePage(ctx, platform, state, apiclient.PageOptions{Size: size, After: after})
	}
}

// domainSource is a domain's list in a state ("" every state).
func domainSource(api *apiclient.Client, domain, state string) pageSource {
	return func(ctx context.Context, after string, size int) (apiclient.ConferencePage, error) {
		return api.DomainConferencePage(ctx, domain, apiclient.ListOptions{State: state}, apiclient.PageOptions{Size: size, After: after})
	}
}

// mergedSource is the lists of several sources as one list by number
// (a tenant's domains): each gives its page, the merge keeps the first
// size numbers, and a next page exists when any source has more.
func mergedSource(srcs []pageSource) pageSource {
	if len(srcs) == 1 {
		return srcs[0]
	}
	return func(ctx context.Context, after string, size int) (apiclient.ConferencePage, error) {
		var out apiclient.ConferencePage
		more := false
		for _, src := range srcs {
			p, err := src(ctx, after, size)
			if err != nil {
				return apiclient.ConferencePage{}, err
			}
			out.Conferences = append(out.Conferences, p.Conferences...)
			more = more || p.Next != ""
			if p.Counts != nil && out.Counts == nil {
				out.Counts = map[string]int{}
			}
			for st, n := range p.Counts {
				out.Counts[st] += n
			}
		}
		sort.Slice(out.Conferences, func(i, j int) bool { return out.Conferences[i].E164 < out.Conferences[j].E164 })
		if len(out.Conferences) > size {
			out.Conferences, more = out.Conferences[:size], true
		}
		if more && len(out.Conferences) > 0 {
			out.Next = out.Conferences[len(out.Conferences)-1].E164
		}
		return out, nil
	}
}

// nameBatch is the API page a name search reads at a time.
const nameBatch = apiclient.MaxConferencePageSize

// matching is src narrowed to the conferences whose name holds name (any
// case) or whose number starts with it. The API has no such filter: it
// reads the list a large page at a time until the page is full, so a
// search costs what it reads to fill one page.
func matching(src pageSource, name string) pageSource {
	lower := strings.ToLower(name)
	return func(ctx context.Context, after string, size int) (apiclient.ConferencePage, error) {
		var out apiclient.ConferencePage
		for {
			p, err := src(ctx, after, nameBatch)
			if err != nil {
				return apiclient.ConferencePage{}, err
			}
			for i, cf := range p.Conferences {
				if !strings.Contains(strings.ToLower(cf.Name), lower) && !strings.HasPrefix(cf.E164, name) {
					continue
				}
				if len(out.Conferences) == size {
					// One more match: a next page exists.
					out.Next = out.Conferences[size-1].E164
					return out, nil
				}
				out.Conferences = append(out.Conferences, p.Conferences[i])
			}
			if p.Next == "" {
				return out, nil
			}
			after = p.Next
		}
	}
}
