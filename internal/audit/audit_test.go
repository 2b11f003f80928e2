package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// platform builds a store with three running conferences on n1 and n2.
func platform(t *testing.T) *store.Store {
	t.Helper()
	s := testkit.Store(t, testkit.Embedded)
	ctx := context.Background()
	if _, err := s.PublishDomain(ctx, store.DomainInfo{Moid: "acme", Used: true}, license.Limits{"8_720p": 10}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ e164, node string }{{"101", "n1"}, {"102", "n1"}, {"103", "n2"}} {
		r := store.Reservation{
			Conf: protocol.Conference{E164: c.e164, Name: "x", Domain: "acme", Platform: "p1", RealPlatform: "p1",
				Scale: 8, Resolution: "720p", DurationMinutes: 60, EndTime: time.Now().Add(time.Hour).UnixMilli()},
			Class: license.Class{Scale: 8, Resolution: "720p"}, Numbering: store.Numbering{Platform: "p1", Segment: "1", Digits: 3},
		}
		if _, err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, store.Placement{E164: c.e164, Node: c.node, RealPlatform: "p1"}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func healthy() audit.Input {
	return audit.Input{
		Platform: "p1", Domains: []string{"acme"},
		Live:   map[string]bool{"n1": true, "n2": true},
		Hosted: map[string][]string{"n1": {"101", "102"}, "n2": {"103"}},
	}
}

func TestAuditHoldsOnAHealthyPlatform(t *testing.T) {
	r, err := audit.Check(context.Background(), platform(t), healthy())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Running != 3 || r.Conferences != 3 {
		t.Fatalf("report = %s", r)
	}
}

func TestAuditFindsEachViolation(t *testing.T) {
	tests := []struct {
		name   string
		breakf func(t *testing.T, s *store.Store, in *audit.Input)
		want   string
	}{
		{"running on a dead node", func(_ *testing.T, _ *store.Store, in *audit.Input) { in.Live["n2"] = false }, "not a live node"},
		{"its node does not host it", func(_ *testing.T, _ *store.Store, in *audit.Input) { in.Hosted["n1"] = []string{"101"} }, "which does not host it"},
		{"hosted twice", func(_ *testing.T, _ *store.Store, in *audit.Input) {
			in.Hosted["n2"] = append(in.Hosted["n2"], "101")
		}, "hosted by 2 nodes"},
		{"a node hosts an unknown conference", func(_ *testing.T, _ *store.Store, in *audit.Input) {
			in.Hosted["n2"] = append(in.Hosted["n2"], "999")
		}, "which the store does not know"},
		{"licence count off", func(t *testing.T, s *store.Store, _ *audit.Input) {
			if err := s.Client().HIncrBy(context.Background(), "domain/acme/license", "8_720p_confnum", 1).Err(); err != nil {
				t.Fatal(err)
			}
		}, "counts 4 conferences of class 8_720p; 3 exist"},
		{"domain list off", func(t *testing.T, s *store.Store, _ *audit.Input) {
			if err := s.Client().HSet(context.Background(), "domain/acme/confs", "103", "creating").Err(); err != nil {
				t.Fatal(err)
			}
		}, "lists 103 as creating; it is running"},
		{"pending without a reason", func(t *testing.T, s *store.Store, _ *audit.Input) {
			if err := s.PendOne(context.Background(), "103", "n2", ""); err != nil {
				t.Fatal(err)
			}
		}, "pending-restore without a reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := platform(t)
			in := healthy()
			tt.breakf(t, s, &in)
			r, err := audit.Check(context.Background(), s, in)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() || !strings.Contains(strings.Join(r.Violations, "\n"), tt.want) {
				t.Fatalf("violations %v; want one saying %q", r.Violations, tt.want)
			}
		})
	}
}
