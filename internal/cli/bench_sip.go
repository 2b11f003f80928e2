package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bench"
)

func init() { benchCommands = append(benchCommands, benchSIPCmd) }

// sipBench is `convene bench sip`.
type sipBench struct {
	bench.SIP
	logLevel string
}

func benchSIPCmd() *cobra.Command {
	var b sipBench
	cmd := &cobra.Command{
		Use:   "sip",
		Short: "Measure the SIP edge with sipp: calls/s, INVITE->200, REGISTER/s, call records; and Kamailio beside it",
		Long: `bench sip drives a SIP node with sipp (Debian's sip-tester), as callers and
callees at once, with digest authentication and call records on: the
node's store is a redis-server this command starts (or --redis), its
records a fresh SQLite file.

Each measurement is a ramp: steps of --step-calls calls (or REGISTERs)
offered at a rate that starts at --from-rate and grows by half each step,
until a step has a failure, or carries less than 90% of the rate offered
(the server fell behind), or the rate passes --max-rate. The figure kept
is the best step before: what the server carries cleanly.

  REGISTER/s  REGISTERs, each challenged 401 and answered with digest,
              by --pairs sipp processes;
  calls/s     --pairs callees register and answer on their own sipp;
              --pairs callers call them, each INVITE challenged 407 and
              answered, record-routed, held for --hold and hung up;
              INVITE->200 p50 and p99 are those of the best step, from
              the first INVITE, through the challenge, to the 200;
  records     the completed calls of every step whose record is in the
              records database within 30 s (written), and those whose
              record is not (lost).

When kamailio (Debian's kamailio and kamailio-sqlite-modules) is
installed, Kamailio 5.6 runs the same ramps with the same features right
after, the two alternating --rounds times: digest auth (auth_db against a
SQLite subscriber table, qop=auth with nonce counts checked), a registrar,
record-route with loose routing, and accounting to SQL (acc writing each
call's INVITE and BYE to SQLite through db_sqlite, in WAL mode). db_sqlite
sets no busy timeout, so Kamailio's workers fail each other's queries
("database is locked") when there are several: it runs
--kamailio-children workers, one by default.

With --postgres, both keep their records on that PostgreSQL server
instead, each round of each server in a fresh database: Convene's call
records, and Kamailio's subscribers and accounting through db_postgres
(Debian's kamailio-postgres-modules), with 4 workers by default. The
summary prints each server's best round and the ratios.

Everything runs on loopback on this machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b.Log = newLogger(os.Stderr, b.logLevel)
			return b.Run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.StepCalls, "step-calls", 1500, "calls per step of the ramp")
	f.Float64Var(&b.FromRate, "from-rate", 100, "the first step's rate (calls or REGISTERs per second, in all)")
	f.Float64Var(&b.MaxRate, "max-rate", 3000, "the ramp of calls stops past this rate")
	f.IntVar(&b.Pairs, "pairs", 2, "sipp callers and as many callees (one sipp saturates near 1,000 calls/s)")
	f.DurationVar(&b.Hold, "hold", 0, "how long each call is held before its BYE")
	f.IntVar(&b.StepRegs, "step-registrations", 1500, "REGISTERs per step of the ramp (0: no REGISTER ramp)")
	f.Float64Var(&b.MaxRegRate, "max-register-rate", 4000, "the ramp of REGISTERs stops past this rate")
	f.IntVar(&b.Rounds, "rounds", 2, "rounds, each Convene then Kamailio")
	f.StringVar(&b.Kamailio, "kamailio", "auto", "auto (when installed), on, or off")
	f.IntVar(&b.KamChildren, "kamailio-children", 0, "Kamailio's UDP worker processes (0: 1 on SQLite, 4 on PostgreSQL)")
	f.StringVar(&b.Postgres, "postgres", "", "keep both servers' records on this PostgreSQL server (an admin URL, postgres://user@host:port/db): a database of its own for each round of each server, dropped after")
	f.StringVar(&b.RedisURL, "redis", "", "the store of the node (default: a redis-server this command starts)")
	f.StringVar(&b.logLevel, "log-level", "error", "the node's log level")
	f.StringVar(&b.CPUProfile, "cpuprofile", "", "write a CPU profile of this process (the Convene node) to this file")
	return cmd
}
