package sipplugin

import "strings"

// Node says how a host runs one SIP node (Sections).
type Node struct {
	// Name is the node's identity; "" is sip-<host name>.
	Name string
	// SIPListen is the node's UDP and TCP address; "none" runs no node.
	SIPListen string
	// AccountListen is the account API's own address; "none" serves it
	// only on the host's API.
	AccountListen string
	// Records adds the REST routes of subscribers and call records (a
	// host that serves the API).
	Records bool
	// Algorithms are the digest algorithms offered, preferred first; nil
	// is the proxy's default (SHA-256, MD5). Terminals that answer only
	// the first challenge and know only MD5 (Debian's sipp) need MD5
	// first.
	Algorithms []string
}

// Sections are the servers of a host file that run one SIP node as o
// says, by server name, each with its plugin and keys: what
// `convene serve` adds to its servers (with Records) and `convene sip`
// runs. The bus, store and records resources are named bus, store and
// records; the domain and the appid are the topology's sip: section.
// Marshalled into a host file's servers: they read
//
//	sip:         {plugin: convene.sip.proxy, listen: 127.0.0.1:5060, name: sip-a}
//	sip-account: {plugin: convene.sip.account, listen: 127.0.0.1:14500, account: sip-a}
//	sip-records: {plugin: convene.sip.records}
func Sections(o Node) map[string]map[string]any {
	out := map[string]map[string]any{}
	if o.Records {
		out["sip-records"] = map[string]any{"plugin": RecordsID}
	}
	if strings.EqualFold(o.SIPListen, "none") {
		return out
	}
	proxy := map[string]any{"plugin": ProxyID}
	acct := map[string]any{"plugin": AccountID}
	if o.SIPListen != "" {
		proxy["listen"] = o.SIPListen
	}
	if o.AccountListen != "" {
		acct["listen"] = o.AccountListen
	}
	if o.Name != "" {
		proxy["name"], acct["account"] = o.Name, o.Name
	}
	if len(o.Algorithms) > 0 {
		proxy["algorithms"] = o.Algorithms
	}
	out["sip"], out["sip-account"] = proxy, acct
	return out
}

// ServeSections are the servers `convene serve` adds to its host file
// for its SIP node (name "" is sip-<host name>): the node on sipListen
// (default 127.0.0.1:5060; "none" runs no node and no account API), the
// account API on accountListen (default 127.0.0.1:14500; "none" serves
// it only at POST /AgoraAccount on the API), and the REST routes of
// subscribers and call records. The host needs the bus, store and
// records resources, and the topology's sip.appid (the demo's is
// convene-demo).
func ServeSections(sipListen, accountListen, name string) map[string]map[string]any {
	return Sections(Node{Name: name, SIPListen: sipListen, AccountListen: accountListen, Records: true})
}
