package bus

import (
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/convene/convene/internal/protocol"
)

// authenticator is the embedded server's gate. A client proves it holds a
// role's nkey by signing the server's nonce; the system user gives the
// password only this process knows. Then it gets its role's permissions
// (Permissions), narrowed to the connection:
//   - its replies: it may read only _INBOX.<role>.<its name>.>, not other
//     connections' replies;
//   - a media node (RoleMCU), when NodeConnPrefix is set, must name its
//     connection <prefix><node id> and may read only mcu.<node id>; no
//     other role may take a name with that prefix, so connection events
//     under a node's name come from a node.
//
// Anyone else is refused.
type authenticator struct {
	roles      map[string]Role // public key → role
	platform   string
	nodePrefix string
	sysPass    string
	// srv is set once the server exists, before it serves anyone; its
	// registered accounts are the ones a client must join.
	srv *server.Server
}

func newAuthenticator(c *Creds, opts EmbeddedOptions) (*authenticator, error) {
	a := &authenticator{roles: map[string]Role{}, platform: opts.Platform, nodePrefix: opts.NodeConnPrefix,
		sysPass: opts.SystemPassword}
	for r, kp := range c.keys {
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, err
		}
		a.roles[pub] = r
	}
	return a, nil
}

// Check implements server.Authentication.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	if o == nil {
		return false
	}
	if o.Nkey == "" {
		if o.Username != systemUser || subtle.ConstantTimeCompare([]byte(o.Password), []byte(a.sysPass)) != 1 {
			return false
		}
		acc, err := a.srv.LookupAccount(systemAccount)
		if err != nil {
			return false
		}
		c.RegisterUser(&server.User{Username: systemUser, Account: acc})
		return true
	}
	role, ok := a.roles[o.Nkey]
	if !ok || !verifyNonce(o.Nkey, o.Sig, c.GetNonce()) {
		return false
	}
	perms, ok := a.permissions(role, o.Name)
	if !ok {
		return false
	}
	acc, err := a.srv.LookupAccount(AppAccount)
	if err != nil {
		return false
	}
	c.RegisterUser(&server.User{Username: string(role), Account: acc, Permissions: perms})
	return true
}

func verifyNonce(pub, sig string, nonce []byte) bool {
	if len(nonce) == 0 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return false
		}
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return false
	}
	return kp.Verify(nonce, raw) == nil
}

// permissions are a role's, bound to the connection named name; false
// refuses the connection.
func (a *authenticator) permissions(role Role, name string) (*server.Permissions, bool) {
	if role == RoleInternal {
		return nil, true
	}
	isNodeName := a.nodePrefix != "" && strings.HasPrefix(name, a.nodePrefix)
	g, err := Permissions(role, a.platform)
	if err != nil {
		return nil, false
	}
	sub := g.Subscribe
	if role == RoleMCU && a.nodePrefix != "" {
		id := strings.TrimPrefix(name, a.nodePrefix)
		if !isNodeName || !protocol.ValidToken(id) {
			return nil, false
		}
		sub = []string{protocol.SubjectToNode(id)}
	} else if isNodeName {
		return nil, false
	}
	p := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: append([]string{}, g.Publish...)},
		Subscribe: &server.SubjectPermission{Allow: append(append([]string{}, sub...), inboxPrefix(role, name)+".>")},
	}
	if g.Respond {
		p.Response = &server.ResponsePermission{
			MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
			Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION,
		}
	}
	return p, true
}

// inboxPrefix is where a connection's replies arrive:
// _INBOX.<role>.<name as one subject token>.
func inboxPrefix(role Role, name string) string {
	return Inbox(role) + "." + subjectToken(name)
}

// subjectToken turns a connection name into one subject token: characters
// a token cannot hold become '_'.
func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			b[i] = '_'
		}
	}
	return string(b)
}
