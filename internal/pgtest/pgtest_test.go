package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// Each Start is a database of its own on one shared server.
func TestStartGivesEachTestItsOwnDatabase(t *testing.T) {
	ctx := context.Background()
	var urls []string
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			url := Start(t)
			urls = append(urls, url)
			c := connect(t, url)
			if _, err := c.Exec(ctx, "CREATE TABLE only_here (v int)"); err != nil {
				t.Fatalf("a fresh database already has the table of another test: %v", err)
			}
		})
	}
	if len(urls) != 2 || urls[0] == urls[1] {
		t.Fatalf("urls %q: want two different databases", urls)
	}
	a, _, _ := strings.Cut(urls[0], "/t")
	b, _, _ := strings.Cut(urls[1], "/t")
	if a != b {
		t.Fatalf("two servers started (%s, %s): want one shared", a, b)
	}
	// The first test's database is gone with its test.
	c := connect(t, Start(t))
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", dbFromURL(urls[0])).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database of an ended test: count %d, %v; want dropped", n, err)
	}
}

func dbFromURL(url string) string {
	i := strings.LastIndexByte(url, '/')
	name, _, _ := strings.Cut(url[i+1:], "?")
	return name
}

func TestStartServerRunsItsOwnServer(t *testing.T) {
	s := StartServer(t)
	c := connect(t, s.URL("postgres"))
	ctx := context.Background()
	var data string
	if err := c.QueryRow(ctx, "SHOW data_directory").Scan(&data); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(data, os.TempDir()) || filepath.Base(data) != "data" {
		t.Fatalf("data directory %s: want one under the test's temporary directory", data)
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses root: it must run as postgres.
		if uid := processUID(t, s.PID()); uid == 0 {
			t.Fatalf("postgres %d runs as root", s.PID())
		}
	}
	if err := s.CreateDatabase(ctx, "Bad-Name"); err == nil {
		t.Fatal("CreateDatabase accepted a name that is not [a-z0-9_]")
	}
	s.Stop()
	if s.PID() != 0 {
		t.Fatal("PID after Stop: want 0")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c2, err := pgx.Connect(cctx, s.URL("postgres")); err == nil {
		_ = c2.Close(ctx)
		t.Fatal("something still answers after Stop")
	}
}

// processUID reads the real uid of a process from /proc.
func processUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(v)
			uid, _ := strconv.Atoi(f[0])
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

// Without PostgreSQL the error says how to get it; tests fail with it
// rather than skip.
func TestMissingPostgresSaysMakeTestInstallsIt(t *testing.T) {
	old := binDirs
	binDirs = []string{filepath.Join(t.TempDir(), "*", "bin")}
	t.Cleanup(func() { binDirs = old })
	_, err := Launch(t.TempDir())
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Launch without binaries = %v, want ErrNotInstalled", err)
	}
	if !strings.Contains(err.Error(), "make test") {
		t.Fatalf("error %q does not say `make test` installs PostgreSQL", err)
	}
}

func TestBinariesPrefersTheNewestVersion(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9", "15", "13"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"postgres", "initdb"} {
			if err := os.WriteFile(filepath.Join(bin, f), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := binDirs
	binDirs = []string{filepath.Join(root, "*", "bin")}
	t.Cleanup(func() { binDirs = old })
	got, err := Binaries()
	if err != nil || got != filepath.Join(root, "15", "bin") {
		t.Fatalf("Binaries = %q, %v; want version 15's", got, err)
	}
}

func TestDBName(t *testing.T) {
	for in, want := range map[string]string{
		"TestX/sub_case":         "testx_sub_case",
		"Test Ünïcode-and.dots":  "test__n_code_and_dots",
		strings.Repeat("a", 100): strings.Repeat("a", 40),
	} {
		if got := dbName(in); got != want || !validName("t1_"+got) {
			t.Errorf("dbName(%q) = %q, want %q", in, got, want)
		}
	}
}
