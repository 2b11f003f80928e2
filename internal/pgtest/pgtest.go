package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shared is the package's server, started by the first Start.
var shared struct {
	main bool // Main runs the tests
	once sync.Once
	dir  string
	srv  *Server
	err  error
	n    atomic.Int64 // databases made
}

// Main runs the package's tests, then stops the shared server and removes
// its directory. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	shared.main = true
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// Start returns the URL of a new, empty database on the package's shared
// server, starting the server on first use; the database is dropped when
// the test ends. A missing PostgreSQL fails the test.
func Start(t testing.TB) string {
	t.Helper()
	if !shared.main {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main(m), which stops the shared PostgreSQL server when the tests end")
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "pgtest-")
		if shared.err == nil {
			shared.srv, shared.err = Launch(shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	name := fmt.Sprintf("t%d_%s", shared.n.Add(1), dbName(t.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := shared.srv.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := shared.srv.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return shared.srv.URL(name)
}

// StartServer starts a server of the test's own in t.TempDir(), stopped
// when the test ends. A missing PostgreSQL fails the test.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// dbName is a test name folded to [a-z0-9_], short enough for an
// identifier with its prefix.
func dbName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		if b.Len() == 40 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
