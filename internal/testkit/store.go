package testkit

import (
	"context"
	"testing"

	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/store"
)

// Backend is the server a test's store runs on.
type Backend string

const (
	// Embedded is the in-process Redis-protocol server.
	Embedded Backend = "embedded"
	// RedisServer is a real redis-server on loopback.
	RedisServer Backend = "redis-server"
)

// Backends are both, in the order EachStore runs them.
var Backends = []Backend{Embedded, RedisServer}

// StoreURL starts a server of kind b, ended when the test ends, and
// returns its URL.
func StoreURL(t testing.TB, b Backend) string {
	t.Helper()
	if b == RedisServer {
		return redistest.Start(t, redistest.Options{}).URL()
	}
	e, err := store.StartEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.URL()
}

// OpenStore opens a store client on url, closed when the test ends.
func OpenStore(t testing.TB, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Store starts a server of kind b and opens a store on it.
func Store(t testing.TB, b Backend) *store.Store {
	t.Helper()
	return OpenStore(t, StoreURL(t, b))
}

// EachStore runs f as a subtest on each backend, named for it.
func EachStore(t *testing.T, f func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) { f(t, Store(t, b)) })
	}
}
