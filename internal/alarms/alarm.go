package alarms

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/records"
)

// Key is one cause: the kind of alarm and what it is about. At most one
// alarm is active per key.
type Key struct {
	Kind    string
	Subject string
}

// severities is the severity of each kind of alarm: the one place it is
// said.
var severities = map[string]string{
	apiclient.AlarmNodeDown:         apiclient.SeverityMajor,
	apiclient.AlarmRoomFailed:       apiclient.SeverityCritical,
	apiclient.AlarmPlatformFailed:   apiclient.SeverityCritical,
	apiclient.AlarmLicenceHigh:      apiclient.SeverityMinor,
	apiclient.AlarmRestoreFailing:   apiclient.SeverityMajor,
	apiclient.AlarmStoreUnreachable: apiclient.SeverityCritical,
	apiclient.AlarmBusUnreachable:   apiclient.SeverityCritical,
	apiclient.AlarmHostDown:         apiclient.SeverityCritical,
	apiclient.AlarmPluginStopped:    apiclient.SeverityMajor,
}

// Severity is the severity of an alarm of kind.
func Severity(kind string) string {
	if s, ok := severities[kind]; ok {
		return s
	}
	return apiclient.SeverityMajor
}

// Kinds lists every kind of alarm.
func Kinds() []string {
	return []string{apiclient.AlarmNodeDown, apiclient.AlarmRoomFailed, apiclient.AlarmPlatformFailed,
		apiclient.AlarmLicenceHigh, apiclient.AlarmRestoreFailing, apiclient.AlarmStoreUnreachable,
		apiclient.AlarmBusUnreachable, apiclient.AlarmHostDown, apiclient.AlarmPluginStopped}
}

// newID is a fresh alarm id: al- and 16 random hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "al-" + hex.EncodeToString(b[:])
}

// keyOf is an alarm's cause.
func keyOf(a records.Alarm) Key { return Key{Kind: a.Kind, Subject: a.Subject} }

// view is an alarm as the API shows it: times in UTC, cleared_at null
// while active.
func view(a records.Alarm) apiclient.Alarm {
	out := apiclient.Alarm{ID: a.ID, Kind: a.Kind, Subject: a.Subject, Severity: a.Severity,
		RaisedAt: a.RaisedAt.UTC().Truncate(time.Millisecond), Acked: a.Acked}
	if !a.ClearedAt.IsZero() {
		t := a.ClearedAt.UTC().Truncate(time.Millisecond)
		out.ClearedAt = &t
	}
	return out
}
