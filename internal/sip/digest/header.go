package digest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed: the header is not digest credentials this package reads.
var ErrMalformed = errors.New("digest: malformed credentials")

// maxHeader bounds what ParseCredentials reads.
const maxHeader = 4096

// Credentials are the parameters of an Authorization or
// Proxy-Authorization header with the Digest scheme.
type Credentials struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string
	CNonce    string
	Opaque    string
	QOP       string
	// NC is the nonce count as sent (8 hex digits); Count its value.
	NC    string
	Count uint32
}

// ParseCredentials reads a Digest credentials header value. Parameter
// names are case-insensitive; values are tokens or quoted strings (with
// backslash escapes). Errors: ErrMalformed.
func ParseCredentials(v string) (Credentials, error) {
	var c Credentials
	if len(v) > maxHeader {
		return c, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxHeader)
	}
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return c, fmt.Errorf("%w: scheme %q is not Digest", ErrMalformed, scheme)
	}
	params, err := parseParams(rest)
	if err != nil {
		return c, err
	}
	for k, val := range params {
		switch k {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = val
		case "algorithm":
			c.Algorithm = val
		case "cnonce":
			c.CNonce = val
		case "opaque":
			c.Opaque = val
		case "qop":
			c.QOP = val
		case "nc":
			c.NC = val
		}
	}
	if c.Username == "" || c.Realm == "" || c.Nonce == "" || c.Response == "" {
		return c, fmt.Errorf("%w: username, realm, nonce and response are required", ErrMalformed)
	}
	if c.NC != "" {
		n, err := strconv.ParseUint(c.NC, 16, 32)
		if err != nil || len(c.NC) != 8 {
			return c, fmt.Errorf("%w: nonce count %q is not 8 hex digits", ErrMalformed, c.NC)
		}
		c.Count = uint32(n)
	}
	return c, nil
}

// parseParams reads name=value pairs separated by commas. A name given
// twice is malformed.
func parseParams(s string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		name := strings.ToLower(s[start:i])
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if name == "" || i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("%w: parameter %q has no value", ErrMalformed, name)
		}
		i++
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		var val string
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if ch == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(ch)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("%w: parameter %q has an unclosed quote", ErrMalformed, name)
			}
			val = b.String()
		} else {
			start := i
			for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
				i++
			}
			val = s[start:i]
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: parameter %q is given twice", ErrMalformed, name)
		}
		out[name] = val
	}
}

// Challenge is a WWW-Authenticate or Proxy-Authenticate header value.
type Challenge struct {
	Realm     string
	Nonce     string
	Opaque    string
	Algorithm Algorithm
	// Stale says the credentials were right but their nonce is too old:
	// the client may answer the new nonce without asking its user.
	Stale bool
}

// String renders the challenge with qop="auth".
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString(`Digest realm="`)
	b.WriteString(quote(c.Realm))
	b.WriteString(`", nonce="`)
	b.WriteString(quote(c.Nonce))
	b.WriteString(`", algorithm=`)
	b.WriteString(string(c.Algorithm))
	b.WriteString(`, qop="auth"`)
	if c.Opaque != "" {
		b.WriteString(`, opaque="`)
		b.WriteString(quote(c.Opaque))
		b.WriteString(`"`)
	}
	if c.Stale {
		b.WriteString(`, stale=true`)
	}
	return b.String()
}

func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
