package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

// script loads lua/<name>.lua with the shared library in front of it,
// wrapped so that it runs once per operation id (ops.go).
func script(name string) *redis.Script {
	lib, err := luaFS.ReadFile("lua/lib.lua")
	if err != nil {
		panic(err)
	}
	body, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	return wrap(string(lib), string(body))
}

// wrap puts the library in front of a script's body and runs the body once
// per operation id (ops.go).
func wrap(lib, body string) *redis.Script {
	return redis.NewScript(lib + opPrologue + body + opEpilogue)
}

var (
	createScript   = script("transition")
	leaseScript    = script("lease")
	releaseScript  = script("release")
	delayScript    = script("delay")
	updateScript   = script("update")
	monitorScript  = script("monitor")
	domainScript   = script("domain")
	templateScript = script("template")
)

// Options configure a store client.
type Options struct {
	// URL is redis://host:port[/db] or host:port.
	URL string
	// PoolSize of connections; default 64.
	PoolSize int
	// MaxBatch is the most items one group-commit script run takes;
	// default 256 (a restore wave fills it).
	MaxBatch int
	// BatchWorkers run group-commit scripts at once; default 2, so one
	// batch gathers while the other is on the wire. A server that runs
	// scripts one at a time anyway (the embedded one) does best with 1.
	BatchWorkers int
	// Timeout of one store call; default 3 s. A write whose connection
	// failed is sent again, as the same operation, until the caller's
	// deadline or, without one, for twice this.
	Timeout time.Duration
}

// Store is a platform's state store.
type Store struct {
	rdb     *redis.Client // reads and plain writes that are safe to repeat: go-redis retries them
	wdb     *redis.Client // scripts: never retried blindly, see ops.go
	url     string
	timeout time.Duration
	log     *slog.Logger
	creates *batcher // reserve and commit share one group commit
	hook    *countHook
}

// Open connects to the store and checks that it answers.
func Open(ctx context.Context, opts Options, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 64
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 256
	}
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.BatchWorkers == 0 {
		opts.BatchWorkers = 2
	}
	ropts, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	ropts.PoolSize = opts.PoolSize
	ropts.MinIdleConns = 4
	ropts.ReadTimeout = opts.Timeout
	ropts.WriteTimeout = opts.Timeout
	ropts.MaxRetries = 2
	ropts.DisableIdentity = true
	ropts.Protocol = 2
	wopts := *ropts
	wopts.MaxRetries = -1 // evalOp sends a script again, under its operation id
	rdb, wdb := redis.NewClient(ropts), redis.NewClient(&wopts)
	hook := &countHook{}
	rdb.AddHook(hook)
	wdb.AddHook(hook)
	pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		_ = wdb.Close()
		return nil, fmt.Errorf("store: %s does not answer: %w", RedactURL(opts.URL), err)
	}
	s := &Store{rdb: rdb, wdb: wdb, url: opts.URL, timeout: opts.Timeout, log: log, hook: hook}
	if err := adoptOldRecords.Run(pctx, wdb, nil).Err(); err != nil {
		log.Warn("store: operation records of an earlier version were not taken over; they stay until removed by hand (keys ops/times and ops/replies)", "err", err)
	}
	s.creates = newBatcher(wdb, createScript, opts.MaxBatch, opts.BatchWorkers, opts.Timeout)
	return s, nil
}

// RedactURL is a store address fit to print or log: its password, if any,
// masked; an address that does not parse is not shown at all.
func RedactURL(u string) string {
	full := u
	if !strings.Contains(full, "://") {
		full = "redis://" + full
	}
	p, err := neturl.Parse(full)
	if err != nil {
		return "(an address that does not parse)"
	}
	if strings.Contains(u, "://") {
		return p.Redacted()
	}
	return strings.TrimPrefix(p.Redacted(), "redis://")
}

func parseURL(u string) (*redis.Options, error) {
	if u == "" {
		return nil, errors.New("store: no address given")
	}
	if !strings.Contains(u, "://") {
		u = "redis://" + u
	}
	o, err := redis.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("store: address %s: %w", RedactURL(u), err)
	}
	return o, nil
}

