package protocol

import "github.com/convene/convene/internal/codes"

// Error codes carried in NACKs, under the names the bus protocol has
// always used. Each is the codebook's (internal/codes), which holds its
// HTTP status and meaning: a new code goes there, not here.
const (
	ErrBadRequest        = codes.BadRequest
	ErrUnauthorized      = codes.Unauthorized
	ErrNotFound          = codes.NotFound
	ErrConfNotFound      = codes.ConfNotFound
	ErrConfNotRunning    = codes.ConfNotRunning
	ErrDomainNotFound    = codes.DomainNotFound
	ErrDomainDisabled    = codes.DomainDisabled
	ErrLicenseExhausted  = codes.LicenseExhausted
	ErrE164InUse         = codes.E164InUse
	ErrE164Exhausted     = codes.E164Exhausted
	ErrE164OutOfSegment  = codes.E164OutOfSegment
	ErrDurationLimit     = codes.DurationLimit
	ErrNoResources       = codes.NoResources
	ErrPlatformNotServed = codes.PlatformNotServed
	ErrRMSTimeout        = codes.RMSTimeout
	ErrRMSError          = codes.RMSError
	ErrNodeRejected      = codes.NodeRejected
	ErrNodeTimeout       = codes.NodeTimeout
	ErrStoreError        = codes.StoreError
	ErrSchedulerTimeout  = codes.SchedulerTimeout
	ErrSchedulerDown     = codes.SchedulerUnavailable
	ErrUnknownRoom       = codes.UnknownRoom
	ErrMonitorNotFound   = codes.MonitorNotFound
	ErrTemplateNotFound  = codes.TemplateNotFound
	ErrRenameRejected    = codes.RenameRejected
	ErrInternal          = codes.Internal
)
