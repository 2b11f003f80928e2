package bus

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

func TestCredsAreGeneratedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	c, err := OpenCreds(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", st.Mode().Perm())
	}
	contents := map[Role][]byte{}
	for _, r := range Roles() {
		path := filepath.Join(dir, string(r)+".creds")
		if c.File(r) != path {
			t.Errorf("File(%s) = %s, want %s", r, c.File(r), path)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", path, st.Mode().Perm())
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		contents[r] = data
		if !bytes.Contains(data, []byte("-----BEGIN USER NKEY SEED-----")) {
			t.Errorf("%s is not a decorated nkey seed:\n%s", path, data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "internal.creds")); !os.IsNotExist(err) {
		t.Errorf("the internal key was written: %v", err)
	}

	// Opened again: the same keys, the files untouched; a lost file is
	// made again, alone.
	if err := os.Remove(filepath.Join(dir, "sip.creds")); err != nil {
		t.Fatal(err)
	}
	c2, err := OpenCreds(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Roles() {
		data, err := os.ReadFile(c2.File(r))
		if err != nil {
			t.Fatal(err)
		}
		p1, _ := c.PublicKey(r)
		p2, _ := c2.PublicKey(r)
		if r == RoleSIP {
			if p1 == p2 {
				t.Error("the lost sip.creds came back with the old key")
			}
			continue
		}
		if p1 != p2 || !bytes.Equal(data, contents[r]) {
			t.Errorf("%s changed when opened again", r)
		}
	}
	p1, _ := c.PublicKey(RoleInternal)
	p2, _ := c2.PublicKey(RoleInternal)
	if p1 == p2 {
		t.Error("the internal key is the same in two sets")
	}

	// A server started on the set accepts its files.
	e, err := StartEmbedded(EmbeddedOptions{Creds: c2, Platform: testPlatform, NodeConnPrefix: testNodePfx})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	b, err := Connect(Options{URL: e.URL(), CredsFile: c2.File(RoleMCU), Role: RoleMCU, Name: "mcu:n1"}, nil)
	if err != nil {
		t.Fatalf("connect with mcu.creds: %v", err)
	}
	b.Close()
	read, err := ReadCreds(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err = Connect(Options{URL: e.URL(), Creds: read, Role: RoleRMS, Name: "rms"}, nil)
	if err != nil {
		t.Fatalf("connect with a set read from the directory: %v", err)
	}
	b.Close()
}

func TestBadCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadCreds(dir); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("ReadCreds of an empty directory = %v", err)
	}
	bad := filepath.Join(dir, "mcu.creds")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCreds(dir); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("OpenCreds with a broken file = %v", err)
	}
	if _, err := Connect(Options{URL: "nats://127.0.0.1:1", CredsFile: bad}, nil); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("Connect with a broken file = %v", err)
	}
	if _, err := Connect(Options{URL: "nats://127.0.0.1:1", CredsFile: filepath.Join(dir, "none")}, nil); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("Connect with a missing file = %v", err)
	}
	read, err := ReadCreds(t.TempDir())
	if err == nil {
		_, err = Connect(Options{URL: "nats://127.0.0.1:1", Creds: read, Role: RoleMCU}, nil)
	}
	if !errors.Is(err, ErrNoCredential) {
		t.Fatalf("a role without a file = %v", err)
	}
}

// TestJWTCredsFile connects with a standard NATS .creds file (user JWT and
// seed) to a server in operator mode, as production NATS may be run.
func TestJWTCredsFile(t *testing.T) {
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	if _, err := oc.Encode(okp); err != nil {
		t.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	uc := jwt.NewUserClaims(upub)
	uc.Pub.Allow.Add("svc")
	uc.Sub.Allow.Add(Inbox(RoleAPI) + ".>")
	ujwt, err := uc.Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "api.creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}

	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("operator-mode server not ready")
	}
	// Without the file: refused. With it: allowed, and bound by the JWT.
	if _, err := Connect(Options{URL: srv.ClientURL(), Role: RoleAPI}, nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("no credentials = %v, want ErrUnauthorized", err)
	}
	b, err := Connect(Options{URL: srv.ClientURL(), CredsFile: path, Role: RoleAPI, Name: "api"}, nil)
	if err != nil {
		t.Fatalf("connect with a JWT creds file: %v", err)
	}
	defer b.Close()
	if err := b.Publish("elsewhere", struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); !errors.Is(err, ErrDenied) {
		t.Fatalf("the JWT's permissions do not hold: %v", err)
	}
	// A directory of role files may hold JWT creds files too.
	read, err := ReadCreds(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Connect(Options{URL: srv.ClientURL(), Creds: read, Role: RoleAPI, Name: "api-2"}, nil)
	if err != nil {
		t.Fatalf("connect with a directory holding a JWT creds file: %v", err)
	}
	b2.Close()
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":             "nats://127.0.0.1:4222",
		"nats://sys:s3cret@127.0.0.1:4222":  "nats://sys:xxxxx@127.0.0.1:4222",
		"nats://token@host:4222":            "nats://token@host:4222",
		"tls://u:p%40ss@nats.example:4443/": "tls://u:xxxxx@nats.example:4443/",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%s) = %s, want %s", in, got, want)
		}
	}
	// A refused connection's error names the server without the password.
	_, err := Connect(Options{URL: "nats://sys:s3cret@127.0.0.1:1"}, nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error = %v", err)
	}
}

func TestAuthorizationConfig(t *testing.T) {
	c, err := GenerateCreds()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := AuthorizationConfig(c, testPlatform)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Roles() {
		pub, _ := c.PublicKey(r)
		if !strings.Contains(conf, "nkey: "+pub) {
			t.Errorf("no user for %s", r)
		}
	}
	internal, _ := c.PublicKey(RoleInternal)
	if strings.Contains(conf, internal) {
		t.Error("the internal key is in the configuration")
	}
	// nats-server reads it, and a role's connection gets its permissions.
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte("host: 127.0.0.1\nport: -1\n"+conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server cannot read it: %v\n%s", err, conf)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	b, err := Connect(Options{URL: srv.ClientURL(), Creds: c, Role: RoleSIP, Name: "sip-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Publish("mau.cmmau."+testPlatform, struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); !errors.Is(err, ErrDenied) {
		t.Fatalf("a SIP node created a conference on the external server: %v", err)
	}
}
