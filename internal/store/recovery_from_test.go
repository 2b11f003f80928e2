package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// The conferences of several lost nodes (a failed room's) move to one new
// node together, each checked against its own lost node.
func TestMoveRestoresFromSeveralNodes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 1000})
		a := runningOn(t, s, "n1", 0, 300)
		b := runningOn(t, s, "n3", 300, 300)
		if err := s.Update(ctx, b[5], "legacy", "1"); err != nil {
			t.Fatal(err)
		}
		var e164s, from []string
		for i := range a {
			e164s, from = append(e164s, a[i], b[i]), append(from, "n1", "n3")
		}

		e164s, from = append(e164s, a[0]), append(from, "n3")
		if _, err := s.MoveRestoresFrom(ctx, "room r1 failed", "n2", "r2", e164s, from[1:]); err == nil {
			t.Fatal("numbers and lost nodes of different lengths accepted")
		}
		starts, err := s.MoveRestoresFrom(ctx, "room r1 failed", "n2", "r2", e164s, from)
		if err != nil || len(starts) != len(e164s) {
			t.Fatalf("move: %d results for %d, %v", len(starts), len(e164s), err)
		}
		began := 0
		for i, st := range starts {
			switch {
			case e164s[i] == b[5]:
				if !errors.Is(st.Err, store.ErrLegacy) {
					t.Fatalf("legacy %s: %v", b[5], st.Err)
				}
			case i == len(e164s)-1:
				if !errors.Is(st.Err, store.ErrStateConflict) && !errors.Is(st.Err, store.ErrNodeMismatch) {
					t.Fatalf("%s moved again from the wrong node: %v", e164s[i], st.Err)
				}
			case st.Err != nil:
				t.Fatalf("%s from %s: %v", e164s[i], from[i], st.Err)
			default:
				if st.Prev != from[i] || st.Conf.Node != "n2" || st.Conf.State != protocol.StateCreating {
					t.Fatalf("%s from %s began as %+v, prev %s", e164s[i], from[i], st.Conf, st.Prev)
				}
				began++
			}
		}
		if began != 599 {
			t.Fatalf("%d began, want 599", began)
		}
		for node, want := range map[string]int{"n1": 0, "n3": 1, "n2": 599} {
			if got, err := s.NodeConferences(ctx, node); err != nil || len(got) != want {
				t.Fatalf("%s holds %d, want %d (%v)", node, len(got), want, err)
			}
		}
	})

}
