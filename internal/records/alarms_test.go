package records_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
)

func TestAlarms(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		a := records.Alarm{ID: "al-1", Kind: "node_down", Subject: "sim-1", Severity: "major", RaisedAt: t0}

		for i := range 2 { // a retry after a lost reply changes nothing
			got, err := db.RaiseAlarm(ctx, a)
			if err != nil || got.ID != "al-1" || !got.Active() || !got.RaisedAt.Equal(t0) {
				t.Fatalf("raise %d: %+v, %v", i, got, err)
			}
		}
		// Another alarm for the same cause while the first is active: the
		// first stands.
		dup := a
		dup.ID, dup.RaisedAt = "al-2", t0.Add(time.Second)
		got, err := db.RaiseAlarm(ctx, dup)
		if err != nil || got.ID != "al-1" {
			t.Fatalf("raise a second for one cause: %+v, %v", got, err)
		}
		if _, err := db.Alarm(ctx, "al-2"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("the second alarm was written: %v", err)
		}

		for i := range 2 {
			got, err := db.AckAlarm(ctx, "al-1", t0.Add(time.Duration(i+2)*time.Second))
			if err != nil || !got.Acked || !got.AckedAt.Equal(t0.Add(2*time.Second)) {
				t.Fatalf("ack %d: %+v, %v", i, got, err)
			}
		}
		for i := range 2 {
			got, err := db.ClearAlarm(ctx, "al-1", t0.Add(time.Duration(i+5)*time.Second))
			if err != nil || got.Active() || !got.ClearedAt.Equal(t0.Add(5*time.Second)) {
				t.Fatalf("clear %d: %+v, %v", i, got, err)
			}
		}
		// Cleared, the cause may alarm again.
		got, err = db.RaiseAlarm(ctx, dup)
		if err != nil || got.ID != "al-2" || !got.Active() {
			t.Fatalf("raise after clear: %+v, %v", got, err)
		}

		active, err := db.Alarms(ctx, true, 0)
		if err != nil || len(active) != 1 || active[0].ID != "al-2" {
			t.Fatalf("active: %+v, %v", active, err)
		}
		all, err := db.Alarms(ctx, false, 0)
		if err != nil || len(all) != 2 || all[0].ID != "al-2" || all[1].ID != "al-1" {
			t.Fatalf("all: %+v, %v", all, err)
		}
		if one, err := db.Alarms(ctx, false, 1); err != nil || len(one) != 1 {
			t.Fatalf("limit 1: %+v, %v", one, err)
		}

		if _, err := db.ClearAlarm(ctx, "nope", t0); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("clear unknown: %v", err)
		}
		if _, err := db.AckAlarm(ctx, "nope", t0); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("ack unknown: %v", err)
		}
		bad := a
		bad.ID, bad.Severity = "al-3", "fatal"
		if _, err := db.RaiseAlarm(ctx, bad); !errors.Is(err, records.ErrInvalid) {
			t.Fatalf("bad severity: %v", err)
		}
	})
}
