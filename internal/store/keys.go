package store

// Key names (SPEC §2.2). The trailing slash of confex/<e164>/ is the seed's.
func confKey(e164 string) string          { return "confex/" + e164 + "/" }
func domainConfsKey(moid string) string   { return "domain/" + moid + "/confs" }
func domainInfoKey(moid string) string    { return "domain/" + moid + "/info" }
func domainLicenseKey(moid string) string { return "domain/" + moid + "/license" }
func domainTplKey(moid string) string     { return "domain/" + moid + "/templates" }
func monitorKey(e164 string) string       { return "conf/" + e164 + "/monitor" }
func nodeConfsKey(node string) string     { return "node/" + node + "/confs" }
func templateKey(e164 string) string      { return "template/" + e164 + "/" }
func e164SeqKey(platform string) string   { return "platform/" + platform + "/e164seq" }
func leaseKey(platform string) string     { return "platform/" + platform + "/scheduler-lease" }

const (
	// endTimesKey orders conferences by end time (Unix ms) for expiry.
	endTimesKey = "confs/endtime"
	// monitorsKey orders monitoring sessions "<e164>|<ip:port>" by last
	// keep-alive (Unix ms) for expiry.
	monitorsKey = "confs/monitors"
	// pendingKey holds the conferences waiting for a restore.
	pendingKey = "confs/pending"
	// creatingKey orders conferences being created or restored by when
	// that began (Unix ms), for the sweep of abandoned ones.
	creatingKey = "confs/creating"
	// legacyNodesKey is the seed's cmus set of legacy media nodes.
	legacyNodesKey = "cmus"
)
