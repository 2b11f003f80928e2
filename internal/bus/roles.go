package bus

import (
	"fmt"
	"sort"
	"strings"

	"github.com/convene/convene/internal/protocol"
)

// Role is what a bus connection is for. Each role has its own credential
// and may publish and subscribe only on the subjects in its Grant.
type Role string

// The roles. Their credential files are named <role>.creds.
const (
	// RoleMCU is a media node.
	RoleMCU Role = "mcu"
	// RoleRMS is the resource manager.
	RoleRMS Role = "rms"
	// RoleScheduler is a scheduler (CSS) instance.
	RoleScheduler Role = "scheduler"
	// RolePMS is the platform monitor.
	RolePMS Role = "pms"
	// RoleRegistry is the registry (UPU).
	RoleRegistry Role = "registry"
	// RoleAPI is the REST API, the conference manager (CM).
	RoleAPI Role = "api"
	// RoleBreakout is the breakout-room service (BMS).
	RoleBreakout Role = "breakout"
	// RoleSIP is a SIP edge node: it looks numbers up in the registry
	// and media nodes' SIP contacts up in RMS.
	RoleSIP Role = "sip"
	// RolePlatform is another platform's scheduler and PMS on this
	// platform's bus, for disaster recovery.
	RolePlatform Role = "platform"
	// RoleAlarms is the alarm service: it watches nodes, rooms, platforms,
	// licences and hosts, and announces the alarms it raises and clears.
	RoleAlarms Role = "alarms"
	// RoleHost is a host's own connection: its management (status, plugin
	// stop and start) and the distributed channels between its servers.
	RoleHost Role = "host"
	// RoleInternal is the process running the embedded server: it may do
	// everything. Its key lives in that process's memory only and is never
	// written, so no other process can hold it.
	RoleInternal Role = "internal"
)

// Roles lists the roles that have a credential file, in a stable order.
func Roles() []Role {
	return []Role{RoleMCU, RoleRMS, RoleScheduler, RolePMS, RoleRegistry, RoleAPI, RoleBreakout, RoleSIP, RolePlatform, RoleAlarms, RoleHost}
}

// Describe says in a few words who uses a role's credential.
func (r Role) Describe() string {
	switch r {
	case RoleMCU:
		return "media nodes"
	case RoleRMS:
		return "the resource manager"
	case RoleScheduler:
		return "schedulers"
	case RolePMS:
		return "the platform monitor"
	case RoleRegistry:
		return "the registry"
	case RoleAPI:
		return "the REST API"
	case RoleBreakout:
		return "breakout rooms"
	case RoleSIP:
		return "SIP nodes"
	case RolePlatform:
		return "a whole platform joining this bus for disaster recovery"
	case RoleAlarms:
		return "the alarm service"
	case RoleHost:
		return "hosts: their management and the channels between their servers"
	case RoleInternal:
		return "the process running the bus"
	}
	return "unknown"
}

// Grant is what a role may do on the bus of one platform.
type Grant struct {
	// Publish lists the subjects the role may publish and send requests on.
	Publish []string
	// Subscribe lists the subjects the role may subscribe to, besides its
	// own inbox (Inbox).
	Subscribe []string
	// Respond lets the role answer requests it received: publish once on
	// each request's reply subject, whatever that is.
	Respond bool
}

// Subjects of the host role: hosts' management and the distributed
// channels between their servers.
const (
	HostSubjects    = "host.>"
	ChannelSubjects = "channel.>"
)

// InboxRoot is where every role's replies arrive: _INBOX.<role>. A
// connection's replies come to _INBOX.<role>.<name>.…, and on the embedded
// server a connection may read only its own (see Embedded).
const InboxRoot = "_INBOX"

// Inbox is the subject root of a role's replies.
func Inbox(role Role) string { return InboxRoot + "." + string(role) }

