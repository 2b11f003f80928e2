package drill

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNoNATSServer means the nats-server binary was not found.
var ErrNoNATSServer = errors.New("nats-server is not installed: `make test` installs it (apt-get install nats-server)")

// NATSServerBinary finds nats-server (Debian installs it in /usr/sbin,
// which a user's PATH may not hold).
func NATSServerBinary() (string, error) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoNATSServer
}

// natsServer is a nats-server process on loopback, configured with the
// bus roles' authorization that `convene nats-config` prints. A restart
// keeps its port, so clients reconnect to the same URL.
type natsServer struct {
	*proc
	port int
}

// startNATS writes dir/nats.conf (a listen line and authz, the
// authorization block) and starts nats-server on a free port.
func startNATS(dir, authz string) (*natsServer, error) {
	bin, err := NATSServerBinary()
	if err != nil {
		return nil, err
	}
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, "nats.conf")
		body := fmt.Sprintf("# nats-server of the drill: loopback only.\nlisten: 127.0.0.1:%d\n\n%s", port, authz)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			return nil, err
		}
		n := &natsServer{proc: newProc("nats-server", filepath.Join(dir, "nats-server.log"), bin, "-c", conf), port: port}
		if last = n.startAndWait(); last == nil {
			return n, nil
		}
		n.kill()
	}
	return nil, fmt.Errorf("nats-server did not start: %w", last)
}

// URL is nats://127.0.0.1:port.
func (n *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// startAndWait starts the server and waits until it greets a client.
func (n *natsServer) startAndWait() error {
	if err := n.start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := n.exitedEarly(); err != nil {
			return err
		}
		if greets("127.0.0.1:" + strconv.Itoa(n.port)) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nats-server on port %d did not answer within 10s; the end of its log:\n%s", n.port, tail(n.log, 20))
}

// restart kills the server and starts it again on the same port.
func (n *natsServer) restart() error {
	n.kill()
	return n.startAndWait()
}

// greets reports whether a NATS server answers at addr (its INFO line).
func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "INFO ")
}

// freePort is a port nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
