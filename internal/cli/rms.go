package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/resources"
)

func init() { register(newRMSCommand) }

func newRMSCommand() *cobra.Command {
	var (
		bf       busFlags
		cfgPath  string
		platform string
		level    string
	)
	cmd := &cobra.Command{
		Use:   "rms",
		Short: "Run the resource manager (RMS) of one platform against an external bus",
		Long: `Run RMS alone: it takes media-node registrations and heartbeats, announces
nodes up and down, tracks server-room states, and answers GET_RES_REQ on the
platform's bus. Without --config it serves the built-in demo topology.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := bf.options("rms", bus.RoleRMS, ""); err != nil {
				return err
			}
			cfg := config.Demo()
			if cfgPath != "" {
				var err error
				if cfg, err = config.Load(cfgPath); err != nil {
					return err
				}
			}
			if platform == "" {
				platform = cfg.Platform
			}
			plat, ok := cfg.PlatformByMoid(platform)
			if !ok {
				return fmt.Errorf("rms: platform %q is not in the configuration; list it under platforms or pick another with --platform", platform)
			}
			log := newLogger(cmd.ErrOrStderr(), level)
			bo, err := bf.options("rms", bus.RoleRMS, "rms-"+plat.Moid)
			if err != nil {
				return err
			}
			b, err := bus.Connect(bo, log)
			if err != nil {
				return err
			}
			defer func() { _ = b.Drain() }()

			svc, err := resources.New(resources.Options{
				Platform:          plat.Moid,
				Rooms:             plat.Rooms,
				HeartbeatInterval: cfg.RMS.HeartbeatInterval,
				MissedHeartbeats:  cfg.RMS.MissedHeartbeats,
				ConfListInterval:  cfg.RMS.ConfListInterval,
				OverloadLag:       cfg.RMS.OverloadLag,
				OverloadHold:      cfg.RMS.OverloadHold,
			}, b, log)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := svc.Start(ctx); err != nil {
				return err
			}
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return svc.Shutdown(stopCtx)
		},
	}
	f := cmd.Flags()
	bf.register(f, bus.RoleRMS)
	f.StringVar(&cfgPath, "config", "", "configuration file (default: the built-in demo topology)")
	f.StringVar(&platform, "platform", "", "moid of the platform to serve (default: the configuration's platform)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}
