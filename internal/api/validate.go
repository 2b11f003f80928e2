package api

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// The limits of free text are protocol's, shared with the scheduler.
const maxAliasLen = protocol.MaxAliasLen

// The checks of request fields. Each returns nil or a BAD_REQUEST naming
// the field.

// checkName applies the one rule for names (protocol.CheckName): 1 to 128
// printable characters, no control, formatting or zero-width characters.
func checkName(field, v string) *apiError {
	if err := protocol.CheckName(field, v); err != nil {
		return badRequest("%s", err.Error())
	}
	return nil
}

func checkDomain(v string) *apiError {
	if v == "" {
		return badRequest("field \"domain\" is required")
	}
	if !protocol.ValidToken(v) {
		return badRequest("field \"domain\" must be 1 to 64 letters, digits, '-' or '_'")
	}
	return nil
}

func checkScale(v int) *apiError {
	if v == 0 {
		return badRequest("field \"scale\" is required: one of 8, 32, 64, 192")
	}
	if !license.ValidScale(v) {
		return badRequest("field \"scale\" must be one of 8, 32, 64, 192")
	}
	return nil
}

func checkResolution(v string) *apiError {
	if v == "" {
		return badRequest("field \"resolution\" is required: \"720p\" or \"1080p\"")
	}
	if !license.ValidResolution(v) {
		return badRequest("field \"resolution\" must be \"720p\" or \"1080p\"")
	}
	return nil
}

func checkMinutes(field string, v, max int) *apiError {
	if v == 0 {
		return badRequest("field %q is required: 1 to %d minutes", field, max)
	}
	if v < 1 || v > max {
		return badRequest("field %q must be between 1 and %d", field, max)
	}
	return nil
}

func checkOptionalE164(v string) *apiError {
	if v != "" && !protocol.ValidE164(v) {
		return badRequest("field \"e164\" must be 3 to 32 digits")
	}
	return nil
}

func checkPassword(v string) *apiError {
	if err := protocol.CheckPassword("password", v); err != nil {
		return badRequest("%s", err.Error())
	}
	return nil
}

func checkInvited(v []string) *apiError {
	if err := protocol.CheckInvited("invited", v); err != nil {
		return badRequest("%s", err.Error())
	}
	return nil
}

func firstError(errs ...*apiError) *apiError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (q *CreateConferenceRequest) check(maxMinutes int) *apiError {
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

func (q *TemplateRequest) check(maxMinutes int) *apiError {
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

func (q *UpdateConferenceRequest) check() *apiError {
	if q.Name == nil && q.Password == nil {
		return badRequest("field \"name\" or \"password\" is required")
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

func (q *MonitorRequest) check() *apiError {
	if q.IP == "" {
		return badRequest("field \"ip\" is required")
	}
	if net.ParseIP(q.IP) == nil {
		return badRequest("field \"ip\" must be an IPv4 or IPv6 address, not %s", echo(q.IP))
	}
	if q.Port == 0 {
		return badRequest("field \"port\" is required")
	}
	if q.Port < 1 || q.Port > 65535 {
		return badRequest("field \"port\" must be between 1 and 65535")
	}
	return nil
}

func (q *SetLicenseRequest) check() *apiError {
	if len(q.Limits) == 0 {
		return badRequest("field \"limits\" is required: an object of class to limit, such as {\"8_720p\": 10}")
	}
	for class, n := range q.Limits {
		if _, err := license.ParseClass(class); err != nil {
			return badRequest("field \"limits\" has unknown class %s: use %s", echo(class), classNames())
		}
		if n < 0 {
			return badRequest("field \"limits.%s\" must not be negative", class)
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

// Path parameters.

func pathE164(r *http.Request) (string, *apiError) {
	v := r.PathValue("e164")
	if !protocol.ValidE164(v) {
		return "", badRequest("e164 %s in the path must be 3 to 32 digits", echo(v))
	}
	return v, nil
}

func pathMoid(r *http.Request) (string, *apiError) {
	v := r.PathValue("moid")
	if !protocol.ValidToken(v) {
		return "", badRequest("domain %s in the path must be 1 to 64 letters, digits, '-' or '_'", echo(v))
	}
	return v, nil
}

// pathAddr reads a monitor's ip:port from the path.
func pathAddr(r *http.Request) (ip string, port int, err *apiError) {
	v := r.PathValue("addr")
	host, p, splitErr := net.SplitHostPort(v)
	n, atoiErr := strconv.Atoi(p)
	if splitErr != nil || atoiErr != nil || net.ParseIP(host) == nil || n < 1 || n > 65535 {
		return "", 0, badRequest("monitor address %s in the path must be ip:port", echo(v))
	}
	return host, n, nil
}

func monitorAddr(ip string, port int) string {
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

func checkState(v string) *apiError {
	switch v {
	case "", protocol.StateCreating, protocol.StateRunning, protocol.StatePendingRestore:
		return nil
	}
	return badRequest("query parameter \"state\" must be %s, %s or %s, not %s",
		protocol.StateCreating, protocol.StateRunning, protocol.StatePendingRestore, echo(v))
}
