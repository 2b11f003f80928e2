package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/redisserver"
)

// layout says how many processes of each kind a deployment runs.
type layout struct {
	// apis, schedulers: processes of each; services: of RMS, PMS, the
	// registry and breakout each.
	apis, schedulers, services int
	// nodes are the simulated media nodes, nodeHosts the processes that
	// run them (nodes spread evenly over them; a host's nodes over the
	// rooms in turn, or, one node a host, the hosts over the rooms).
	nodes, nodeHosts int
}

// service is one host process of the deployment.
type service struct {
	hostSpec
	file string
	proc *proc
}

// deployment is a platform whose every service runs in its own process,
// against a real nats-server and a real redis-server, all on loopback in
// one directory.
type deployment struct {
	dir      string
	bin      string
	env      hostEnv
	nats     *natsServer
	redis    *redisserver.Server
	services []*service
	obs      *observer
	hosts    *hostWatch
	// readyTimeout bounds a host's start.
	readyTimeout time.Duration
}

// deploy starts a deployment of lay in dir with the convene binary bin.
// On error, what started is stopped.
func deploy(ctx context.Context, dir, bin string, lay layout, conferences int, logLevel string) (d *deployment, err error) {
	d = &deployment{dir: dir, bin: bin, readyTimeout: 60 * time.Second}
	defer func() {
		if err != nil {
			d.close()
			d = nil
		}
	}()
	topo := filepath.Join(dir, "topology.yaml")
	if err := writeTopology(topo, topology(conferences)); err != nil {
		return nil, err
	}
	credsDir := filepath.Join(dir, "creds")
	authz, err := d.natsAuthorization(ctx, credsDir, topo)
	if err != nil {
		return nil, err
	}
	if d.nats, err = startNATS(dir, authz); err != nil {
		return nil, err
	}
	redisDir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(redisDir, 0o700); err != nil {
		return nil, err
	}
	// The append-only file, fsynced at every write, is what lets the
	// store's data survive a kill.
	if d.redis, err = redisserver.Start(redisserver.Options{Dir: redisDir, AOF: true}); err != nil {
		return nil, err
	}
	capacity := max(conferences, 50)
	d.env = hostEnv{dir: dir, natsURL: d.nats.URL(), credsDir: credsDir, redisURL: d.redis.URL(), topology: topo, capacity: capacity}
	specs, err := plan(lay)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "hosts"), 0o700); err != nil {
		return nil, err
	}
	if d.hosts, err = newHostWatch(d.nats.URL(), filepath.Join(credsDir, bus.CredsFile(bus.RoleHost)), platformMoid); err != nil {
		return nil, err
	}
	for _, h := range specs {
		data, err := d.env.hostFile(h)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, "hosts", h.name+".yaml")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			return nil, err
		}
		p := newProc(h.name, filepath.Join(dir, h.name+".log"), bin, "host", "--config", file, "--log-level", logLevel)
		d.services = append(d.services, &service{hostSpec: h, file: file, proc: p})
	}
	// The services start in the order a platform needs them: RMS and PMS
	// first, the nodes last. Each waits until it is ready.
	for _, s := range d.services {
		if err := d.startService(ctx, s); err != nil {
			return nil, err
		}
	}
	d.obs, err = newObserver(ctx, d.nats.URL(), filepath.Join(credsDir, bus.CredsFile(bus.RoleScheduler)), d.redis.URL(),
		platformMoid, []string{tenant})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// natsAuthorization makes the bus roles' credentials in credsDir and
// answers the authorization block `convene nats-config` prints for them.
func (d *deployment) natsAuthorization(ctx context.Context, credsDir, topo string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, d.bin, "nats-config", "--creds", credsDir, "--config", topo, "--platform", platformMoid)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("drill: convene nats-config: %w: %s", err, errOut.String())
	}
	return out.String(), nil
}

