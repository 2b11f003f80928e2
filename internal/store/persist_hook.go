package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/alicebob/miniredis/v2/server"
)

// How writes reach the log of a durable server, and in which order.
//
// A write comes in one of three ways: a plain command, a script (whose
// redis.call commands run on the runner's own connection), or a
// transaction. All three run under the runner's mu held exclusively, on
// the runner's connection, where the server's answer to each command is
// seen: run records every write that succeeded as an effect. Before mu is
// let go, commit appends the effects of that one command, script or
// transaction to the log as one record, and only then is the caller
// answered. No other command runs while mu is held exclusively, so the
// records are in the order the writes ran. Reads hold mu shared and are
// not logged; they run on their own connections as before.
//
// Transactions are queued here rather than by the server (which would run
// them on the caller's connection, out of sight), and WATCH is refused:
// Convene uses neither. Commands whose effect a snapshot cannot keep, or
// that a replay would not repeat exactly, are refused too (refusal).

// txState is a connection between MULTI and EXEC.
type txState struct {
	cmds  [][]string
	dirty bool // a command was refused: EXEC aborts
}

// txReply is one answer of a queued command.
type txReply struct {
	raw string     // the server's answer, as is
	val lua.LValue // a script's result
	err string     // a script's error
}

// connCommands touch no data: they run on the caller's connection.
var connCommands = map[string]bool{
	"AUTH": true, "CLIENT": true, "CLUSTER": true, "COMMAND": true, "ECHO": true, "HELLO": true,
	"INFO": true, "MEMORY": true, "OBJECT": true, "PING": true, "PUBLISH": true, "PUBSUB": true,
	"QUIT": true, "SELECT": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true, "PSUBSCRIBE": true,
	"PUNSUBSCRIBE": true, "TIME": true, "WAIT": true, "XINFO": true,
	"MULTI": true, "EXEC": true, "DISCARD": true, "WATCH": true, "UNWATCH": true,
	"EVAL": true, "EVALSHA": true, "SCRIPT": true, "EVAL_RO": true, "EVALSHA_RO": true,
}

// inTx are the connection commands a durable server queues in a
// transaction.
var inTx = map[string]bool{"PING": true, "ECHO": true, "SELECT": true, "TIME": true, "PUBLISH": true, "EVAL": true, "EVALSHA": true}

// notInScripts are refused from scripts, as Redis refuses them.
var notInScripts = map[string]bool{
	"EVAL": true, "EVALSHA": true, "EVAL_RO": true, "EVALSHA_RO": true, "SCRIPT": true,
	"MULTI": true, "EXEC": true, "DISCARD": true, "WATCH": true, "UNWATCH": true,
	"SUBSCRIBE": true, "UNSUBSCRIBE": true, "PSUBSCRIBE": true, "PUNSUBSCRIBE": true,
	"AUTH": true, "HELLO": true, "QUIT": true, "CLIENT": true,
}

// notDurable are refused by a durable server: they block (and would hold
// every other command up), pick at random (a replay would pick otherwise),
// or make values a snapshot does not keep (streams, HyperLogLogs, hash
// fields with their own time to live, RESTORE's payloads).
var notDurable = map[string]bool{
	"BLPOP": true, "BRPOP": true, "BRPOPLPUSH": true, "BLMOVE": true, "BLMPOP": true,
	"BZPOPMIN": true, "BZPOPMAX": true, "BZMPOP": true, "SPOP": true,
	"XADD": true, "XGROUP": true, "XREADGROUP": true, "XACK": true, "XDEL": true, "XTRIM": true,
	"XAUTOCLAIM": true, "XCLAIM": true, "PFADD": true, "PFMERGE": true,
	"HEXPIRE": true, "HPEXPIRE": true, "HEXPIREAT": true, "HPEXPIREAT": true, "HPERSIST": true, "HSETEX": true,
	"RESTORE": true,
}

