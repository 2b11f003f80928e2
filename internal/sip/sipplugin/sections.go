package sipplugin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

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
//	sip-records: {plugin: convene.sip.records, bus: bus}
func Sections(o Node) map[string]map[string]any {
	out := map[string]map[string]any{}
	if o.Records {
		out["sip-records"] = map[string]any{"plugin": RecordsID, "bus": "bus"}
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

// ThirdPartySection is the server of the call records interface for the
// bank's own systems (convene.cdr.thirdparty) on listen ("" is seed
// 003's 127.0.0.1:8068), with the bearer token in tokenFile (see
// EnsureThirdPartyToken), over the records resource named records:
//
//	cdr-thirdparty: {plugin: convene.cdr.thirdparty, listen: 127.0.0.1:8068, token_file: .convene/cdr-token}
func ThirdPartySection(listen, tokenFile string) map[string]any {
	sec := map[string]any{"plugin": ThirdPartyID, "token_file": tokenFile}
	if listen != "" {
		sec["listen"] = listen
	}
	return sec
}

// EnsureThirdPartyToken writes a fresh random token (48 hex digits) to
// path, readable by its owner only, unless a file is there already; it
// reports whether it wrote one. The token is never printed: the
// operator hands the file's content to the other systems.
func EnsureThirdPartyToken(path string) (bool, error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("the call records interface's token file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(raw[:]) + "\n"); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return false, fmt.Errorf("the call records interface's token file: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return false, fmt.Errorf("the call records interface's token file: %w", err)
	}
	return true, nil
}
