package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

// convene alarms lists a node's alarm, and acknowledges it.
func TestAlarmsCommand(t *testing.T) {
	ctx := context.Background()
	st, err := stack.Start(ctx, stack.Options{Config: config.Demo(), Listen: "127.0.0.1:0", SimNodes: 1, Alarms: true,
		Records: "sqlite://" + filepath.Join(t.TempDir(), "records.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop(ctx)
	conn := []string{"--api", st.API.Addr(), "--token", st.Token}
	st.KillNode(0)
	var alarm apiclient.Alarm
	testkit.AwaitWithin(t, 30*time.Second, "the node's alarm listed", func() bool {
		out, err := run(t, alarmsCmd(), append([]string{"--json"}, conn...)...)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var list apiclient.AlarmList
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, a := range list.Alarms {
			if a.Kind == apiclient.AlarmNodeDown && a.Subject == "sim-1" {
				alarm = a
				return true
			}
		}
		return false
	})
	out, err := run(t, alarmsCmd(), conn...)
	if err != nil || !strings.Contains(out, alarm.ID) || !strings.Contains(out, "node_down") || !strings.Contains(out, "sim-1") {
		t.Fatalf("table: %v\n%s", err, out)
	}
	out, err = run(t, alarmsCmd(), append([]string{"ack", alarm.ID}, conn...)...)
	if err != nil || !strings.Contains(out, alarm.ID) || !strings.Contains(out, "yes") {
		t.Fatalf("ack: %v\n%s", err, out)
	}
	out, err = run(t, alarmsCmd(), append([]string{"ack", "al-none"}, conn...)...)
	if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("ack of an unknown alarm: %v\n%s", err, out)
	}
}
