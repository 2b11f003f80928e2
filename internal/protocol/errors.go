package protocol

// Error codes carried in NACKs and in REST errors. They are stable: clients
// may switch on them.
const (
	ErrBadRequest        = "BAD_REQUEST"
	ErrUnauthorized      = "UNAUTHORIZED"
	ErrNotFound          = "NOT_FOUND"
	ErrConfNotFound      = "CONF_NOT_FOUND"
	ErrConfNotRunning    = "CONF_NOT_RUNNING"
	ErrDomainNotFound    = "DOMAIN_NOT_FOUND"
	ErrDomainDisabled    = "DOMAIN_DISABLED"
	ErrLicenseExhausted  = "LICENSE_EXHAUSTED"
	ErrE164InUse         = "E164_IN_USE"
	ErrE164Exhausted     = "E164_EXHAUSTED"
	ErrE164OutOfSegment  = "E164_OUT_OF_SEGMENT"
	ErrDurationLimit     = "DURATION_LIMIT"
	ErrNoResources       = "NO_RESOURCES"
	ErrPlatformNotServed = "PLATFORM_NOT_SERVED"
	ErrRMSTimeout        = "RMS_TIMEOUT"
	ErrRMSError          = "RMS_ERROR"
	ErrNodeRejected      = "NODE_REJECTED"
	ErrNodeTimeout       = "NODE_TIMEOUT"
	ErrStoreError        = "STORE_ERROR"
	ErrSchedulerTimeout  = "SCHEDULER_TIMEOUT"
	ErrSchedulerDown     = "SCHEDULER_UNAVAILABLE"
	ErrUnknownRoom       = "UNKNOWN_ROOM"
	ErrMonitorNotFound   = "MONITOR_NOT_FOUND"
	ErrTemplateNotFound  = "TEMPLATE_NOT_FOUND"
	ErrRenameRejected    = "RENAME_REJECTED"
	ErrInternal          = "INTERNAL"
)