// isWrite tells a command that changes data: one the server registered
// as not read-only, but for the connection commands.
func (r *scriptRunner) isWrite(cmd string) bool {
	if v, ok := r.writes.Load(cmd); ok {
		return v.(bool)
	}
	w := !connCommands[cmd] && r.srv.IsRegisteredCommand(cmd) && !r.srv.IsReadOnlyCommand(cmd)
	r.writes.Store(cmd, w)
	return w
}

// refusal is the error a durable server answers cmd with, or "".
func refusal(cmd string, args []string) string {
	if notDurable[cmd] {
		return "ERR " + cmd + " is not supported by Convene's embedded store when it keeps its data on disk; use redis-server for it"
	}
	// Databases above the sixteenth are not kept (redis-server has no
	// more by default either).
	var dbs []string
	switch cmd {
	case "SELECT":
		dbs = args[:min(1, len(args))]
	case "MOVE":
		if len(args) == 2 {
			dbs = args[1:]
		}
	case "SWAPDB":
		dbs = args
	case "COPY":
		for i := 2; i+1 < len(args); i++ {
			if strings.EqualFold(args[i], "DB") {
				dbs = append(dbs, args[i+1])
			}
		}
	}
	for _, d := range dbs {
		if n, err := strconv.Atoi(d); err == nil && (n < 0 || n >= maxDatabases) {
			return "ERR DB index is out of range"
		}
	}
	return ""
}

// refuseInScript is the error a script's call of args gets, or "".
func (r *scriptRunner) refuseInScript(args []string) string {
	cmd := upper(args[0])
	if notInScripts[cmd] {
		return "ERR This Redis command is not allowed from script"
	}
	if r.dur != nil {
		return refusal(cmd, args[1:])
	}
	return ""
}

// durable handles, for a server that keeps its data on disk, what must
// not run on the caller's connection: writes, and transactions. It
// reports whether it answered; reads, scripts and connection commands go
// on as on the memory-only server.
func (r *scriptRunner) durable(c *server.Peer, cmd string, args []string, db int, tx *txState) bool {
	if tx != nil {
		r.queue(c, cmd, args, db, tx)
		return true
	}
	switch cmd {
	case "MULTI":
		r.setTx(c, &txState{})
		c.WriteOK()
		return true
	case "EXEC", "DISCARD":
		c.WriteError("ERR " + cmd + " without MULTI")
		return true
	case "WATCH":
		c.WriteError("ERR WATCH is not supported by Convene's embedded store when it keeps its data on disk; use redis-server for it")
		return true
	case "UNWATCH":
		c.WriteOK()
		return true
	}
	if msg := refusal(cmd, args); msg != "" {
		c.WriteError(msg)
		return true
	}
	if !r.isWrite(cmd) {
		return false
	}
	full := make([]string, 0, len(args)+1)
	full = append(append(full, cmd), args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.dur.failed(); err != nil {
		c.WriteError(persistReply(err))
		return true
	}
	r.selectDB(db)
	r.peer.Resp3 = c.Resp3
	ans := string(r.run(full))
	r.peer.Resp3 = false
	if err := r.commit(); err != nil {
		c.WriteError(persistReply(err))
		return true
	}
	c.Block(func(w *server.Writer) { w.WriteRaw(ans) })
	return true
}

func (r *scriptRunner) setTx(c *server.Peer, tx *txState) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	if tx == nil {
		delete(r.txs, c)
		return
	}
	r.txs[c] = tx
	r.watch(c)
}

