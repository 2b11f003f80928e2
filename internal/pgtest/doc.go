// Package pgtest runs a real PostgreSQL server on loopback for tests: its
// own cluster (initdb) in its own directory, on a free port, as the
// postgres OS user when the tests run as root (PostgreSQL refuses root).
// The server answering on the port is checked to be the one started, and
// on Linux it dies with the test binary however that ends (it is started
// through internal/childproc, as redis-server is).
//
// Start gives a test a fresh database on a server shared by the package's
// tests (one initdb per test binary); the package's TestMain calls Main,
// which stops that server when the tests end. StartServer gives a test a
// server of its own. When PostgreSQL is not installed the test fails (it
// never skips): `make test` installs it.
//
// pgtest is test support: only tests import it, and it imports no
// Convene package but internal/childproc.
package pgtest
