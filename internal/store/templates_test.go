package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// A number belongs to one conference or one template: creates racing for
// a template's number get it once, a template cannot take a conference's
// number nor a conference a template's, and a given number must be of
// the platform's segment.
func TestTemplateNumbersAreUnique(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 5})
		tpl := func(e164, name string) protocol.Template {
			return protocol.Template{E164: e164, Name: name, Domain: "acme", Scale: 8, Resolution: "720p", CreateTime: 100}
		}

		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			won  []string
			lost int
		)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("creator %d", i)
				_, err := s.CreateTemplate(ctx, tpl("6600500", name), numbering)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, name)
				case errors.Is(err, store.ErrE164InUse):
					lost++
				default:
					t.Errorf("create: %v", err)
				}
			}()
		}
		wg.Wait()
		if len(won) != 1 || lost != 7 {
			t.Fatalf("%d creates of one number succeeded (%v), %d were refused", len(won), won, lost)
		}
		if got, _ := s.Template(ctx, "6600500"); got.Name != won[0] {
			t.Fatalf("the template is %q's, and %q was told it won", got.Name, won[0])
		}

		if _, err := s.Reserve(ctx, reservation("acme", "6600500")); !errors.Is(err, store.ErrE164InUse) {
			t.Fatalf("a conference on a template's number: %v", err)
		}
		if u, _ := s.License(ctx, "acme"); u.InUse["8_720p"] != 0 {
			t.Fatalf("the refused conference was counted: %v", u.InUse)
		}
		if _, err := s.Reserve(ctx, reservation("acme", "6600501")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTemplate(ctx, tpl("6600501", "x"), numbering); !errors.Is(err, store.ErrE164InUse) {
			t.Fatalf("a template on a conference's number: %v", err)
		}
		if _, err := s.PutTemplate(ctx, tpl("6600501", "x"), numbering); !errors.Is(err, store.ErrE164InUse) {
			t.Fatalf("a template put on a conference's number: %v", err)
		}

		for _, e164 := range []string{"7700502", "66005", "660050200"} {
			var se *store.SegmentError
			_, err := s.CreateTemplate(ctx, tpl(e164, "x"), numbering)
			if !errors.As(err, &se) || !errors.Is(err, store.ErrE164OutOfSegment) || se.Segment != "66" || se.Digits != 5 || se.E164 != e164 {
				t.Fatalf("template %s outside segment 66 + 5 digits: %v", e164, err)
			}
		}
		if _, err := s.CreateTemplate(ctx, tpl("7700502", "x"), store.Numbering{Platform: "p1"}); err != nil {
			t.Fatalf("a number with no segment configured: %v", err)
		}

		upd := tpl("6600500", "renamed")
		upd.CreateTime = 999
		got, err := s.UpdateTemplate(ctx, upd)
		if err != nil || got.E164 != "6600500" || got.CreateTime != 100 {
			t.Fatalf("UpdateTemplate = %+v, %v", got, err)
		}
		if stored, _ := s.Template(ctx, "6600500"); stored.Name != "renamed" || stored.CreateTime != 100 {
			t.Fatalf("updated template %+v", stored)
		}
		if _, err := s.UpdateTemplate(ctx, tpl("6600599", "x")); !errors.Is(err, store.ErrTemplateNotFound) {
			t.Fatalf("update of a missing template: %v", err)
		}
		auto, err := s.CreateTemplate(ctx, tpl("", "auto"), numbering)
		if err != nil || auto.E164 == "" || auto.E164 == "6600500" || auto.E164 == "6600501" {
			t.Fatalf("allocated template %+v, %v", auto, err)
		}
	})

}

// The longest a conference may be booked for holds for its total length:
// delays that together pass it are refused, with what remains.
func TestDelayWithinLimit(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 5})
		running(t, s, "6600700", "n1")
		const limit = 120
		if _, dur, err := s.DelayWithin(ctx, "6600700", 45, limit); err != nil || dur != 105 {
			t.Fatalf("first delay = %d, %v", dur, err)
		}
		var de *store.DurationError
		_, _, err := s.DelayWithin(ctx, "6600700", 30, limit)
		if !errors.As(err, &de) || !errors.Is(err, store.ErrDurationLimit) || de.Booked != 105 || de.Limit != limit || de.Remaining() != 15 {
			t.Fatalf("a delay past the limit: %v (%+v)", err, de)
		}
		if c := state(t, s, "6600700"); c.DurationMinutes != 105 {
			t.Fatalf("a refused delay changed the length to %d", c.DurationMinutes)
		}
		if _, dur, err := s.DelayWithin(ctx, "6600700", 15, limit); err != nil || dur != limit {
			t.Fatalf("a delay up to the limit = %d, %v", dur, err)
		}
		if _, _, err := s.DelayWithin(ctx, "6600700", 1, limit); !errors.As(err, &de) || de.Remaining() != 0 {
			t.Fatalf("a delay at the limit: %v", err)
		}

		if _, dur, err := s.Delay(ctx, "6600700", 10); err != nil || dur != limit+10 {
			t.Fatalf("Delay = %d, %v", dur, err)
		}
	})

}
