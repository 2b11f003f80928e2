package bus

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Creds is a set of credentials, one nkey per role: the keys an embedded
// server accepts and the keys its clients sign with. A set lives in a
// directory, one file per role (<role>.creds, mode 0600, directory 0700),
// or in memory only. Every set also holds an in-memory key for
// RoleInternal, which is never written.
type Creds struct {
	dir  string
	keys map[Role]nkeys.KeyPair
	jwts map[Role]string // roles whose file is a NATS user JWT with its seed
}

// CredsFile is the name of a role's file in a credentials directory.
func CredsFile(role Role) string { return string(role) + ".creds" }

// GenerateCreds makes a new set in memory.
func GenerateCreds() (*Creds, error) {
	c := &Creds{keys: map[Role]nkeys.KeyPair{}}
	for _, r := range append(Roles(), RoleInternal) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("bus: generate a key for %s: %w", r, err)
		}
		c.keys[r] = kp
	}
	return c, nil
}

var (
	processOnce  sync.Once
	processCreds *Creds
	processErr   error
)

// ProcessCreds is this process's own set, made in memory on first use: an
// embedded server started without a set accepts it, so servers and
// clients in one process (tests, drills, platforms run side by side) reach
// each other while no other process can.
func ProcessCreds() (*Creds, error) {
	processOnce.Do(func() { processCreds, processErr = GenerateCreds() })
	return processCreds, processErr
}

// OpenCreds reads the set in dir and writes a new credential for each role
// that has none yet (so files are generated once and reused after). The
// directory is made with mode 0700, files with 0600.
func OpenCreds(dir string) (*Creds, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bus: credentials directory: %w", err)
	}
	c, err := readCreds(dir, true)
	if err != nil {
		return nil, err
	}
	for _, r := range Roles() {
		if _, ok := c.keys[r]; ok {
			continue
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("bus: generate a key for %s: %w", r, err)
		}
		if err := writeCredsFile(filepath.Join(dir, CredsFile(r)), r, kp); err != nil {
			return nil, err
		}
		c.keys[r] = kp
	}
	return c, nil
}

// ReadCreds reads the set in dir without writing anything; roles without a
// file have no credential (connecting as one fails with ErrNoCredential).
func ReadCreds(dir string) (*Creds, error) { return readCreds(dir, false) }

func readCreds(dir string, lenient bool) (*Creds, error) {
	c := &Creds{dir: dir, keys: map[Role]nkeys.KeyPair{}}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("bus: generate the internal key: %w", err)
	}
	c.keys[RoleInternal] = kp
	found := 0
	for _, r := range Roles() {
		path := filepath.Join(dir, CredsFile(r))
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bus: credential of %s: %w", r, err)
		}
		kp, err := nkeys.ParseDecoratedUserNKey(data)
		isJWT := bytes.Contains(data, jwtMarker)
		clear(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w; remove it to have a new one generated, or put the role's nkey seed there", ErrBadCredential, path, err)
		}
		if isJWT {
			if c.jwts == nil {
				c.jwts = map[Role]string{}
			}
			c.jwts[r] = path
		}
		c.keys[r] = kp
		found++
	}
	if found == 0 && !lenient {
		return nil, fmt.Errorf("%w: no <role>.creds files in %s", ErrNoCredential, dir)
	}
	return c, nil
}

// writeCredsFile writes a role's seed in the decorated nkey format that
// nats tools and nats.go's nkey options read; the file is created with
// mode 0600 and never replaced.
func writeCredsFile(path string, r Role, kp nkeys.KeyPair) error {
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("-----BEGIN USER NKEY SEED-----\n")
	b.Write(seed)
	b.WriteString("\n------END USER NKEY SEED------\n\n")
	b.WriteString("*************************************************************\n")
	fmt.Fprintf(&b, "Convene bus credential of the role %q (%s).\n", r, r.Describe())
	fmt.Fprintf(&b, "Public key: %s\n", pub)
	b.WriteString("This seed is a secret: whoever holds it acts as this role.\n")
	b.WriteString("*************************************************************\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("bus: write the credential of %s: %w", r, err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("bus: write the credential of %s: %w", r, err)
	}
	return f.Close()
}

// Dir is the directory the set lives in; "" for a set in memory.
func (c *Creds) Dir() string { return c.dir }

// File is the path of a role's credential file; "" for a set in memory.
func (c *Creds) File(r Role) string {
	if c.dir == "" {
		return ""
	}
	return filepath.Join(c.dir, CredsFile(r))
}

// PublicKey is a role's public nkey.
func (c *Creds) PublicKey(r Role) (string, error) {
	kp, ok := c.keys[r]
	if !ok {
		return "", fmt.Errorf("%w for the role %s", ErrNoCredential, r)
	}
	return kp.PublicKey()
}

// roleOf finds the role whose public key is pub.
func (c *Creds) roleOf(pub string) (Role, bool) {
	for r, kp := range c.keys {
		if p, err := kp.PublicKey(); err == nil && p == pub {
			return r, true
		}
	}
	return "", false
}

// option signs the server's challenge with a role's key (and presents
// its JWT, for a role whose file holds one).
func (c *Creds) option(r Role) (nats.Option, error) {
	if path := c.jwts[r]; path != "" {
		return nats.UserCredentials(path), nil
	}
	kp, ok := c.keys[r]
	if !ok {
		where := "in memory"
		if c.dir != "" {
			where = "in " + c.dir
		}
		return nil, fmt.Errorf("%w: none for the role %s %s; give its %s", ErrNoCredential, r, where, CredsFile(r))
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return nats.Nkey(pub, kp.Sign), nil
}

var jwtMarker = []byte("BEGIN NATS USER JWT")

// credsFileOption reads a creds file of either kind: a NATS user JWT with
// its seed (the standard .creds file of an operator-mode server), or an
// nkey seed alone (decorated, as OpenCreds writes, or bare).
func credsFileOption(path string) (nats.Option, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCredential, err)
	}
	defer clear(data)
	if bytes.Contains(data, jwtMarker) {
		if _, err := nkeys.ParseDecoratedJWT(data); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadCredential, path, err)
		}
		return nats.UserCredentials(path), nil
	}
	if _, err := nkeys.ParseDecoratedUserNKey(data); err != nil {
		return nil, fmt.Errorf("%w: %s: neither a NATS user JWT with its seed nor a user nkey seed (%w)", ErrBadCredential, path, err)
	}
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadCredential, path, err)
	}
	return opt, nil
}
