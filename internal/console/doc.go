// Package console is the operator console (SPEC §8): server-rendered
// pages served by the binary on the API's listener, plugin
// convene.console.
//
// It owns:
//   - sessions (session.go): an API token exchanged at POST /v1/session
//     for an HttpOnly, SameSite=Strict cookie naming a random session id;
//     the token stays on the server, each session has its own CSRF token
//     and expires;
//   - the pages (pages.go, conferences.go, calls.go) rendered with
//     html/template from what the REST API answers the session's token
//     (upstream.go), so the token's role applies to every read and every
//     action; a readonly token sees no action buttons; the conference
//     list reads the API one page at a time (confpage.go), and only the
//     pages that count by room read a platform's whole list, through a
//     cache (confcache.go);
//   - the live updates (events.go): the API's event stream relayed to the
//     page, whose script swaps the changed fragments with htmx;
//   - its static files (static/, vendored htmx and uPlot) through go:embed.
//
// Every page reads without JavaScript. It imports internal/host,
// internal/httpkit, internal/codes, internal/config and internal/apiclient;
// it must never import another service: it sees the platform only through
// the API.
package console