// queue takes a command of a connection in a transaction.
func (r *scriptRunner) queue(c *server.Peer, cmd string, args []string, db int, tx *txState) {
	switch cmd {
	case "EXEC":
		r.setTx(c, nil)
		r.exec(c, db, tx)
		return
	case "DISCARD":
		r.setTx(c, nil)
		c.WriteOK()
		return
	case "MULTI":
		c.WriteError("ERR MULTI calls can not be nested")
		return
	case "WATCH":
		c.WriteError("ERR WATCH inside MULTI is not allowed")
		return
	}
	msg := refusal(cmd, args)
	switch {
	case msg != "":
	case connCommands[cmd] && !inTx[cmd]:
		msg = "ERR " + cmd + " inside MULTI is not supported by Convene's embedded store when it keeps its data on disk"
	case !connCommands[cmd] && !r.srv.IsRegisteredCommand(cmd):
		msg = fmt.Sprintf("ERR unknown command '%s'", strings.ToLower(cmd))
	}
	if msg != "" {
		tx.dirty = true
		c.WriteError(msg)
		return
	}
	q := make([]string, 0, len(args)+1)
	tx.cmds = append(tx.cmds, append(append(q, cmd), args...))
	c.WriteInline("QUEUED")
}

// exec runs a transaction's commands, atomically, and logs their writes
// as one record.
func (r *scriptRunner) exec(c *server.Peer, db int, tx *txState) {
	if tx.dirty {
		c.WriteError("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.dur.failed(); err != nil {
		c.WriteError(persistReply(err))
		return
	}
	r.selectDB(db)
	out := make([]txReply, len(tx.cmds))
	for i, q := range tx.cmds {
		switch q[0] {
		case "EVAL", "EVALSHA":
			out[i].val, out[i].err = r.eval(q[0], q[1:])
		default:
			r.peer.Resp3 = c.Resp3
			out[i].raw = string(r.run(q))
			r.peer.Resp3 = false
		}
	}
	err := r.commit()
	if r.peerDB != db { // a SELECT in the transaction
		r.passMu.Lock()
		r.dbs[c] = r.peerDB
		r.watch(c)
		r.passMu.Unlock()
	}
	if err != nil {
		c.WriteError(persistReply(err))
		return
	}
	c.Block(func(w *server.Writer) {
		w.WriteLen(len(out))
		for _, o := range out {
			switch {
			case o.err != "":
				w.WriteError(o.err)
			case o.val != nil:
				writeLua(w, o.val)
			default:
				w.WriteRaw(o.raw)
			}
		}
	})
}

// run runs one command on the runner's connection (mu held exclusively)
// and, on a durable server, keeps it as an effect if it wrote and did not
// fail. The answer is valid until the next dispatch.
func (r *scriptRunner) run(args []string) []byte {
	b := r.dispatch(args)
	if isErrorReply(b) {
		return b
	}
	cmd := upper(args[0])
	if cmd == "SELECT" {
		r.peerDB, _ = strconv.Atoi(args[1])
		return b
	}
	if r.dur != nil && r.isWrite(cmd) {
		// The server may keep args (a list push does); it is never
		// changed, so the log may keep it too.
		r.effects = append(r.effects, effect{db: r.peerDB, args: args})
	}
	return b
}

// commit appends the effects run since the last commit to the log as one
// record (mu held exclusively).
func (r *scriptRunner) commit() error {
	if len(r.effects) == 0 {
		return nil
	}
	r.enc = appendRecord(r.enc[:0], time.Now().UnixNano(), r.effects)
	clear(r.effects)
	r.effects = r.effects[:0]
	err := r.dur.append(r.enc)
	if cap(r.enc) > 1<<20 {
		r.enc = nil // keep no large buffer
	}
	return err
}

// persistReply is the answer to a write the log could not keep.
func persistReply(err error) string {
	msg := err.Error()
	if errors.Is(err, ErrStorePersist) {
		msg = strings.TrimPrefix(msg, ErrStorePersist.Error()+": ")
	}
	return oneLine(ErrStorePersist.Error() + " the embedded store cannot keep this write on disk (" + msg + "); fix the disk or the directory and restart convene")
}

// upper is s in upper case, without allocating when it already is.
func upper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'a' <= c && c <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}
