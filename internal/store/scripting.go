package store

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/alicebob/miniredis/v2/server"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// scriptRunner runs EVAL, EVALSHA and SCRIPT for the embedded server, in
// place of the server's own script support. That builds a Lua VM for every
// run and two 4 KB buffers for every redis.call; on the create path this
// was a third of the process's CPU and most of its garbage. The runner
// keeps one VM, compiles each script once, and reuses one connection
// buffer for the calls a script makes.
//
// Scripts stay atomic: a script holds mu exclusively, and every other
// command holds it shared while the server runs it. The server's commands
// take its own lock one at a time, so no command waits on another here for
// longer than it would there. Blocking commands (BLPOP and kin) would hold
// the shared lock while they wait; Convene uses none.
//
// Lock order: mu, then passMu; mu, then the persister's locks. passMu is
// never held while mu is taken.
type scriptRunner struct {
	srv *server.Server
	mu  sync.RWMutex // a script: exclusive; any other command: shared

	// dur keeps the data on disk (nil: memory only). Then every command
	// that writes runs on peer under mu held exclusively, so its effect is
	// known and appended to the log before mu is let go: the log holds
	// the writes in the order they ran (see durable, persist_hook.go).
	dur    *persister
	writes sync.Map // command -> whether it changes data (isWrite)

	passMu  sync.Mutex
	passing map[*server.Peer]bool     // peers whose command is being run under mu
	multi   map[*server.Peer]bool     // peers between MULTI and EXEC or DISCARD
	txs     map[*server.Peer]*txState // the same, when dur queues transactions
	dbs     map[*server.Peer]int      // peers that selected a database
	watched map[*server.Peer]bool     // peers whose disconnect clears the maps above

	// Under mu held exclusively.
	l       *lua.LState
	protos  map[string]*lua.FunctionProto // sha1 -> compiled script
	peer    *server.Peer                  // the connection a script's calls use
	peerDB  int                           // the database peer has selected
	out     bytes.Buffer                  // what the server answered a call
	outW    *bufio.Writer
	effects []effect // writes run since the last commit (dur only)
	enc     []byte   // a record being encoded
}

// newRunner makes a runner for srv, not yet in front of it (install).
func newRunner(srv *server.Server, dur *persister) *scriptRunner {
	r := &scriptRunner{srv: srv, dur: dur, passing: map[*server.Peer]bool{}, multi: map[*server.Peer]bool{}, txs: map[*server.Peer]*txState{},
		dbs: map[*server.Peer]int{}, watched: map[*server.Peer]bool{}, protos: map[string]*lua.FunctionProto{}}
	r.outW = bufio.NewWriter(&r.out)
	r.peer = server.NewPeer(r.outW)
	r.l = r.newVM()
	return r
}

// install puts the runner in front of the server's command dispatch.
func (r *scriptRunner) install() { r.srv.SetPreHook(r.hook) }

// hook sees every command before the server does; true means it answered.
func (r *scriptRunner) hook(c *server.Peer, cmd string, args ...string) bool {
	if c == r.peer {
		return false // a script's own call: mu is held already
	}
	r.passMu.Lock()
	if r.passing[c] {
		r.passMu.Unlock()
		return false // the dispatch below: the server runs it
	}
	inMulti, db, tx := r.multi[c], r.dbs[c], r.txs[c]
	r.passMu.Unlock()
	if r.dur != nil && r.durable(c, cmd, args, db, tx) {
		return true
	}
	if !inMulti {
		switch cmd {
		case "EVAL", "EVALSHA":
			r.mu.Lock()
			r.selectDB(db)
			r.evalReply(c, cmd, args)
			r.mu.Unlock()
			return true
		case "SCRIPT":
			r.mu.Lock()
			r.script(c, args)
			r.mu.Unlock()
			return true
		}
	}
	// Any other command, and a script queued in a transaction: the server
	// runs it, under the shared hold. (A queued script runs at EXEC on the
	// server's own script support, which knows only scripts sent in full.)
	r.passMu.Lock()
	r.passing[c] = true
	r.track(c, cmd, args)
	r.passMu.Unlock()

	full := make([]string, 0, len(args)+1)
	full = append(append(full, cmd), args...)
	r.mu.RLock()
	r.srv.Dispatch(c, full)
	r.mu.RUnlock()

	r.passMu.Lock()
	delete(r.passing, c)
	r.passMu.Unlock()
	return true
}

