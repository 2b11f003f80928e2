// Package drill runs the platform's drills and judges them with one
// verdict (verdict.go).
//
// The drills in this process (stack.go, stack_pair.go: `convene drill`
// and `--platforms 2`) run the platform through internal/stack, load it
// with internal/bench's load generator, break it (a media node, a server
// room, the active scheduler; a whole platform and its return), and
// measure it after each step.
//
// The drills that need every service in an OS process of its own
// (`convene drill --processes` and `--rolling`, processes.go, rolling.go)
// writes a host file per process in a directory of its own, starts
// `convene host --config FILE` for each, a real nats-server (configured
// with the bus roles' authorization `convene nats-config` prints) and a
// real redis-server (internal/redisserver, with its append-only file so
// that a killed store keeps every acknowledged write), then breaks and
// restarts them: SIGKILL for a crash, SIGTERM for a rolling restart.
//
// It sees the platform as an operator could, from outside: the store, RMS's
// node list and the media nodes' own conference lists over the bus (with
// the schedulers' credential), the hosts' status (host.status.<platform>,
// with the host role's), and the REST API. After each step it waits until
// the platform settles and judges it (verdict.go): every conference that
// must run runs, the same one (by number, tenant and licence class), once,
// on a live node; nothing else runs, waits or is being created; the audit
// (internal/audit) holds, licence counts included.
//
// Every child process dies with the drill on Linux, however the drill
// ends. Those drills use no service in this process: they run them.
package drill
