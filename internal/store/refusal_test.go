package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/store"
)

func TestRefusal(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		e164, moid  string
		code, words string
	}{
		{"licence, detailed", &store.LicenseError{Domain: "acme", Class: "8_720p", InUse: 5, Limit: 5}, "", "acme", codes.LicenseExhausted, `domain "acme" has 5 of 5 conferences of class 8_720p running; end one or raise the licence`},
		{"licence", store.ErrLicenseExhausted, "", "acme", codes.LicenseExhausted, "raise the licence"},
		{"segment, detailed", &store.SegmentError{E164: "7700001", Segment: "66", Digits: 5}, "7700001", "", codes.E164OutOfSegment, "use 66 followed by 5 digits"},
		{"segment", store.ErrE164OutOfSegment, "7700001", "", codes.E164OutOfSegment, "number 7700001 is outside"},
		{"duration, full", &store.DurationError{E164: "6600001", Booked: 600, Limit: 600}, "6600001", "", codes.DurationLimit, "it cannot be made longer"},
		{"duration, some left", &store.DurationError{E164: "6600001", Booked: 590, Limit: 600}, "6600001", "", codes.DurationLimit, "delay it by 10 minutes or less"},
		{"domain unknown, named", store.ErrDomainNotFound, "", "nowhere", codes.DomainNotFound, `domain "nowhere" is not known to this platform`},
		{"domain unknown", store.ErrDomainNotFound, "6600001", "", codes.DomainNotFound, "the user domain is not known"},
		{"domain disabled", store.ErrDomainDisabled, "", "acme", codes.DomainDisabled, `domain "acme" is disabled; enable it`},
		{"number taken", store.ErrE164InUse, "6600001", "", codes.E164InUse, "number 6600001 belongs to"},
		{"numbers exhausted", store.ErrE164Exhausted, "", "", codes.E164Exhausted, "widen e164_digits"},
		{"conference", fmt.Errorf("read: %w", store.ErrConfNotFound), "6600001", "", codes.ConfNotFound, "conference 6600001 does not exist; it may have ended"},
		{"state", &store.StateError{E164: "6600001", State: "creating", Want: "running"}, "6600001", "", codes.ConfNotRunning, "conference 6600001 is not running: conference 6600001 is creating, not running"},
		{"breakout on a conference not running", store.ErrConfNotRunning, "6600001", "", codes.ConfNotRunning, "is not running"},
		{"template", store.ErrTemplateNotFound, "6600002", "", codes.TemplateNotFound, "template 6600002 does not exist"},
		{"monitor", store.ErrMonitorNotFound, "6600001", "", codes.MonitorNotFound, "no such monitoring session"},
		{"anything else", errors.New("dial tcp 127.0.0.1:6379: connection refused"), "", "", codes.StoreError, "the state store failed: dial tcp 127.0.0.1:6379: connection refused; check that it is running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := store.Refusal(tc.err, tc.e164, tc.moid)
			if r.Code != tc.code || !strings.Contains(r.Message, tc.words) {
				t.Fatalf("Refusal = %s, want %s containing %q", r, tc.code, tc.words)
			}
			if !errors.Is(r, tc.err) {
				t.Fatalf("Refusal lost its cause %v", tc.err)
			}
		})
	}
}