// track follows a connection's transaction and selected database, under
// passMu.
func (r *scriptRunner) track(c *server.Peer, cmd string, args []string) {
	switch cmd {
	case "MULTI":
		r.multi[c] = true
	case "EXEC", "DISCARD":
		delete(r.multi, c)
		return
	case "SELECT":
		if len(args) != 1 {
			return
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n >= maxDatabases {
			return
		}
		r.dbs[c] = n
	default:
		return
	}
	r.watch(c)
}

// watch clears what is kept of a connection when it ends, under passMu.
func (r *scriptRunner) watch(c *server.Peer) {
	if !r.watched[c] {
		r.watched[c] = true
		// Runs on the connection's own goroutine, as the hook does.
		c.OnDisconnect(func() {
			r.passMu.Lock()
			delete(r.multi, c)
			delete(r.txs, c)
			delete(r.dbs, c)
			delete(r.watched, c)
			r.passMu.Unlock()
		})
	}
}

// selectDB points the scripts' connection at a database.
func (r *scriptRunner) selectDB(db int) {
	if db == r.peerDB {
		return
	}
	if bytes.HasPrefix(r.dispatch([]string{"SELECT", strconv.Itoa(db)}), []byte("+OK")) {
		r.peerDB = db
	}
}

// dispatch runs one command on the scripts' connection and returns the
// server's answer, valid until the next dispatch.
func (r *scriptRunner) dispatch(args []string) []byte {
	r.out.Reset()
	r.srv.Dispatch(r.peer, args)
	_ = r.outW.Flush()
	return r.out.Bytes()
}

// newVM builds the VM: the base, table, string and math libraries, the
// redis table, and globals that scripts may read but not create.
func (r *scriptRunner) newVM() *lua.LState {
	l := lua.NewState(lua.Options{SkipOpenLibs: true, RegistryMaxSize: 1 << 20})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	redisT := l.NewTable()
	redisT.RawSetString("call", l.NewFunction(func(l *lua.LState) int { return r.call(l, true) }))
	redisT.RawSetString("pcall", l.NewFunction(func(l *lua.LState) int { return r.call(l, false) }))
	reply := func(field string) *lua.LFunction {
		return l.NewFunction(func(l *lua.LState) int {
			t := l.NewTable()
			t.RawSetString(field, lua.LString(l.CheckString(1)))
			l.Push(t)
			return 1
		})
	}
	redisT.RawSetString("error_reply", reply("err"))
	redisT.RawSetString("status_reply", reply("ok"))
	redisT.RawSetString("sha1hex", l.NewFunction(func(l *lua.LState) int {
		l.Push(lua.LString(sha1Hex(l.CheckString(1))))
		return 1
	}))
	l.G.Global.RawSetString("redis", redisT)
	guard := l.NewTable()
	guard.RawSetString("__newindex", l.NewFunction(func(l *lua.LState) int {
		l.RaiseError("Script attempted to create global variable '%s'", l.Get(2).String())
		return 0
	}))
	guard.RawSetString("__index", l.NewFunction(func(l *lua.LState) int {
		l.RaiseError("Script attempted to access nonexistent global variable '%s'", l.Get(2).String())
		return 0
	}))
	l.SetMetatable(l.G.Global, guard)
	return l
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// compile parses and compiles a script once.
func (r *scriptRunner) compile(src string) (string, error) {
	sha := sha1Hex(src)
	if _, ok := r.protos[sha]; ok {
		return sha, nil
	}
	chunk, err := parse.Parse(strings.NewReader(src), "user_script")
	if err != nil {
		return "", fmt.Errorf("ERR Error compiling script (new function): %s", oneLine(err.Error()))
	}
	proto, err := lua.Compile(chunk, "user_script")
	if err != nil {
		return "", fmt.Errorf("ERR Error compiling script (new function): %s", oneLine(err.Error()))
	}
	r.protos[sha] = proto
	return sha, nil
}

// script answers SCRIPT LOAD, EXISTS and FLUSH.
func (r *scriptRunner) script(c *server.Peer, args []string) {
	if len(args) == 0 {
		c.WriteError("ERR wrong number of arguments for 'script' command")
		return
	}
	switch strings.ToUpper(args[0]) {
	case "LOAD":
		if len(args) != 2 {
			c.WriteError("ERR wrong number of arguments for 'script|load' command")
			return
		}
		sha, err := r.compile(args[1])
		if err != nil {
			c.WriteError(err.Error())
			return
		}
		c.WriteBulk(sha)
	case "EXISTS":
		if len(args) < 2 {
			c.WriteError("ERR wrong number of arguments for 'script|exists' command")
			return
		}
		c.Block(func(w *server.Writer) {
			w.WriteLen(len(args) - 1)
			for _, sha := range args[1:] {
				if _, ok := r.protos[strings.ToLower(sha)]; ok {
					w.WriteInt(1)
				} else {
					w.WriteInt(0)
				}
			}
		})
	case "FLUSH":
		clear(r.protos)
		c.WriteOK()
	default:
		c.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try SCRIPT HELP.", args[0]))
	}
}

// evalReply runs a script for c and answers it, once its writes are in
// the log.
func (r *scriptRunner) evalReply(c *server.Peer, cmd string, args []string) {
	if err := r.dur.failed(); err != nil {
		c.WriteError(persistReply(err))
		return
	}
	res, msg := r.eval(cmd, args)
	if err := r.commit(); err != nil {
		msg = persistReply(err)
	}
	if msg != "" {
		c.WriteError(msg)
		return
	}
	c.Block(func(w *server.Writer) { writeLua(w, res) })
}

// eval runs EVAL script|EVALSHA sha numkeys key... arg.... It returns the
// script's result, or the error to answer.
func (r *scriptRunner) eval(cmd string, args []string) (lua.LValue, string) {
	if len(args) < 2 {
		return nil, fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(cmd))
	}
	var sha string
	if cmd == "EVAL" {
		var err error
		if sha, err = r.compile(args[0]); err != nil {
			return nil, err.Error()
		}
	} else {
		sha = strings.ToLower(args[0])
	}
	proto, ok := r.protos[sha]
	if !ok {
		return nil, "NOSCRIPT No matching script. Please use EVAL."
	}
	nkeys, err := strconv.Atoi(args[1])
	switch {
	case err != nil:
		return nil, "ERR value is not an integer or out of range"
	case nkeys < 0:
		return nil, "ERR Number of keys can't be negative"
	case nkeys > len(args)-2:
		return nil, "ERR Number of keys can't be greater than number of args"
	}
	l := r.l
	l.G.Global.RawSetString("KEYS", stringsTable(l, args[2:2+nkeys]))
	l.G.Global.RawSetString("ARGV", stringsTable(l, args[2+nkeys:]))
	l.Push(l.NewFunctionFromProto(proto))
	if err := l.PCall(0, 1, nil); err != nil {
		l.SetTop(0)
		msg := err.Error()
		var ae *lua.ApiError
		if errors.As(err, &ae) {
			msg = ae.Object.String() // without the Lua stack trace
		}
		return nil, "ERR Error running script (call to f_" + sha + "): " + oneLine(msg)
	}
	res := l.Get(-1)
	l.SetTop(0)
	return res, ""
}

func stringsTable(l *lua.LState, s []string) *lua.LTable {
	t := l.CreateTable(len(s), 0)
	for i, v := range s {
		t.RawSetInt(i+1, lua.LString(v))
	}
	return t
}

// call is redis.call (raise true) and redis.pcall: it runs one command on
// the server and hands back its answer as Lua values.
func (r *scriptRunner) call(l *lua.LState, raise bool) int {
	top := l.GetTop()
	if top == 0 {
		l.RaiseError("Please specify at least one argument for this redis lib call")
		return 0
	}
	// The server may keep the argument slice (a list push does): a new one
	// per call.
	args := make([]string, top)
	for i := 1; i <= top; i++ {
		switch v := l.Get(i).(type) {
		case lua.LString:
			args[i-1] = string(v)
		case lua.LNumber:
			args[i-1] = v.String()
		default:
			l.RaiseError("Lua redis lib command arguments must be strings or integers")
			return 0
		}
	}
	var v lua.LValue
	errMsg := r.refuseInScript(args)
	if errMsg == "" {
		v, errMsg, _ = parseReply(l, r.run(args))
	}
	if errMsg != "" {
		if raise {
			l.RaiseError("%s", errMsg)
			return 0
		}
		t := l.NewTable()
		t.RawSetString("err", lua.LString(errMsg))
		l.Push(t)
		return 1
	}
	l.Push(v)
	return 1
}

// parseReply reads one RESP2 reply as Lua values, the way Redis hands
// replies to scripts: nil as false, a status as {ok=...}. An error reply
// comes back as its message.
func parseReply(l *lua.LState, b []byte) (lua.LValue, string, []byte) {
	end := bytes.Index(b, []byte("\r\n"))
	if end < 1 {
		return lua.LFalse, "ERR protocol error in the embedded server's reply", nil
	}
	line, rest := b[1:end], b[end+2:]
	switch b[0] {
	case '+':
		t := l.NewTable()
		t.RawSetString("ok", lua.LString(line))
		return t, "", rest
	case '-':
		return lua.LFalse, string(line), rest
	case ':':
		n, err := strconv.ParseInt(string(line), 10, 64)
		if err != nil {
			return lua.LFalse, "ERR protocol error in the embedded server's reply", nil
		}
		return lua.LNumber(n), "", rest
	case '$':
		n, err := strconv.Atoi(string(line))
		if err != nil || n > len(rest) {
			return lua.LFalse, "ERR protocol error in the embedded server's reply", nil
		}
		if n < 0 {
			return lua.LFalse, "", rest
		}
		return lua.LString(rest[:n]), "", rest[min(n+2, len(rest)):]
	case '*':
		n, err := strconv.Atoi(string(line))
		if err != nil {
			return lua.LFalse, "ERR protocol error in the embedded server's reply", nil
		}
		if n < 0 {
			return lua.LFalse, "", rest
		}
		t := l.CreateTable(n, 0)
		for i := 1; i <= n; i++ {
			var v lua.LValue
			var msg string
			v, msg, rest = parseReply(l, rest)
			if msg != "" {
				v = l.NewTable()
				v.(*lua.LTable).RawSetString("err", lua.LString(msg))
			}
			t.RawSetInt(i, v)
		}
		return t, "", rest
	}
	return lua.LFalse, "ERR protocol error in the embedded server's reply", nil
}

// writeLua answers a script's result the way Redis converts it: a number
// as an integer (truncated), a string as bulk, true as 1, false and nil as
// nil, a table with err or ok as an error or status, any other table as
// the array of its values up to the first nil.
func writeLua(w *server.Writer, v lua.LValue) {
	switch v := v.(type) {
	case lua.LNumber:
		w.WriteInt(int(v))
	case lua.LString:
		w.WriteBulk(string(v))
	case lua.LBool:
		if v {
			w.WriteInt(1)
		} else {
			w.WriteNull()
		}
	case *lua.LTable:
		if e, ok := v.RawGetString("err").(lua.LString); ok {
			w.WriteError(oneLine(string(e)))
			return
		}
		if s, ok := v.RawGetString("ok").(lua.LString); ok {
			w.WriteInline(oneLine(string(s)))
			return
		}
		n := 0
		for v.RawGetInt(n+1) != lua.LNil {
			n++
		}
		w.WriteLen(n)
		for i := 1; i <= n; i++ {
			writeLua(w, v.RawGetInt(i))
		}
	default:
		w.WriteNull()
	}
}

// oneLine keeps a reply on one line: RESP errors and statuses end at the
// first line break.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
