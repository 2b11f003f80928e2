package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Example is the demo topology as a configuration file, every field
// commented: what `convene config example` prints. Parse reads it back as
// Demo(). Its API tokens are an example, commented out: without tokens,
// `convene serve` makes an operator token at start.
func Example() ([]byte, error) {
	var root yaml.Node
	if err := root.Encode(Demo()); err != nil {
		return nil, fmt.Errorf("config: example: %w", err)
	}
	annotate(&root, reflect.TypeOf(Config{}), "")
	var out bytes.Buffer
	out.WriteString(exampleHeader)
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, fmt.Errorf("config: example: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: example: %w", err)
	}
	tokens, err := exampleTokenBlock()
	if err != nil {
		return nil, err
	}
	// The tokens are left out (null), with the example under the key.
	const empty = "\n  tokens: []\n"
	if !bytes.Contains(out.Bytes(), []byte(empty)) {
		return nil, errors.New("config: example: no api.tokens to put the example under")
	}
	return bytes.Replace(out.Bytes(), []byte(empty), []byte("\n  tokens:\n"+tokens), 1), nil
}

const exampleHeader = `# Convene configuration: the topology (platforms, server rooms, user
# domains and their licences, API tokens) and the tuning of each service.
# This is the built-in demo topology that ` + "`convene serve`" + ` runs without
# --config; edit it and run ` + "`convene serve --config FILE`" + `.
# Unknown keys are errors. Durations are written 500ms, 3s, 5m, 1h.

`

// ExampleTokenSecret is the placeholder secret of the example tokens;
// Validate refuses it, so that the example is never used as it is.
const ExampleTokenSecret = "REPLACE-with-a-secret-of-at-least-16-characters"

// exampleTokens are one token of each role for the demo topology, the
// tenant's first: it shows every field.
func exampleTokens() []Token {
	return []Token{
		{Name: "demo-tenant-portal", Token: ExampleTokenSecret, Role: RoleTenant, Domains: []string{"demo"}},
		{Name: "operations", Token: ExampleTokenSecret, Role: RoleOperator},
		{Name: "dashboard", Token: ExampleTokenSecret, Role: RoleReadonly},
	}
}

// exampleTokenBlock renders the example tokens as the items of api.tokens,
// commented out, each line ending in a newline.
func exampleTokenBlock() (string, error) {
	var n yaml.Node
	if err := n.Encode(exampleTokens()); err != nil {
		return "", fmt.Errorf("config: example tokens: %w", err)
	}
	annotate(&n, reflect.TypeOf([]Token{}), "api.tokens")
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return "", fmt.Errorf("config: example tokens: %w", err)
	}
	var out strings.Builder
	out.WriteString(exampleTokenIntro)
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		out.WriteString("    # " + line + "\n")
	}
	return out.String(), nil
}

// exampleTokenIntro introduces the commented example under api.tokens.
const exampleTokenIntro = `    # An example with one token of each role. To use it, put in a secret of
    # your own for each (openssl rand -hex 24), then remove the "# " that
    # starts each line below.
`