// URL is the address the store was opened with.
func (s *Store) URL() string { return s.url }

// Client exposes the Redis client, for tests and diagnostics.
func (s *Store) Client() *redis.Client { return s.rdb }

// Close stops the batchers and closes the connections.
func (s *Store) Close() error {
	s.creates.close()
	werr := s.wdb.Close()
	if err := s.rdb.Close(); err != nil {
		return err
	}
	return werr
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// result is one script reply in the {'OK', ...} / {'ERR', code, detail}
// convention.
type result []any

func asResult(v any) (result, error) {
	r, ok := v.([]any)
	if !ok || len(r) == 0 {
		return nil, fmt.Errorf("store: unexpected script reply %v", v)
	}
	return result(r), nil
}

func (r result) ok() bool { return str(r[0]) == "OK" }

func (r result) str(i int) string {
	if i >= len(r) {
		return ""
	}
	return str(r[i])
}

func str(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case int64:
		return fmt.Sprint(t)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// err turns an {'ERR', code, detail} reply into the package's errors.
func (r result) err(e164 string) error {
	code, detail := r.str(1), r.str(2)
	switch code {
	case "DOMAIN_NOT_FOUND":
		return fmt.Errorf("%w: %s", ErrDomainNotFound, detail)
	case "DOMAIN_DISABLED":
		return fmt.Errorf("%w: %s", ErrDomainDisabled, detail)
	case "E164_IN_USE":
		return fmt.Errorf("%w: %s", ErrE164InUse, detail)
	case "E164_EXHAUSTED":
		return fmt.Errorf("%w: segment %s", ErrE164Exhausted, detail)
	case "CONF_NOT_FOUND":
		return fmt.Errorf("%w: %s", ErrConfNotFound, e164)
	case "STATE":
		return &StateError{E164: e164, State: detail}
	case "NODE_MISMATCH":
		return fmt.Errorf("%w: %s is on %q", ErrNodeMismatch, e164, detail)
	case "TEMPLATE_NOT_FOUND":
		return fmt.Errorf("%w: %s", ErrTemplateNotFound, detail)
	case "LEGACY":
		return fmt.Errorf("%w: %s", ErrLegacy, e164)
	case "HELD":
		return fmt.Errorf("%w: %s", ErrLeaseHeld, detail)
	case "MONITOR_NOT_FOUND":
		return fmt.Errorf("%w: %s", ErrMonitorNotFound, detail)
	case "DURATION_LIMIT":
		d := &DurationError{E164: e164}
		fmt.Sscanf(detail, "%d/%d", &d.Booked, &d.Limit)
		return d
	case "E164_OUT_OF_SEGMENT":
		se := &SegmentError{E164: e164}
		seg, digits, _ := strings.Cut(detail, "|")
		se.Segment = seg
		se.Digits, _ = strconv.Atoi(digits)
		return se
	}
	return fmt.Errorf("store: script error %s %s", code, detail)
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// writeCtx is ctx, or, without a deadline, one that leaves a write time to
// be sent again after a failed connection.
func (s *Store) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, 2*s.timeout)
}

// run executes a write script as one operation (not batched) and
// interprets its reply.
func (s *Store) run(ctx context.Context, sc *redis.Script, e164 string, args ...any) (result, error) {
	return s.eval(ctx, sc, newOpID(), e164, args)
}

// read executes a script that changes nothing: no operation id, no reply
// kept.
func (s *Store) read(ctx context.Context, sc *redis.Script, e164 string, args ...any) (result, error) {
	return s.eval(ctx, sc, "", e164, args)
}

func (s *Store) eval(ctx context.Context, sc *redis.Script, id, e164 string, args []any) (result, error) {
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	v, err := evalOp(ctx, s.wdb, sc, id, args)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	r, err := asResult(v)
	if err != nil {
		return nil, err
	}
	if !r.ok() {
		return r, r.err(e164)
	}
	return r, nil
}
