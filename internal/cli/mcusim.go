package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/resources"
)

func init() { register(newMCUSimCommand) }

func newMCUSimCommand() *cobra.Command {
	var (
		bf       busFlags
		platform string
		room     string
		id       string
		count    int
		capacity int
		ip       string
		legacy   bool
		level    string
	)
	cmd := &cobra.Command{
		Use:   "mcu-sim",
		Short: "Run simulated media nodes (MCUs) against an external bus",
		Long: `Run one or more simulated media nodes. Each speaks the media-node protocol
faithfully (registration and heartbeats to RMS, conference lists, create,
restore, release, rename, monitoring) and holds its conferences in memory.
They run until interrupted, then unregister. They join the bus with the
media nodes' credential (--nats-creds, e.g. the .convene/creds/mcu.creds
that convene serve writes), and the bus lets each use only its own subject.

Node ids are <id>-1 ... <id>-N; with --count 1 and an explicit --id, the id
is used as given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := bf.options("mcu-sim", bus.RoleMCU, ""); err != nil {
				return err
			}
			if count < 1 {
				return fmt.Errorf("mcu-sim: --count %d: run at least one node", count)
			}
			ids := mcuSimIDs(id, cmd.Flags().Changed("id"), count)
			log := newLogger(cmd.ErrOrStderr(), level)
			ctx := cmd.Context()

			type running struct {
				node *medianode.Node
				bus  *bus.Bus
			}
			var nodes []running
			stop := func() error {
				stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				for _, r := range nodes {
					err = errors.Join(err, r.node.Shutdown(stopCtx), r.bus.Drain())
				}
				return err
			}
			for _, nodeID := range ids {
				// One connection per node, as separate processes would have;
				// the bus binds each to its node's subject by its name.
				bo, err := bf.options("mcu-sim", bus.RoleMCU, resources.NodeConnName(nodeID))
				if err != nil {
					return errors.Join(err, stop())
				}
				b, err := bus.Connect(bo, log)
				if err != nil {
					return errors.Join(err, stop())
				}
				n, err := medianode.New(medianode.Options{
					ID:       nodeID,
					IP:       ip,
					Room:     room,
					Platform: platform,
					Capacity: capacity,
					Legacy:   legacy,
				}, b, log)
				if err == nil {
					err = n.Start(ctx)
				}
				if err != nil {
					b.Close()
					return errors.Join(err, stop())
				}
				nodes = append(nodes, running{node: n, bus: b})
				kind := ""
				if legacy {
					kind = " (legacy)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "media node %s started%s: ip %s pid %s room %s platform %s capacity %d\n",
					nodeID, kind, n.IP(), n.PID(), room, platform, n.Capacity())
			}
			<-ctx.Done()
			return stop()
		},
	}
	f := cmd.Flags()
	bf.register(f, bus.RoleMCU)
	f.StringVar(&platform, "platform", "plat-a", "moid of the platform the nodes join")
	f.StringVar(&room, "room", "room-a1", "moid of the server room the nodes sit in")
	f.StringVar(&id, "id", "sim-"+mcuSimHost(), "node id, or the prefix of the ids with --count")
	f.IntVar(&count, "count", 1, "how many nodes to run")
	f.IntVar(&capacity, "capacity", 1000, "most conferences each node hosts")
	f.StringVar(&ip, "ip", "127.0.0.1", "address the nodes report")
	f.BoolVar(&legacy, "legacy", false, "run legacy nodes, whose conferences are never moved")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// mcuSimIDs names count nodes: id-1 ... id-N, or id itself for one node
// whose id was given explicitly.
func mcuSimIDs(id string, explicit bool, count int) []string {
	if count == 1 && explicit {
		return []string{id}
	}
	ids := make([]string, count)
	for i := range ids {
		ids[i] = id + "-" + strconv.Itoa(i+1)
	}
	return ids
}

// mcuSimHost is the host name cut down to a subject token's characters.
func mcuSimHost() string {
	h, err := os.Hostname()
	if err != nil {
		return "local"
	}
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	var b strings.Builder
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 24 {
			break
		}
	}
	if s := strings.Trim(b.String(), "-"); s != "" {
		return s
	}
	return "local"
}