// annotate sets the comment of every key of a mapping node encoded from a
// value of type t, from fieldDocs; path is the key path of the node. Only
// the first item of a list is annotated.
func annotate(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			annotate(c, t, path)
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		if len(n.Content) > 0 {
			annotate(n.Content[0], t.Elem(), path+"[]")
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			f, ok := fieldByTag(t, key.Value)
			if !ok {
				continue
			}
			p := joinPath(path, key.Value)
			if doc, ok := fieldDocs[p]; ok {
				key.HeadComment = doc
			}
			annotate(n.Content[i+1], f.Type, p)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldByTag finds the field of struct type t whose YAML name is name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlName is a field's key in YAML, or "" when it has none.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// findKey follows keys from a document or mapping node and returns the
// last key's node, or nil.
func findKey(n *yaml.Node, keys ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for i, k := range keys {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				if i == len(keys)-1 {
					return n.Content[j]
				}
				next = n.Content[j+1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return nil
}

// fieldDocs explains every field of the configuration, by key path ("[]"
// for the items of a list). A test checks that each field has one.
var fieldDocs = map[string]string{
	"platform": "The moid of the platform this process serves; default the first one\n" +
		"listed under platforms. `convene serve --platform` overrides it.",
	"platforms": "The platforms (deployments, each in its own datacenter with its own\n" +
		"store and bus) of the service domain.",
	"platforms[].moid": "The platform's id: 1 to 64 letters, digits, '-' or '_'.",
	"platforms[].name": "A name for people; default the moid.",
	"platforms[].number_segment": "The prefix of every number allocated for this platform's conferences\n" +
		"and templates (digits; quote it so that YAML keeps it a string).",
	"platforms[].e164_digits": "How many digits follow the segment in an allocated number: 3 to 12;\n" +
		"default 5.",
	"platforms[].backups": "Platforms (moids) that take this platform's conferences when it\n" +
		"fails (disaster recovery); none by default.",
	"platforms[].rooms": "The server rooms of the platform; at least one.",
	"platforms[].rooms[].moid": "The room's id: 1 to 64 letters, digits, '-' or '_', unique in the\n" +
		"topology.",
	"platforms[].rooms[].name": "A name for people; default the moid.",
	"platforms[].rooms[].type": "main or secondary (000 §1.2: conferences go to main rooms first).",
	"platforms[].store": "This platform's store (redis://host:port/db) as the schedulers of\n" +
		"other platforms reach it in disaster recovery; empty for a lone platform.",
	"platforms[].bus": "This platform's bus (nats://host:port) as other platforms reach it\n" +
		"in disaster recovery; empty for a lone platform.",
	"domains":        "The user domains (tenants), each on one platform with its licence.",
	"domains[].moid": "The domain's id: 1 to 64 letters, digits, '-' or '_'.",
	"domains[].name": "A name for people; default the moid.",
	"domains[].platform": "The moid of the platform the domain belongs to; default the one\n" +
		"this process serves.",
	"domains[].disabled":          "true refuses every new conference of the domain.",
	"domains[].enable_h265":       "The domain may use H.265.",
	"domains[].enable_hd_meeting": "The domain may book 1080p conferences.",
	"domains[].license": "How many conferences of each class may run at once: class\n" +
		"<parties>_<resolution>, parties 8, 32, 64 or 192, resolution 720p\n" +
		"or 1080p. A class left out may run none.",
	"api":        "The REST API (the conference manager).",
	"api.listen": "The address the API listens on; `convene serve --listen` overrides it.",
	"api.tokens": "Bearer tokens of the API. Each has a name (shown in logs), a secret\n" +
		"of at least 16 characters, and a role: operator (everything),\n" +
		"tenant (only the user domains it lists: their conferences, templates\n" +
		"and licence view; another domain's conferences do not exist for it)\n" +
		"or readonly (reads only). A token without a role is an operator.\n" +
		"With no tokens, `convene serve` makes an operator token at start and\n" +
		"saves it to <data-dir>/token; `convene serve --api-token` adds one.",
	"api.tokens[].name":    "Who holds the token; shown in logs, never the secret.",
	"api.tokens[].token":   "The secret, at least 16 characters.",
	"api.tokens[].role":    "operator, tenant or readonly; default operator.",
	"api.tokens[].domains": "The user domains (moids) a tenant token acts for; tenant tokens only.",
	"scheduler":            "The scheduler (CSS): booking, control and keeping conferences alive.",
	"scheduler.node_timeout": "How long the scheduler waits for a media node's answer to create,\n" +
		"restore, rename and the like.",
	"scheduler.rms_timeout":        "How long the scheduler waits for the resource manager's offer of nodes.",
	"scheduler.end_check_interval": "How often conferences' end times are checked.",
	"scheduler.will_end_notice": "How long before its end a conference's manager and node are told it\n" +
		"is about to end.",
	"scheduler.monitor_ttl": "How long a monitoring session lives without a keep-alive.",
	"scheduler.max_duration_minutes": "The longest a conference may be booked for, in minutes, and the\n" +
		"most one delay may add; default 10080 (a week).",
	"scheduler.lease_ttl": "How long the active scheduler's lease lasts without renewal: a\n" +
		"standby takes over within lease_ttl + lease_renew of its death.",
	"scheduler.lease_renew": "How often the active scheduler renews its lease; shorter than lease_ttl.",
	"scheduler.restore_interval": "How often the restore pass looks for conferences waiting to be\n" +
		"restored.",
	"scheduler.restore_backoff": "The first wait after a failed restore of a conference, doubling up\n" +
		"to 30s.",
	"scheduler.start_grace": "How long a scheduler that became active waits for the nodes'\n" +
		"conference lists before restoring what no node reports.",
	"scheduler.sweep_interval": "How often creates and restores abandoned halfway are looked for.",
	"rms":                      "The resource manager (RMS): media nodes and their liveness.",
	"rms.heartbeat_interval":   "How often media nodes beat.",
	"rms.missed_heartbeats": "After how many missed beats a media node is down; at least 1. The\n" +
		"defaults (200ms x 4) find a frozen node within 800ms of its last beat.",
	"rms.conflist_interval": "How often media nodes report the conferences they host.",
	"rms.disconnect_grace": "A node whose bus connection ends and is not back within this is\n" +
		"down before its beats are missed; default the heartbeat interval.",
	"rms.overload_lag": "While the resource manager's liveness checks run later than this, its\n" +
		"process is starved of CPU and heartbeats may wait unread: no node is\n" +
		"taken down, and every node gets a fresh heartbeat window once the\n" +
		"checks run on time again; default half the heartbeat interval.",
	"rms.overload_hold": "The longest one starved spell, or a backlog of node messages not yet\n" +
		"handled, keeps nodes from being taken down; past it a frozen node is\n" +
		"found anyway.",
	"sip": "The SIP edge (seed 003): the registrar and proxy nodes, and the\n" +
		"account API terminals ask before they call.",
	"sip.domain": "The platform's SIP domain: subscribers register as user@domain (or\n" +
		"at a node's own address), and it is the realm of their credentials;\n" +
		"default sip.convene.local.",
	"sip.appid": "The secret of the account API's tokens (md5 of appid + timestamp);\n" +
		"without it the account API does not serve. The demo's is convene-demo:\n" +
		"set your own.",
}
