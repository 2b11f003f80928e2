package scheduler

import (
	"sync/atomic"

	"github.com/convene/convene/internal/protocol"
)

// Activity is what an instance has looked at since it started: how many
// of its periodic checks ran, and the platform states it applied last.
// Tests and diagnostics use it to know that a check ran (and found
// nothing to do) instead of sleeping and hoping it did.
type Activity struct {
	// EndChecks counts the end-time checks that read every
	// possible-service store.
	EndChecks uint64
	// MonitorChecks counts the monitoring-session expiry checks that read
	// every possible-service store and stopped what had expired.
	MonitorChecks uint64
	// RestorePasses counts the restore passes that read the served
	// stores' pending conferences.
	RestorePasses uint64
	// Platforms is the last PLATFORM_STATE_NOTIFY (or answer at start)
	// this instance applied, with the failovers and failbacks it caused
	// already done.
	Platforms protocol.PlatformStateNtf
	// AbnormalRooms are the rooms this instance avoids now, sorted.
	AbnormalRooms []string
}

// activity holds the counts behind Activity.
type activity struct {
	endChecks     atomic.Uint64
	monitorChecks atomic.Uint64
	restorePasses atomic.Uint64
}

// Activity reports what this instance has looked at so far.
func (s *Scheduler) Activity() Activity {
	return Activity{
		EndChecks:     s.act.endChecks.Load(),
		MonitorChecks: s.act.monitorChecks.Load(),
		RestorePasses: s.act.restorePasses.Load(),
		Platforms:     s.dr.applied(),
		AbnormalRooms: s.abnormalRooms(),
	}
}
