package api

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// The checks of request fields. Each returns nil or a BAD_REQUEST naming
// the field. They check the form of a request, so that a client learns of
// a malformed field before anything is asked of the scheduler; the rules
// and limits are their owners': free text and numbers protocol's
// (CheckName, CheckPassword, CheckInvited, ValidE164, ValidToken, shared
// with the scheduler), classes the licence's, the longest booking the
// scheduler's configuration (Options.MaxDurationMinutes). The scheduler
// checks again what it is sent, for the CMs that reach it over the bus.

// maxAliasLen is the longest alias a terminal filter may name.
const maxAliasLen = protocol.MaxAliasLen

// checkName applies the one rule for names (protocol.CheckName): 1 to 128
// printable characters, no control, formatting or zero-width characters.
func checkName(field, v string) *codes.Error {
	if err := protocol.CheckName(field, v); err != nil {
		return httpkit.BadRequest("%s", err.Error())
	}
	return nil
}

func checkDomain(v string) *codes.Error {
	if v == "" {
		return httpkit.BadRequest("field \"domain\" is required")
	}
	if !protocol.ValidToken(v) {
		return httpkit.BadRequest("field \"domain\" must be 1 to 64 letters, digits, '-' or '_'")
	}
	return nil
}

// The scales and resolutions are the licence's (license.Scales,
// license.Resolutions), named in the messages as the licence lists them.
var (
	scaleNames      = joinScales()
	resolutionNames = joinResolutions()
)

func joinScales() string {
	names := make([]string, len(license.Scales))
	for i, n := range license.Scales {
		names[i] = strconv.Itoa(n)
	}
	return strings.Join(names, ", ")
}

func joinResolutions() string {
	names := make([]string, len(license.Resolutions))
	for i, r := range license.Resolutions {
		names[i] = strconv.Quote(r)
	}
	return strings.Join(names, " or ")
}

func checkScale(v int) *codes.Error {
	if v == 0 {
		return httpkit.BadRequest("field \"scale\" is required: one of %s", scaleNames)
	}
	if !license.ValidScale(v) {
		return httpkit.BadRequest("field \"scale\" must be one of %s", scaleNames)
	}
	return nil
}

func checkResolution(v string) *codes.Error {
	if v == "" {
		return httpkit.BadRequest("field \"resolution\" is required: %s", resolutionNames)
	}
	if !license.ValidResolution(v) {
		return httpkit.BadRequest("field \"resolution\" must be %s", resolutionNames)
	}
	return nil
}

func checkMinutes(field string, v, max int) *codes.Error {
	if v == 0 {
		return httpkit.BadRequest("field %q is required: 1 to %d minutes", field, max)
	}
	if v < 1 || v > max {
		return httpkit.BadRequest("field %q must be between 1 and %d", field, max)
	}
	return nil
}

func checkOptionalE164(v string) *codes.Error {
	if v != "" && !protocol.ValidE164(v) {
		return httpkit.BadRequest("field \"e164\" must be 3 to 32 digits")
	}
	return nil
}

func checkPassword(v string) *codes.Error {
	if err := protocol.CheckPassword("password", v); err != nil {
		return httpkit.BadRequest("%s", err.Error())
	}
	return nil
}

func checkInvited(v []string) *codes.Error {
	if err := protocol.CheckInvited("invited", v); err != nil {
		return httpkit.BadRequest("%s", err.Error())
	}
	return nil
}

func firstError(errs ...*codes.Error) *codes.Error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func checkCreate(q *apiclient.CreateConferenceRequest, maxMinutes int) *codes.Error {
	return firstError(
		checkName("name", q.Name),
		checkDomain(q.Domain),
		checkScale(q.Scale),
		checkResolution(q.Resolution),
		checkMinutes("duration_minutes", q.DurationMinutes, maxMinutes),
		checkOptionalE164(q.E164),
		checkPassword(q.Password),
		checkInvited(q.Invited),
	)
}

func checkTemplate(q *apiclient.TemplateRequest, maxMinutes int) *codes.Error {
	return firstError(
		checkName("name", q.Name),
		checkDomain(q.Domain),
		checkScale(q.Scale),
		checkResolution(q.Resolution),
		checkMinutes("duration_minutes", q.DurationMinutes, maxMinutes),
		checkOptionalE164(q.E164),
		checkPassword(q.Password),
		checkInvited(q.Invited),
	)
}

func checkUpdate(q *apiclient.UpdateConferenceRequest) *codes.Error {
	if q.Name == nil && q.Password == nil {
		return httpkit.BadRequest("field \"name\" or \"password\" is required")
	}
	if q.Name != nil {
		if err := checkName("name", *q.Name); err != nil {
			return err
		}
	}
	if q.Password != nil {
		return checkPassword(*q.Password)
	}
	return nil
}

func checkMonitor(q *apiclient.MonitorRequest) *codes.Error {
	if q.IP == "" {
		return httpkit.BadRequest("field \"ip\" is required")
	}
	if net.ParseIP(q.IP) == nil {
		return httpkit.BadRequest("field \"ip\" must be an IPv4 or IPv6 address, not %s", httpkit.Echo(q.IP))
	}
	if q.Port == 0 {
		return httpkit.BadRequest("field \"port\" is required")
	}
	if q.Port < 1 || q.Port > 65535 {
		return httpkit.BadRequest("field \"port\" must be between 1 and 65535")
	}
	return nil
}

func checkLicense(q *apiclient.SetLicenseRequest) *codes.Error {
	if len(q.Limits) == 0 {
		return httpkit.BadRequest("field \"limits\" is required: an object of class to limit, such as {\"8_720p\": 10}")
	}
	for class, n := range q.Limits {
		if _, err := license.ParseClass(class); err != nil {
			return httpkit.BadRequest("field \"limits\" has unknown class %s: use %s", httpkit.Echo(class), classNames())
		}
		if n < 0 {
			return httpkit.BadRequest("field \"limits.%s\" must not be negative", class)
		}
	}
	return nil
}

func classNames() string {
	all := license.All()
	names := make([]string, len(all))
	for i, c := range all {
		names[i] = c.String()
	}
	return strings.Join(names, ", ")
}

// pathAddr reads a monitor's ip:port from the path.
func pathAddr(r *http.Request) (ip string, port int, err *codes.Error) {
	v := r.PathValue("addr")
	host, p, splitErr := net.SplitHostPort(v)
	n, atoiErr := strconv.Atoi(p)
	if splitErr != nil || atoiErr != nil || net.ParseIP(host) == nil || n < 1 || n > 65535 {
		return "", 0, httpkit.BadRequest("monitor address %s in the path must be ip:port", httpkit.Echo(v))
	}
	return host, n, nil
}

func monitorAddr(ip string, port int) string {
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

func checkState(v string) *codes.Error {
	switch v {
	case "", protocol.StateCreating, protocol.StateRunning, protocol.StatePendingRestore:
		return nil
	}
	return httpkit.BadRequest("query parameter \"state\" must be %s, %s or %s, not %s",
		protocol.StateCreating, protocol.StateRunning, protocol.StatePendingRestore, httpkit.Echo(v))
}
