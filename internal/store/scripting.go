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
type scriptRunner struct {
	srv *server.Server
	mu  sync.RWMutex // a script: exclusive; any other command: shared

	passMu  sync.Mutex
	passing map[*server.Peer]bool   // peers whose command is being run under mu
	multi   map[*server.Peer]bool   // peers between MULTI and EXEC or DISCARD
	dbs     map[*server.Peer]string // peers that selected a database
	watched map[*server.Peer]bool   // peers whose disconnect clears the two above

	// Under mu held exclusively.
	l      *lua.LState
	protos map[string]*lua.FunctionProto // sha1 -> compiled script
	peer   *server.Peer                  // the connection a script's calls use
	peerDB string                        // the database peer has selected
	out    bytes.Buffer                  // what the server answered a call
	outW   *bufio.Writer
}

// installScripts puts a runner in front of srv's command dispatch.
func installScripts(srv *server.Server) *scriptRunner {
	r := &scriptRunner{srv: srv, passing: map[*server.Peer]bool{}, multi: map[*server.Peer]bool{}, dbs: map[*server.Peer]string{}, watched: map[*server.Peer]bool{}, peerDB: "0", protos: map[string]*lua.FunctionProto{}}
	r.outW = bufio.NewWriter(&r.out)
	r.peer = server.NewPeer(r.outW)
	r.l = r.newVM()
	srv.SetPreHook(r.hook)
	return r
}

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
	inMulti, db := r.multi[c], r.dbs[c]
	r.passMu.Unlock()
	if !inMulti {
		switch cmd {
		case "EVAL", "EVALSHA":
			r.mu.Lock()
			r.selectDB(db)
			r.eval(c, cmd, args)
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
		if err != nil || n < 0 || n >= 16 {
			return
		}
		r.dbs[c] = args[0]
	default:
		return
	}
	if !r.watched[c] {
		r.watched[c] = true
		// Runs on the connection's own goroutine, as this does.
		c.OnDisconnect(func() {
			r.passMu.Lock()
			delete(r.multi, c)
			delete(r.dbs, c)
			delete(r.watched, c)
			r.passMu.Unlock()
		})
	}
}

// selectDB points the scripts' connection at a database.
func (r *scriptRunner) selectDB(db string) {
	if db == "" {
		db = "0"
	}
	if db == r.peerDB {
		return
	}
	if bytes.HasPrefix(r.dispatch([]string{"SELECT", db}), []byte("+OK")) {
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

// eval runs EVAL script|EVALSHA sha numkeys key... arg....
func (r *scriptRunner) eval(c *server.Peer, cmd string, args []string) {
	if len(args) < 2 {
		c.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(cmd)))
		return
	}
	var sha string
	if cmd == "EVAL" {
		var err error
		if sha, err = r.compile(args[0]); err != nil {
			c.WriteError(err.Error())
			return
		}
	} else {
		sha = strings.ToLower(args[0])
	}
	proto, ok := r.protos[sha]
	if !ok {
		c.WriteError("NOSCRIPT No matching script. Please use EVAL.")
		return
	}
	nkeys, err := strconv.Atoi(args[1])
	switch {
	case err != nil:
		c.WriteError("ERR value is not an integer or out of range")
		return
	case nkeys < 0:
		c.WriteError("ERR Number of keys can't be negative")
		return
	case nkeys > len(args)-2:
		c.WriteError("ERR Number of keys can't be greater than number of args")
		return
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
		c.WriteError("ERR Error running script (call to f_" + sha + "): " + oneLine(msg))
		return
	}
	res := l.Get(-1)
	l.SetTop(0)
	c.Block(func(w *server.Writer) { writeLua(w, res) })
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
	v, errMsg, _ := parseReply(l, r.dispatch(args))
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
