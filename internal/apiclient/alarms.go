package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Alarm kinds: what stopped answering or went wrong.
const (
	AlarmNodeDown         = "node_down"         // a media node RMS holds down
	AlarmRoomFailed       = "room_failed"       // a server room abnormal
	AlarmPlatformFailed   = "platform_failed"   // this platform, or one it backs up or is backed by, abnormal or unreachable
	AlarmLicenceHigh      = "licence_high"      // a domain uses more than 90% of a licence class
	AlarmRestoreFailing   = "restore_failing"   // a conference whose restore keeps failing
	AlarmStoreUnreachable = "store_unreachable" // the platform store does not answer
	AlarmBusUnreachable   = "bus_unreachable"   // the alarm service's bus connection is down
	AlarmHostDown         = "host_down"         // a host stopped publishing its status
	AlarmPluginStopped    = "plugin_stopped"    // a plugin of a host is stopped or failed
)

// Alarm severities.
const (
	SeverityCritical = "critical"
	SeverityMajor    = "major"
	SeverityMinor    = "minor"
)

// Alarm is one alarm: what it is about (Kind, and Subject: the node, room,
// platform, "<domain>/<class>", conference number, "<host>/<plugin>",
// host, "store" or "bus"), how bad, when it was raised and cleared (nil
// while active), and whether an operator acknowledged it.
type Alarm struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Subject   string     `json:"subject"`
	Severity  string     `json:"severity"`
	RaisedAt  time.Time  `json:"raised_at"`
	ClearedAt *time.Time `json:"cleared_at"`
	Acked     bool       `json:"acked"`
}

// Active reports whether the alarm has not cleared.
func (a Alarm) Active() bool { return a.ClearedAt == nil }

// AlarmList is the answer to GET /v1/alarms.
type AlarmList struct {
	Alarms []Alarm `json:"alarms"`
}

// Alarm states of GET /v1/alarms?state=.
const (
	AlarmStateActive = "active"
	AlarmStateAll    = "all"
)

// Alarm events, as the alarm service announces them on the bus
// (alarm.ntf.<platform>).
const (
	AlarmRaised  = "ALARM_RAISED"
	AlarmAcked   = "ALARM_ACKED"
	AlarmCleared = "ALARM_CLEARED"
)

// AlarmEvent is one announcement: an alarm raised, acknowledged or
// cleared, with the alarm as it is after.
type AlarmEvent struct {
	Type  string `json:"type"`
	Alarm Alarm  `json:"alarm"`
}

// Alarms lists the alarms in state (AlarmStateActive, or AlarmStateAll
// for the history as well), the latest raised first.
func (c *Client) Alarms(ctx context.Context, state string) ([]Alarm, error) {
	var out AlarmList
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	err := c.do(ctx, http.MethodGet, withQuery("/v1/alarms", q), nil, &out)
	return out.Alarms, err
}

// AckAlarm acknowledges an alarm (operator tokens only); acknowledging it
// again changes nothing. The answer is the alarm after.
func (c *Client) AckAlarm(ctx context.Context, id string) (Alarm, error) {
	var out Alarm
	err := c.do(ctx, http.MethodPost, "/v1/alarms/"+url.PathEscape(id)+"/ack", nil, &out)
	return out, err
}
