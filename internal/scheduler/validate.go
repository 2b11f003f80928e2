package scheduler

import (
	"strings"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// The checks of what a CM asks of the scheduler over the bus. Free text
// (names, passwords, invited aliases) follows the one rule the REST API
// applies too (protocol.CheckName, CheckPassword, CheckInvited), so a
// value is never accepted by one and refused by the other; the longest
// booking is the scheduler's own (Options.MaxDurationMinutes), classes the
// licence's.

// checkText applies protocol's free-text rule to a booking's name (when
// name is not nil), password and invited aliases, and trims the name.
func checkText(nameField string, name *string, password string, invited []string) error {
	if name != nil {
		if err := protocol.CheckName(nameField, *name); err != nil {
			return fail(protocol.ErrBadRequest, nil, "%s", err.Error())
		}
		*name = strings.TrimSpace(*name)
	}
	if err := protocol.CheckPassword("password", password); err != nil {
		return fail(protocol.ErrBadRequest, nil, "%s", err.Error())
	}
	if err := protocol.CheckInvited("invited", invited); err != nil {
		return fail(protocol.ErrBadRequest, nil, "%s", err.Error())
	}
	return nil
}

func (s *Scheduler) validateCreate(req *protocol.CreateConfReq) (license.Class, error) {
	bad := func(format string, args ...any) (license.Class, error) {
		return license.Class{}, fail(protocol.ErrBadRequest, nil, format, args...)
	}
	if err := checkText("confname", &req.Name, req.Password, req.Invited); err != nil {
		return license.Class{}, err
	}
	switch {
	case req.Domain == "":
		return bad("field \"moid\" (the user domain) is required")
	case !protocol.ValidToken(req.Domain):
		return bad("field \"moid\" %q is not a valid domain moid", req.Domain)
	case req.E164 != "" && !protocol.ValidE164(req.E164):
		return bad("field \"e164\" must be 3 to 32 digits")
	case req.DurationMinutes < 1 || req.DurationMinutes > s.opts.MaxDurationMinutes:
		return bad("field \"duration\" must be between 1 and %d minutes", s.opts.MaxDurationMinutes)
	}
	class, err := license.ClassOf(req.Scale, req.Resolution)
	if err != nil {
		if !license.ValidScale(req.Scale) {
			return bad("field \"scale\" must be one of 8, 32, 64, 192")
		}
		return bad("field \"resolution\" must be \"720p\" or \"1080p\"")
	}
	return class, nil
}

func (s *Scheduler) validateTemplate(t *protocol.Template) error {
	if err := checkText("name", &t.Name, t.Password, t.Invited); err != nil {
		return err
	}
	switch {
	case !protocol.ValidToken(t.Domain):
		return fail(protocol.ErrBadRequest, nil, "field \"moid\" must name a user domain")
	case t.E164 != "" && !protocol.ValidE164(t.E164):
		return fail(protocol.ErrBadRequest, nil, "field \"e164\" must be 3 to 32 digits")
	case t.DurationMinutes < 1 || t.DurationMinutes > s.opts.MaxDurationMinutes:
		return fail(protocol.ErrBadRequest, nil, "field \"duration\" must be between 1 and %d minutes", s.opts.MaxDurationMinutes)
	}
	if _, err := license.ClassOf(t.Scale, t.Resolution); err != nil {
		return fail(protocol.ErrBadRequest, err, "fields \"scale\" and \"resolution\": %v", err)
	}
	return nil
}
