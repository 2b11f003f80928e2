package httpkit

import (
	"net/http"
	"strconv"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
)

// PathE164 reads the conference or template number {e164} of the path:
// 3 to 32 digits.
func PathE164(r *http.Request) (string, *codes.Error) {
	v := r.PathValue("e164")
	if !protocol.ValidE164(v) {
		return "", BadRequest("e164 %s in the path must be 3 to 32 digits", Echo(v))
	}
	return v, nil
}

// PathToken reads the path parameter name, a moid (1 to 64 letters,
// digits, '-' or '_'); what names it in the error ("domain", "room").
func PathToken(r *http.Request, name, what string) (string, *codes.Error) {
	v := r.PathValue(name)
	if !protocol.ValidToken(v) {
		return "", BadRequest("%s %s in the path must be 1 to 64 letters, digits, '-' or '_'", what, Echo(v))
	}
	return v, nil
}

// QueryBool reads an optional true/false query parameter.
func QueryBool(r *http.Request, name string) (bool, *codes.Error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, BadRequest("query parameter %q must be true or false, not %s", name, Echo(v))
	}
	return b, nil
}
