package sipplugin

import (
	"context"
	"errors"
	"strings"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/sip/account"
)

// Account is the convene.sip.account server: seed 003's account API.
type Account struct {
	svc    *account.Service
	handle *account.Handler
	own    bool // serves a listener of its own
}

// Provision reads the configuration and mounts POST /AgoraAccount.
func (a *Account) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*AccountConfig)
	if c.AppID == "" {
		topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
		if err != nil {
			return err
		}
		c.AppID = topo.SIP.AppID
	}
	if c.AppID == "" {
		return errors.New("appid: no appid to check the terminals' tokens with: set sip.appid in the topology (the demo's is " + config.DemoAppID + ") or appid here")
	}
	if c.Account == "" {
		c.Account = defaultName(ctx)
	}
	opts := account.Options{AppID: c.AppID, Account: c.Account, Skew: c.Skew}
	own := c.Listen != "" && !strings.EqualFold(c.Listen, "none")
	if !own && !c.Mount {
		return errors.New("listen is none and mount is false: the account API would be served nowhere; give it a listen address or mount it")
	}
	var err error
	if own {
		if a.svc, err = account.New(account.ServiceOptions{Options: opts, Listen: c.Listen}, ctx.Logger()); err != nil {
			return err
		}
		a.own = true
	}
	if a.handle, err = account.NewHandler(opts); err != nil {
		return err
	}
	if c.Mount {
		return ctx.Mount(host.Route{Pattern: "POST " + account.Path, Handler: a.handle, Open: true, Scope: "open"})
	}
	return nil
}

// Start serves the account API's own listener.
func (a *Account) Start(ctx context.Context) error {
	if a.own {
		return a.svc.Start(ctx)
	}
	return nil
}

// Stop stops serving it.
func (a *Account) Stop(ctx context.Context) error {
	if a.own {
		return a.svc.Shutdown(ctx)
	}
	return nil
}

// Addr is the account API's own address (after Start; "" without one).
func (a *Account) Addr() string {
	if !a.own {
		return ""
	}
	return a.svc.Addr()
}
