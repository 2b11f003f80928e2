package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convene/convene/internal/childproc"
)

// ErrNotInstalled means no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (no initdb and postgres in /usr/lib/postgresql/*/bin): `make test` installs it (apt-get install postgresql)")

// errPortTaken means another process held the port when the server tried
// to listen, or answers on it.
var errPortTaken = childproc.ErrPortTaken

const (
	// startAttempts bounds the ports Launch tries.
	startAttempts = 5
	// startTimeout bounds the wait for a started server to accept
	// connections.
	startTimeout = 60 * time.Second
	// stopTimeout bounds a fast shutdown before the server is killed.
	stopTimeout = 30 * time.Second
	// superuser is the role initdb creates; connections need no password
	// (trust, on loopback only).
	superuser = "postgres"
)

// binDirs are the globs searched, newest version first, for initdb and
// postgres; tests replace them.
var binDirs = []string{"/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"}

// Server is a PostgreSQL server running on 127.0.0.1 from its own data
// directory.
type Server struct {
	dir     string // the caller's directory: data/ and postgres.log inside
	data    string
	port    int
	proc    *childproc.Proc // nil when not running
	logPath string
}

// Binaries finds the directory holding initdb and postgres.
func Binaries() (string, error) {
	var found []string
	for _, g := range binDirs {
		m, _ := filepath.Glob(g)
		slices.SortFunc(m, func(a, b string) int { return versionOf(b) - versionOf(a) })
		found = append(found, m...)
	}
	for _, d := range found {
		if isExec(filepath.Join(d, "postgres")) && isExec(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// versionOf is the major version in a path like /usr/lib/postgresql/15/bin.
func versionOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Launch creates a cluster in dir/data (dir must exist) and starts a server
// on a free loopback port, as the postgres OS user when this process runs
// as root (PostgreSQL refuses root). It returns once the server accepts
// connections and is verified to be the process it started. On Linux the
// server dies with the process that launched it, however that ends.
func Launch(dir string) (*Server, error) {
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, data: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "postgres.log")}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	if err := s.initdb(bin, cred); err != nil {
		return nil, err
	}
	err = childproc.OnFreePort(startAttempts, nil, func(port int) error {
		s.port = port
		return s.start(bin, cred)
	})
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return s, nil
}

// runAs is the credential to run PostgreSQL with: the postgres user when
// this process is root, nil (this process's user) otherwise.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(superuser)
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, PostgreSQL must run as the %q user, which does not exist (%w): `make test` installs postgresql, which creates it", superuser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user %q: %w", superuser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// initdb creates the cluster, owned by the user the server runs as.
func (s *Server) initdb(bin string, cred *syscall.Credential) error {
	if err := os.Mkdir(s.data, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := os.Chown(s.data, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if err := traversable(s.dir); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", superuser,
		"--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync")
	cmd.Dir = s.data
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w; output:\n%s", err, out)
	}
	return nil
}

// traversable lets another user reach dir: every directory from the
// system's temporary directory down to dir gains search permission (not
// listing), as t.TempDir makes them 0700. Directories above the temporary
// directory are left alone and must already be searchable.
func traversable(dir string) error {
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return err
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		inTmp := p == tmp || strings.HasPrefix(p, tmp+string(filepath.Separator))
		if fi.Mode().Perm()&0o001 == 0 {
			if !inTmp {
				return fmt.Errorf("pgtest: the %s user cannot reach %s: directory %s is not searchable by others; use a temporary directory (TMPDIR) that is", superuser, dir, p)
			}
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// start runs the server on s.port and waits until it answers as the
// process started.
func (s *Server) start(bin string, cred *syscall.Credential) error {
	p, err := childproc.Start(childproc.Spec{
		Name: fmt.Sprintf("pgtest: postgres on port %d", s.port),
		Path: filepath.Join(bin, "postgres"),
		Args: []string{"-D", s.data,
			"-p", strconv.Itoa(s.port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=",
			// A test server: durability is not wanted, speed is.
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=200",
			"-c", "shared_buffers=32MB",
		},
		Dir: s.data, Env: []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}, Log: s.logPath,
		// As the postgres user when this process is root; in a group of
		// its own, so that Kill ends its backends too.
		Cred: cred, Group: true,
		PortTaken: []string{"could not bind", "already in use"},
	})
	if err != nil {
		return err
	}
	s.proc = p
	if err := p.Wait(startTimeout, s.verify); err != nil {
		s.proc = nil
		return err
	}
	return nil
}

// verify connects and checks that the server answering on the port is the
// one started: its data directory is ours and its postmaster.pid names our
// process. errPortTaken means another server answers there.
func (s *Server) verify() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var data string
	if err := c.QueryRow(ctx, "SHOW data_directory").Scan(&data); err != nil {
		return err
	}
	if data != s.data {
		return fmt.Errorf("pgtest: a server of %s answers on port %d, not the one started: %w", data, s.port, errPortTaken)
	}
	b, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, _ := strconv.Atoi(strings.TrimSpace(first)); pid != s.PID() {
		return fmt.Errorf("pgtest: postmaster.pid names %d, the process started is %d", pid, s.PID())
	}
	return nil
}

// URL is a connection URL for database db as the superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, db)
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// PID is the server's (postmaster's) process id, 0 when it is not running.
func (s *Server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.PID()
}

// CreateDatabase creates an empty database named name ([a-z0-9_] only).
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("pgtest: database name %q: use lower-case letters, digits and _", name)
	}
	return s.admin(ctx, "CREATE DATABASE "+name)
}

// DropDatabase drops a database, closing the connections still open to it.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("pgtest: database name %q: use lower-case letters, digits and _", name)
	}
	return s.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

func (s *Server) admin(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

func validName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// Stop shuts the server down (fast shutdown: it ends its sessions and
// waits for its processes) and waits for it; one that does not stop in
// time is killed. Safe to call more than once.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	s.proc.Stop(syscall.SIGINT, stopTimeout)
	s.proc = nil
}

// Kill stops the server and every process of it with SIGKILL, as a
// crash, and waits for the postmaster to end.
func (s *Server) Kill() {
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}