// Permissions is the permission table: what each role may do on the bus of
// platform (its moid; "" stands for any platform). It is the one place
// that says so; the embedded server enforces it, and an external server
// should be configured from it (AuthorizationConfig).
//
//	role       publishes                                            subscribes                                     answers requests
//	mcu        rms.node.P, mau.mcu.P                                mcu.* (its own mcu.<id> on the embedded server) yes
//	rms        rms.ntf.P                                            rms.node.P, rms.res.P, monitor.notify.server_room  yes
//	scheduler  mcu.*, rms.res.P, monitor.req.P, upu.P,              mau.cmmau.P, mau.cmcmu.*, mau.mcu.P,           yes
//	           meeting.css, meeting.mccntf                          upu.resync.P, rms.ntf.P, monitor.notify.*
//	pms        monitor.notify.server_room, monitor.notify.platform, monitor.req.P, rms.ntf.P                       yes
//	           rms.res.P
//	registry   upu.resync.P                                         upu.P                                          yes
//	api        mau.cmmau.P, mau.cmcmu.*, rms.res.P, upu.P,          meeting.css, meeting.mccntf, rms.ntf.P,        no
//	           monitor.req.P                                        monitor.notify.*, platform.license.ntf,
//	                                                                cdr.ntf.P, alarm.ntf.P
//	breakout   mcu.*, bms.*                                         meeting.mccntf, bms.*                          no
//	sip        upu.P, rms.res.P, cdr.ntf.P                          (nothing)                                      no
//	platform   monitor.req.P, meeting.css, meeting.mccntf           mau.cmcmu.*                                    yes
//	alarms     alarm.ntf.P, rms.res.P, monitor.req.P                rms.ntf.P, monitor.notify.*,                   no
//	                                                                platform.license.ntf, meeting.mccntf
//	host       host.>, channel.>                                    host.>, channel.>                              yes
//
// P is the platform whose bus it is: a platform joining another's bus
// (RolePlatform) asks that platform's monitor and serves the control of
// conferences it runs for that platform. Every role also subscribes to its
// own inbox (Inbox) for the replies to its requests.
//
// Limits, stated plainly: subjects, not payloads, are checked. A node's
// reports share the subject mau.mcu.P with every other node's, so a holder
// of the mcu credential can send reports in another node's name; a SIP
// node may publish on upu.P, where schedulers also report. Binding those
// to one sender needs per-sender subjects.
func Permissions(role Role, platform string) (Grant, error) {
	p := platform
	if p == "" {
		p = "*"
	}
	var g Grant
	switch role {
	case RoleMCU:
		g = Grant{
			Publish:   []string{protocol.SubjectRMSNodes(p), protocol.SubjectFromNodes(p)},
			Subscribe: []string{protocol.SubjectToNode("*")},
			Respond:   true,
		}
	case RoleRMS:
		g = Grant{
			Publish:   []string{protocol.SubjectRMSNotify(p)},
			Subscribe: []string{protocol.SubjectRMSNodes(p), protocol.SubjectRMS(p), protocol.SubjectServerRoomNotify},
			Respond:   true,
		}
	case RoleScheduler:
		g = Grant{
			Publish: []string{protocol.SubjectToNode("*"), protocol.SubjectRMS(p), protocol.SubjectPMS(p),
				protocol.SubjectRegistry(p), protocol.SubjectCMRequests, protocol.SubjectCMNotifications},
			Subscribe: []string{protocol.SubjectCMMAU(p), protocol.SubjectConfControl("*"), protocol.SubjectFromNodes(p),
				protocol.SubjectRegistryResync(p), protocol.SubjectRMSNotify(p),
				protocol.SubjectServerRoomNotify, protocol.SubjectPlatformNotify},
			Respond: true,
		}
	case RolePMS:
		g = Grant{
			Publish:   []string{protocol.SubjectServerRoomNotify, protocol.SubjectPlatformNotify, protocol.SubjectRMS(p)},
			Subscribe: []string{protocol.SubjectPMS(p), protocol.SubjectRMSNotify(p)},
			Respond:   true,
		}
	case RoleRegistry:
		g = Grant{
			Publish:   []string{protocol.SubjectRegistryResync(p)},
			Subscribe: []string{protocol.SubjectRegistry(p)},
			Respond:   true,
		}
	case RoleAPI:
		g = Grant{
			Publish: []string{protocol.SubjectCMMAU(p), protocol.SubjectConfControl("*"), protocol.SubjectRMS(p),
				protocol.SubjectRegistry(p), protocol.SubjectPMS(p)},
			Subscribe: []string{protocol.SubjectCMRequests, protocol.SubjectCMNotifications,
				protocol.SubjectRMSNotify(p), protocol.SubjectServerRoomNotify, protocol.SubjectPlatformNotify,
				protocol.SubjectLicenseNotify, protocol.SubjectCallNotify(p), protocol.SubjectAlarmNotify(p)},
		}
	case RoleBreakout:
		g = Grant{
			Publish:   []string{protocol.SubjectToNode("*"), protocol.SubjectBreakout("*")},
			Subscribe: []string{protocol.SubjectCMNotifications, protocol.SubjectBreakout("*")},
		}
	case RoleSIP:
		// The registry says which node runs a conference; RMS's node
		// list (RMS_NODELIST_REQ) says where that node takes SIP calls.
		// The call records server announces live-call changes.
		g = Grant{Publish: []string{protocol.SubjectRegistry(p), protocol.SubjectRMS(p), protocol.SubjectCallNotify(p)}}
	case RolePlatform:
		g = Grant{
			Publish:   []string{protocol.SubjectPMS(p), protocol.SubjectCMRequests, protocol.SubjectCMNotifications},
			Subscribe: []string{protocol.SubjectConfControl("*")},
			Respond:   true,
		}
	case RoleAlarms:
		g = Grant{
			Publish: []string{protocol.SubjectAlarmNotify(p), protocol.SubjectRMS(p), protocol.SubjectPMS(p)},
			Subscribe: []string{protocol.SubjectRMSNotify(p), protocol.SubjectServerRoomNotify,
				protocol.SubjectPlatformNotify, protocol.SubjectLicenseNotify, protocol.SubjectCMNotifications},
		}
	case RoleHost:
		// Management (host.status.*, host.query.*, host.ctl.*) and the
		// distributed channels of host files (channel.<name> by default).
		g = Grant{
			Publish:   []string{HostSubjects, ChannelSubjects},
			Subscribe: []string{HostSubjects, ChannelSubjects},
			Respond:   true,
		}
	default:
		return Grant{}, fmt.Errorf("%w: %q", ErrUnknownRole, role)
	}
	return g, nil
}

// AuthorizationConfig renders the permission table as the users block of
// an external nats-server configuration (authorization { users = [...] }),
// one nkey user per role with the public keys of creds, for the bus of
// platform. Roles creds has no key for are left out.
func AuthorizationConfig(creds *Creds, platform string) (string, error) {
	var b strings.Builder
	b.WriteString("# Convene's bus roles (generated): one nkey user per role.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, r := range Roles() {
		pub, err := creds.PublicKey(r)
		if err != nil {
			continue
		}
		g, err := Permissions(r, platform)
		if err != nil {
			return "", err
		}
		sub := append(append([]string(nil), g.Subscribe...), Inbox(r)+".>")
		sort.Strings(sub)
		fmt.Fprintf(&b, "    # %s: %s\n    { nkey: %s, permissions: {\n", r, r.Describe(), pub)
		fmt.Fprintf(&b, "        publish: { allow: %s }\n", quoteList(g.Publish))
		fmt.Fprintf(&b, "        subscribe: { allow: %s }\n", quoteList(sub))
		if g.Respond {
			b.WriteString("        allow_responses: true\n")
		}
		b.WriteString("    } }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = `"` + s + `"`
	}
	return "[" + strings.Join(q, ", ") + "]"
}
