// Package redistest starts a real redis-server on loopback for a test, in
// the test's temporary directory, killed when the test ends (and, on
// Linux, when the test binary dies without ending it, a timeout
// included). The server answering on its port is checked to be the one
// started, so two packages testing at once never share one.
package redistest

import (
	"testing"

	"github.com/convene/convene/internal/redisserver"
)

// Options tune the server.
type Options struct {
	// AOF turns on the append-only file with fsync every write.
	AOF bool
}

// Server is a running redis-server.
type Server struct {
	*redisserver.Server
	t testing.TB
}

// Start starts a server and registers its end with t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := redisserver.Start(redisserver.Options{Dir: t.TempDir(), AOF: opts.AOF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return &Server{Server: s, t: t}
}

// Restart kills the server and starts it again; with AOF its data
// survives. A failure ends the test.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Server.Restart(); err != nil {
		s.t.Fatal(err)
	}
}
