package store

import (
	"context"
	crand "crypto/rand"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Writes are safe to repeat. A connection can drop after the server ran a
// script and before its reply arrived; the caller cannot tell that from a
// script that never ran. So every write is one operation with an id made
// once (newOpID), every script records its reply under that id (lua/lib.lua)
// and answers a repeat with that reply, changing nothing, and the client
// sends an operation again, with the same id, only on errors that say the
// connection failed. go-redis's own retries, which would send a script
// again blindly, are off for the client that runs scripts.
const (
	// opKeep is how long the store keeps an operation's reply: OP_KEEP_MS
	// in lua/lib.lua.
	opKeep = time.Minute
	// opRetryFor bounds how long one operation is sent again, well inside
	// opKeep, so that every repeat finds the first run's reply.
	opRetryFor = opKeep / 2
)

// opPrologue and opEpilogue wrap a script's body: ARGV[1] is the operation
// id and the body sees the rest as its ARGV.
const (
	opPrologue = `
local OP_ID = table.remove(ARGV, 1)
local ARGV = ARGV
do
  local seen = op_replay(OP_ID)
  if seen then return seen[1] end
end
local function op_body()
`
	opEpilogue = `
end
return op_record(OP_ID, op_body())
`
)

// adoptOldRecords moves the records of operations that an earlier version
// kept in a sorted set (ops/times) to the head of the list that holds them
// now (ops/queue), oldest first, so that they are pruned like the others.
// A server with none left answers 0 at the cost of one read.
var adoptOldRecords = redis.NewScript(`
local old = redis.call('ZRANGE', 'ops/times', 0, -1, 'WITHSCORES')
local batch = {}
for k = #old - 1, 1, -2 do
  batch[#batch + 1] = string.format('%d', tonumber(old[k + 1])) .. ' ' .. old[k]
  if #batch == 500 or k == 1 then
    redis.call('LPUSH', 'ops/queue', unpack(batch))
    batch = {}
  end
end
if #old > 0 then redis.call('DEL', 'ops/times') end
return #old / 2
`)

// newOpID makes an operation id.
func newOpID() string { return crand.Text() }

// evalOp runs a script for operation id (empty: a read, nothing recorded)
// and sends it again, under the same id, while the connection fails and
// ctx and opRetryFor allow, with a growing pause between tries.
func evalOp(ctx context.Context, rdb *redis.Client, sc *redis.Script, id string, args []any) (any, error) {
	return runOp(ctx, rdb, sc, append(opCall(sc, id, len(args)), args...))
}

// opCall begins the command that runs sc for operation id, with room for
// n arguments more: a caller that appends its arguments to it builds the
// command once, where Script.Run would copy them twice on the way.
func opCall(sc *redis.Script, id string, n int) []any {
	return append(make([]any, 0, 4+n), "evalsha", sc.Hash(), 0, id)
}

// runOp sends cmd (made by opCall) as evalOp does. A server that does not
// know the script yet is given it first (SCRIPT LOAD).
func runOp(ctx context.Context, rdb *redis.Client, sc *redis.Script, cmd []any) (any, error) {
	start := time.Now()
	loaded := false
	for try := 0; ; try++ {
		v, err := rdb.Do(ctx, cmd...).Result()
		if err != nil && !loaded && redis.HasErrorPrefix(err, "NOSCRIPT") {
			loaded = true
			if err = sc.Load(ctx, rdb).Err(); err == nil {
				try--
				continue
			}
		}
		if err == nil || ctx.Err() != nil || !retryable(err) || time.Since(start) > opRetryFor {
			return v, err
		}
		if !pause(ctx, backoff(try)) {
			return v, err
		}
	}
}

// retryable reports whether err says a connection failed under the
// command or the server could not take it now, rather than that the
// command was refused. A server that cannot be reached at all (go-redis
// has tried to dial it a few times already) is down: the caller hears so
// at once instead of at its deadline.
func retryable(err error) bool {
	var oerr *net.OpError
	if errors.Is(err, redis.ErrClosed) || errors.Is(err, context.Canceled) ||
		errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &oerr) && oerr.Op == "dial") {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING ", "READONLY ", "MASTERDOWN ", "TRYAGAIN ", "BUSY ", "ERR max number of clients"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true // timeouts included: the id makes a repeat harmless
	}
	return strings.Contains(err.Error(), "connection pool timeout")
}

// backoff is the pause before try+1: 5 ms doubling to 250 ms, jittered.
func backoff(try int) time.Duration {
	d := 5 * time.Millisecond << min(try, 6)
	d = min(d, 250*time.Millisecond)
	return d/2 + rand.N(d/2+1)
}

// pause waits d unless ctx ends first; it reports whether it waited.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
