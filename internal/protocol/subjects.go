package protocol

// Bus subjects (SPEC §2.1). Identifiers placed in a subject (platform moids,
// node ids, e164 numbers) must be valid subject tokens: see ValidToken.

// SubjectCMMAU carries CM requests to the scheduler of a platform
// (creates, templates): the seed's mau.cmmau queue.
func SubjectCMMAU(platform string) string { return "mau.cmmau." + platform }

// SubjectConfControl carries CM control of one running conference
// (mau.cmcmu.ex with routing key e164), subscribed by the scheduler running it.
func SubjectConfControl(e164 string) string { return "mau.cmcmu." + e164 }

// SubjectToNode carries scheduler requests to one media node.
func SubjectToNode(node string) string { return "mcu." + node }

// SubjectFromNodes carries media-node reports and requests to the
// scheduler of a platform.
func SubjectFromNodes(platform string) string { return "mau.mcu." + platform }

// SubjectRMS carries requests to a platform's resource manager
// (RMS.RES.Q): GET_RES_REQ and the node and room lists.
func SubjectRMS(platform string) string { return "rms.res." + platform }

// SubjectRMSNodes carries node registration and heartbeats to RMS.
func SubjectRMSNodes(platform string) string { return "rms.node." + platform }

// SubjectRMSNotify carries RMS's node-state notifications.
func SubjectRMSNotify(platform string) string { return "rms.ntf." + platform }

// SubjectRegistry carries reports and queries to a platform's registry.
func SubjectRegistry(platform string) string { return "upu." + platform }

// Scheduler-to-CM subjects (MEETING.CSS.EX and meeting.mccntf.k).
const (
	SubjectCMRequests      = "meeting.css"
	SubjectCMNotifications = "meeting.mccntf"
)

// PMS subjects.
const (
	SubjectServerRoomNotify = "monitor.notify.server_room"
	SubjectPlatformNotify   = "monitor.notify.platform"
	SubjectLicenseNotify    = "platform.license.ntf"
)

// SubjectPMS carries requests to a platform's monitor (monitor.req.q:moid).
func SubjectPMS(platform string) string { return "monitor.req." + platform }

// SubjectCallNotify carries the changes of a platform's live calls (a call
// started, was answered, ended), published by the call records server for
// the event stream and the console.
func SubjectCallNotify(platform string) string { return "cdr.ntf." + platform }

// SubjectAlarmNotify carries a platform's alarms as they are raised,
// acknowledged and cleared, published by the alarm service.
func SubjectAlarmNotify(platform string) string { return "alarm.ntf." + platform }

// ValidToken reports whether s can stand as one subject token: letters,
// digits, '-' and '_' only, 1 to 64 of them.
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// ValidE164 reports whether s is a dialable number: 3 to 32 digits.
func ValidE164(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// SubjectRegistryResync is where a registry that (re)started asks every
// scheduler reporting to it to report everything again.
func SubjectRegistryResync(platform string) string { return "upu.resync." + platform }