// plan names the deployment's hosts, in the order they start.
func plan(lay layout) ([]hostSpec, error) {
	if lay.nodeHosts < 1 || lay.nodes < lay.nodeHosts {
		return nil, fmt.Errorf("drill: %d media nodes cannot fill %d node hosts: give at least one node a host", lay.nodes, lay.nodeHosts)
	}
	var specs []hostSpec
	instances := func(kind string, n int) {
		for i := 1; i <= n; i++ {
			name := kind
			if n > 1 {
				name = kind + "-" + strconv.Itoa(i)
			}
			specs = append(specs, hostSpec{name: name, kind: kind})
		}
	}
	instances("rms", lay.services)
	instances("pms", lay.services)
	instances("registry", lay.services)
	for i := 1; i <= lay.schedulers; i++ {
		id := "sched-" + string(rune('a'+i-1))
		specs = append(specs, hostSpec{name: id, kind: "scheduler", id: id})
	}
	instances("breakout", lay.services)
	for i := 1; i <= lay.apis; i++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		name := "api"
		if lay.apis > 1 {
			name = "api-" + strconv.Itoa(i)
		}
		specs = append(specs, hostSpec{name: name, kind: "api", listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	}
	for i := 1; i <= lay.nodeHosts; i++ {
		n := lay.nodes / lay.nodeHosts
		if i <= lay.nodes%lay.nodeHosts {
			n++
		}
		h := hostSpec{name: "nodes-" + strconv.Itoa(i), kind: "nodes", prefix: "node-" + strconv.Itoa(i)}
		if n == 1 {
			// One node a host: the hosts take the rooms in turn.
			h.room = rooms[(i-1)%len(rooms)]
		}
		for j := 1; j <= n; j++ {
			h.nodes = append(h.nodes, h.prefix+"-"+strconv.Itoa(j))
		}
		specs = append(specs, h)
	}
	return specs, nil
}

// startService starts a host and waits until it is ready.
func (d *deployment) startService(ctx context.Context, s *service) error {
	since := time.Now()
	if err := s.proc.start(); err != nil {
		return err
	}
	return d.hosts.waitReady(ctx, s.proc, since, since, d.readyTimeout)
}

// byKind lists the services of a kind.
func (d *deployment) byKind(kind string) []*service {
	var out []*service
	for _, s := range d.services {
		if s.kind == kind {
			out = append(out, s)
		}
	}
	return out
}

// byName is the service named name, nil when none is.
func (d *deployment) byName(name string) *service {
	for _, s := range d.services {
		if s.name == name {
			return s
		}
	}
	return nil
}

// liveNodes lists the media nodes whose processes run.
func (d *deployment) liveNodes() []string {
	var out []string
	for _, s := range d.byKind("nodes") {
		if s.proc.alive() {
			out = append(out, s.nodes...)
		}
	}
	return out
}

// allNodes lists every media node of the deployment.
func (d *deployment) allNodes() []string {
	var out []string
	for _, s := range d.byKind("nodes") {
		out = append(out, s.nodes...)
	}
	return out
}

// died answers an error naming every service process that ended by
// itself: a drill kills and stops only on purpose.
func (d *deployment) died() error {
	var errs []error
	for _, s := range d.services {
		if s.proc.pid() != 0 {
			if err := s.proc.exitedEarly(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// apiAddrs are the API processes' addresses.
func (d *deployment) apiAddrs() []string {
	var out []string
	for _, s := range d.byKind("api") {
		out = append(out, s.listen)
	}
	return out
}

// close stops every process: the hosts first (cleanly, so that they
// leave nothing behind), then the servers.
func (d *deployment) close() {
	if d.obs != nil {
		d.obs.close()
	}
	for i := len(d.services) - 1; i >= 0; i-- {
		_ = d.services[i].proc.stop(10 * time.Second)
	}
	if d.hosts != nil {
		d.hosts.close()
	}
	if d.nats != nil {
		d.nats.kill()
	}
	if d.redis != nil {
		d.redis.Kill()
	}
}
