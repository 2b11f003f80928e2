package sipplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip"
	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/store"
)

// Connector opens bus connections by role: the bus resource
// (convene.bus.nats).
type Connector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
}

// Proxy is the convene.sip.proxy server: one SIP node.
type Proxy struct {
	ctx  host.Context
	cfg  *ProxyConfig
	opts sip.Options

	conn Connector
	st   *store.Store
	db   *records.DB
	bus  *bus.Bus
	svc  *cdr.Service
	rec  *recorder
	node *sip.Node
	// notes announces the calls' changes on the bus (nil without a bus
	// or call records).
	notes *notifier
}

// Provision reads the configuration and takes the resources.
func (p *Proxy) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*ProxyConfig)
	p.ctx, p.cfg = ctx, c
	if c.Name == "" {
		c.Name = defaultName(ctx)
	}
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	if c.Domain == "" {
		c.Domain = topo.SIP.Domain
	}
	if strings.EqualFold(c.Listen, "none") || c.Listen == "" {
		return errors.New("listen: a SIP node needs an address to serve (127.0.0.1:5060); leave the server out of the host file to run none")
	}
	algs := make([]digest.Algorithm, 0, len(c.Algorithms))
	for _, a := range c.Algorithms {
		algs = append(algs, digest.Algorithm(a))
	}
	p.opts = sip.Options{Name: c.Name, Platform: topo.Platform, Domain: c.Domain, UDP: c.Listen, TCP: c.Listen,
		Advertise: c.Advertise, DefaultExpires: c.DefaultExpires, MinExpires: c.MinExpires, MaxExpires: c.MaxExpires,
		NonceTTL: c.NonceTTL, SubscriberCacheTTL: c.SubscriberCache, Algorithms: algs, RingTimeout: c.RingTimeout, MaxCallDuration: c.MaxCallDuration,
		SweepInterval: c.SweepInterval}
	if p.st, err = host.ResourceOf[*store.Store](ctx, c.Store); err != nil {
		return err
	}
	if p.db, err = host.ResourceOf[*records.DB](ctx, c.Records); err != nil {
		return err
	}
	if c.Bus != "" {
		if p.conn, err = host.ResourceOf[Connector](ctx, c.Bus); err != nil {
			return err
		}
	}
	if c.CallRecords {
		opts := cdr.Options{TimeZone: c.TimeZone}
		if p.conn != nil {
			p.notes = newNotifier(topo.Platform, ctx.Logger())
			opts.Publish = p.notes.offer
		}
		if p.svc, err = cdr.New(opts, p.db, ctx.Logger()); err != nil {
			return err
		}
	}
	// Checked now, so that a mistake is reported before anything starts.
	if _, err := sip.New(p.opts, sip.Deps{Store: p.st, Subscribers: p.db}); err != nil {
		return err
	}
	return nil
}

// Start connects to the bus, starts the call records and the node.
func (p *Proxy) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			p.release(context.WithoutCancel(ctx))
		}
	}()
	deps := sip.Deps{Store: p.st, Subscribers: p.db, Log: p.ctx.Logger()}
	if p.conn != nil {
		if p.bus, err = p.conn.Connect(bus.RoleSIP, p.cfg.Name); err != nil {
			return fmt.Errorf("sip %s: the bus: %w", p.cfg.Name, err)
		}
		deps.Bus = p.bus
		if p.notes != nil {
			p.notes.register(p.ctx.Metrics(), p.ctx.Name())
			p.notes.start(p.bus)
		}
	}
	if p.svc != nil {
		if err = p.svc.Start(ctx); err != nil {
			return err
		}
		p.rec = newRecorder(p.svc, p.ctx.Logger())
		deps.Recorder = p.rec
		p.metrics()
	}
	if p.node, err = sip.New(p.opts, deps); err != nil {
		return err
	}
	return p.node.Start(ctx)
}

// metrics counts what the recorder wrote and lost.
func (p *Proxy) metrics() {
	labels := prometheus.Labels{"node": p.cfg.Name}
	r := p.rec
	for _, m := range []struct {
		name, help string
		v          func() int64
	}{
		{"convene_sip_call_steps_written_total", "Steps of calls (start, answer, end) written to the call records.", r.written.Load},
		{"convene_sip_call_steps_lost_total", "Steps of calls the call records could not take.", r.lost.Load},
		{"convene_sip_call_log_lines_lost_total", "Log lines of calls the call records could not take.", r.linesLost.Load},
	} {
		v := m.v
		_ = p.ctx.Metrics().Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help, ConstLabels: labels},
			func() float64 { return float64(v()) }))
	}
}

// Stop stops the node, then writes the call records it reported.
func (p *Proxy) Stop(ctx context.Context) error {
	return p.release(ctx)
}

func (p *Proxy) release(ctx context.Context) error {
	var errs []error
	if p.node != nil {
		errs = append(errs, p.node.Shutdown(ctx))
	}
	if p.rec != nil {
		p.rec.close(ctx)
	}
	if p.svc != nil {
		errs = append(errs, p.svc.Shutdown(ctx))
	}
	if p.notes != nil {
		p.notes.close()
	}
	if p.bus != nil {
		p.bus.Close()
	}
	return errors.Join(errs...)
}

// Health is the node's: serving or not.
func (p *Proxy) Health(context.Context) error {
	if p.node == nil || !p.node.Ready() {
		return errors.New("the SIP node is not serving")
	}
	return nil
}

// Node is the SIP node (after Start).
func (p *Proxy) Node() *sip.Node { return p.node }
