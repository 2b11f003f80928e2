package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// durableAt starts a durable embedded server on dir and a client of it;
// both close with the test unless closed before.
func durableAt(t *testing.T, dir string, rewriteMin int64) (*Embedded, *redis.Client) {
	t.Helper()
	e, err := StartEmbeddedWith(EmbeddedOptions{Dir: dir, RewriteMin: rewriteMin})
	if err != nil {
		t.Fatal(err)
	}
	cl := redis.NewClient(&redis.Options{Addr: e.Addr(), DisableIdentity: true, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { cl.Close(); e.Close() })
	return e, cl
}

// contents renders every key of databases 0 to 15 with its type, value
// and time to live, in a fixed order, so that two servers' data compare.
func contents(t *testing.T, cl *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	conn := cl.Conn()
	defer conn.Close()
	var b strings.Builder
	for db := range maxDatabases {
		if err := conn.Select(ctx, db).Err(); err != nil {
			t.Fatal(err)
		}
		keys, err := conn.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		for _, k := range keys {
			typ := conn.Type(ctx, k).Val()
			var v any
			switch typ {
			case "string":
				v = conn.Get(ctx, k).Val()
			case "hash":
				v = conn.HGetAll(ctx, k).Val()
			case "set":
				m := conn.SMembers(ctx, k).Val()
				sort.Strings(m)
				v = m
			case "zset":
				v = conn.ZRangeWithScores(ctx, k, 0, -1).Val()
			case "list":
				v = conn.LRange(ctx, k, 0, -1).Val()
			}
			fmt.Fprintf(&b, "%d %q %s %v ttl=%v\n", db, k, typ, v, conn.PTTL(ctx, k).Val())
		}
	}
	return b.String()
}

// leaseLike reads the server's clock, as lease.lua does, and keeps it.
const leaseLike = `
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'until', t[1] .. '.' .. t[2])
return {'OK'}`

// everyType writes each kind of value Convene keeps, the way its scripts
// do, and fails halfway when told to (the writes before the failure stay,
// as on Redis).
const everyType = `
redis.call('HSET', KEYS[1], 'state', 'running', 'node', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'n', 2)
redis.call('HSETNX', KEYS[1], 'created', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1], 'x', 'y')
redis.call('SREM', KEYS[2], 'x')
redis.call('ZADD', KEYS[3], 5, ARGV[1], 7, 'other')
redis.call('ZREM', KEYS[3], 'other')
redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[5], ARGV[1])
redis.call('DEL', KEYS[6])
redis.pcall('INCR', KEYS[1])
if ARGV[2] == 'fail' then
  redis.call('INCR', KEYS[1])
end
return {'OK'}`

// writeEverything makes changes of every kind through plain commands,
// scripts, a transaction and the store's own operations.
func writeEverything(t *testing.T, cl *redis.Client, tag string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Plain commands.
	must(cl.Set(ctx, "s/"+tag, "v\r\n\x00binary", 0).Err())
	must(cl.Incr(ctx, "n/"+tag).Err())
	must(cl.IncrBy(ctx, "n/"+tag, 41).Err())
	must(cl.HSet(ctx, "h/"+tag, "a", "1", "b", "2").Err())
	must(cl.HIncrBy(ctx, "h/"+tag, "a", 5).Err())
	must(cl.HDel(ctx, "h/"+tag, "b").Err())
	must(cl.SAdd(ctx, "set/"+tag, "a", "b", "c").Err())
	must(cl.SRem(ctx, "set/"+tag, "b").Err())
	must(cl.ZAdd(ctx, "z/"+tag, redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2.5, Member: "b"}, redis.Z{Score: -3, Member: "c"}).Err())
	must(cl.ZRem(ctx, "z/"+tag, "c").Err())
	must(cl.ZIncrBy(ctx, "z/"+tag, 0.25, "a").Err())
	must(cl.RPush(ctx, "l/"+tag, "x", "y", "z").Err())
	must(cl.LPop(ctx, "l/"+tag).Err())
	must(cl.SetNX(ctx, "s/"+tag, "not this", 0).Err())
	must(cl.SetNX(ctx, "nx/"+tag, "this", 0).Err())
	must(cl.Expire(ctx, "nx/"+tag, time.Hour).Err())
	must(cl.Set(ctx, "gone/"+tag, "x", 0).Err())
	must(cl.Del(ctx, "gone/"+tag).Err())
	// A command that fails changes nothing and is not logged.
	if err := cl.Incr(ctx, "h/"+tag).Err(); err == nil {
		t.Fatal("INCR of a hash succeeded")
	}
	// Another database.
	opts := *cl.Options()
	opts.DB = 3
	db3 := redis.NewClient(&opts)
	defer db3.Close()
	must(db3.Set(ctx, "db3/"+tag, "three", 0).Err())
	must(db3.Eval(ctx, "return redis.call('SADD', KEYS[1], 'm')", []string{"db3set/" + tag}).Err())
	// Scripts: one that reads the clock, one that writes every type, one
	// that fails after writing.
	must(cl.Eval(ctx, leaseLike, []string{"lease/" + tag}, "css-"+tag).Err())
	keys := []string{"conf/" + tag, "confs/" + tag, "ends/" + tag, "seq/" + tag, "last/" + tag, "s/" + tag}
	must(cl.Eval(ctx, everyType, keys, tag, "").Err())
	failKeys := []string{"conf2/" + tag, "confs/" + tag, "ends/" + tag, "seq/" + tag, "last2/" + tag, "none"}
	if err := cl.Eval(ctx, everyType, failKeys, tag+"-2", "fail").Err(); err == nil {
		t.Fatal("the failing script succeeded")
	}
	// A transaction, with a script in it.
	_, err := cl.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "tx/"+tag, "a", 0)
		p.Eval(ctx, "return redis.call('APPEND', KEYS[1], 'b')", []string{"tx/" + tag})
		p.HSet(ctx, "txh/"+tag, "f", "v")
		return nil
	})
	must(err)
}

func TestDurableKeepsEveryWrite(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e, cl := durableAt(t, dir, 0)
	writeEverything(t, cl, "one")
	// The store's own operations: a domain, a conference, a template.
	s, err := Open(ctx, Options{URL: e.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublishDomain(ctx, DomainInfo{Moid: "acme", Name: "acme", Used: true}, license.Limits{"8_720p": 5}); err != nil {
		t.Fatal(err)
	}
	e164, err := s.Reserve(ctx, Reservation{
		Conf: protocol.Conference{E164: "", Name: "weekly", Domain: "acme", Platform: "p1", RealPlatform: "p1",
			Scale: 8, Resolution: "720p", DurationMinutes: 60, EndTime: time.Now().Add(time.Hour).UnixMilli()},
		Class: license.Class{Scale: 8, Resolution: "720p"}, Numbering: Numbering{Platform: "p1", Segment: "66", Digits: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, Placement{E164: e164, Node: "n1", IP: "10.0.0.1", PID: "7", Room: "r1", RealPlatform: "p1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTemplate(ctx, protocol.Template{Name: "tpl", Domain: "acme", Platform: "p1", Scale: 8, Resolution: "720p", DurationMinutes: 30, Public: true},
		Numbering{Platform: "p1", Segment: "66", Digits: 5}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	want := contents(t, cl)
	for _, k := range []string{"lease/one", "conf2/one", "tx/one", "db3/one", "confex/" + e164 + "/"} {
		if !strings.Contains(want, fmt.Sprintf("%q", k)) {
			t.Fatalf("the data written holds no %s:\n%s", k, want)
		}
	}
	cl.Close()
	e.Close()

	// Loaded from the log.
	e, cl = durableAt(t, dir, 0)
	if got := contents(t, cl); got != want {
		t.Fatalf("after a restart the data differs:\nwant\n%s\ngot\n%s", want, got)
	}
	// Loaded from the snapshot written at that start, plus more writes.
	writeEverything(t, cl, "two")
	want = contents(t, cl)
	cl.Close()
	e.Close()
	_, cl = durableAt(t, dir, 0)
	if got := contents(t, cl); got != want {
		t.Fatalf("after a second restart the data differs:\nwant\n%s\ngot\n%s", want, got)
	}
}

// A restart replays no command that fails: only writes that succeeded
// are in the log.
func TestDurableLogsOnlyWhatSucceeded(t *testing.T) {
	dir := t.TempDir()
	e, cl := durableAt(t, dir, 0)
	writeEverything(t, cl, "one")
	cl.Close()
	e.Close()
	sc, err := newScratch()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	plan, err := scanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := replay(dir, plan, plan.next, sc.applier, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.commands == 0 || st.errs != 0 || st.torn != "" {
		t.Fatalf("replay: %d commands, %d failed (first %q), torn %q", st.commands, st.errs, st.firstErr, st.torn)
	}
}

// lastLog is the path of the newest log in dir.
func lastLog(t *testing.T, dir string) string {
	t.Helper()
	plan, err := scanDir(dir)
	if err != nil || len(plan.logs) == 0 {
		t.Fatalf("no log in %s: %v", dir, err)
	}
	return filepath.Join(dir, logName(plan.logs[len(plan.logs)-1]))
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// A record cut short at the end of the log, as a crash while it was
// written leaves it, is dropped; what came before it loads.
func TestDurableIgnoresTornTail(t *testing.T) {
	torn := appendRecord(nil, time.Now().UnixNano(), []effect{{db: 0, args: []string{"SET", "torn", "x"}}})
	badSum := append([]byte(nil), torn...)
	badSum[len(badSum)-1] ^= 0xff
	cases := []struct {
		name string
		tail []byte
	}{
		{"half a record", torn[:len(torn)/2]},
		{"only part of the header", torn[:5]},
		{"last record fails its checksum", badSum},
		{"zeros after the last record", make([]byte, 4096)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			e, cl := durableAt(t, dir, 0)
			writeEverything(t, cl, "one")
			want := contents(t, cl)
			cl.Close()
			e.Close()
			appendFile(t, lastLog(t, dir), c.tail)

			e, cl = durableAt(t, dir, 0)
			if got := contents(t, cl); got != want {
				t.Fatalf("after a torn tail the data differs:\nwant\n%s\ngot\n%s", want, got)
			}
			// The start compacted the log: the next start is clean too.
			writeEverything(t, cl, "two")
			want = contents(t, cl)
			cl.Close()
			e.Close()
			_, cl = durableAt(t, dir, 0)
			if got := contents(t, cl); got != want {
				t.Fatal("after a second restart the data differs")
			}
		})
	}
}

// A damaged record with data after it is no crash's doing: the server
// refuses to start, and says where and what to do.
func TestDurableRefusesDamagedLog(t *testing.T) {
	dir := t.TempDir()
	e, cl := durableAt(t, dir, 0)
	writeEverything(t, cl, "one")
	cl.Close()
	e.Close()
	path := lastLog(t, dir)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := len(fileMagic) + frameHeader + 3 // inside the first record's payload
	b[at] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = StartEmbeddedWith(EmbeddedOptions{Dir: dir})
	if !errors.Is(err, ErrStoreCorrupt) {
		t.Fatalf("start on a damaged log: %v, want %v", err, ErrStoreCorrupt)
	}
	for _, want := range []string{"STORE_CORRUPT", path, fmt.Sprintf("truncate -s %d", len(fileMagic))} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the error %q does not say %q", err, want)
		}
	}
}

// Compaction while writes go on keeps every write, and leaves only the
// newest generation's files.
func TestDurableCompactionKeepsData(t *testing.T) {
	dir := t.TempDir()
	e, cl := durableAt(t, dir, 8<<10)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 600 {
				k := fmt.Sprintf("conf/%d/%d", w, i%150)
				if err := cl.HSet(ctx, k, "i", i, "w", w).Err(); err != nil {
					t.Error(err)
					return
				}
				if err := cl.Eval(ctx, "redis.call('SADD', KEYS[1], ARGV[1]) redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) return 1",
					[]string{"all", "ends"}, k, i).Err(); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					if err := cl.Del(ctx, fmt.Sprintf("conf/%d/%d", w, (i+3)%150)).Err(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e.p.stats()
		if st.Rewrites >= 2 && !st.Rewriting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two compactions finished: %+v", st)
		}
		// Writes drive compaction: keep writing until two finished.
		if err := cl.Incr(ctx, "tick").Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	plan, err := scanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.files) > 3 {
		t.Fatalf("old generations were not removed: %+v", plan.files)
	}
	want := contents(t, cl)
	cl.Close()
	e.Close()
	_, cl = durableAt(t, dir, 8<<10)
	if got := contents(t, cl); got != want {
		t.Fatal("after compactions and a restart the data differs")
	}
}

func TestDurableDirectoryLocked(t *testing.T) {
	dir := t.TempDir()
	e, _ := durableAt(t, dir, 0)
	_, err := StartEmbeddedWith(EmbeddedOptions{Dir: dir})
	if !errors.Is(err, ErrStoreLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("a second server on the same directory: %v, want %v naming the directory and the pid", err, ErrStoreLocked)
	}
	e.Close()
	e2, err := StartEmbeddedWith(EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	e2.Close()
}

// When the log cannot be written, the write is answered with an error and
// later writes are refused; reads go on.
func TestDurableRefusesWritesItCannotKeep(t *testing.T) {
	e, cl := durableAt(t, t.TempDir(), 0)
	ctx := context.Background()
	if err := cl.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.p.mu.Lock()
	e.p.f.Close() // as a disk that stopped taking writes
	e.p.mu.Unlock()
	for _, err := range []error{
		cl.Set(ctx, "k", "v", 0).Err(),
		cl.Eval(ctx, "return redis.call('SET', KEYS[1], 'v')", []string{"k2"}).Err(),
		cl.HSet(ctx, "h", "f", "v").Err(),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "STORE_PERSIST ") {
			t.Fatalf("a write the log cannot keep answered %v", err)
		}
	}
	if v, err := cl.Get(ctx, "before").Result(); err != nil || v != "1" {
		t.Fatalf("a read answered %q, %v", v, err)
	}
}

// Commands a replay would not repeat, or whose values a snapshot does not
// keep, are refused with a clear error; transactions queue and abort as
// on Redis.
func TestDurableRefusals(t *testing.T) {
	_, cl := durableAt(t, t.TempDir(), 0)
	ctx := context.Background()
	for name, err := range map[string]error{
		"SPOP":        cl.SPop(ctx, "s").Err(),
		"XADD":        cl.XAdd(ctx, &redis.XAddArgs{Stream: "x", Values: []string{"a", "b"}}).Err(),
		"WATCH":       cl.Do(ctx, "WATCH", "k").Err(),
		"SELECT 16":   cl.Do(ctx, "SELECT", "16").Err(),
		"SPOP script": cl.Eval(ctx, "return redis.call('SPOP', KEYS[1])", []string{"s"}).Err(),
		"nested EVAL": cl.Eval(ctx, "return redis.call('EVAL', 'return 1', 0)", nil).Err(),
	} {
		if err == nil {
			t.Errorf("%s was not refused", name)
		}
	}
	_, err := cl.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "a", "1", 0)
		p.Do(ctx, "NOSUCHCOMMAND")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
		t.Fatalf("a transaction with an unknown command: %v, want EXECABORT", err)
	}
	if n := cl.Exists(ctx, "a").Val(); n != 0 {
		t.Fatal("an aborted transaction wrote")
	}
}

// A log cut short before a later one (a machine crash in the middle of a
// compaction) ends the load there: the later log's records, which came
// after the lost ones, are not applied on top of a gap.
func TestDurableLoadStopsAtTheFirstCut(t *testing.T) {
	dir := t.TempDir()
	e, cl := durableAt(t, dir, 0)
	ctx := context.Background()
	if err := cl.Set(ctx, "kept", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Set(ctx, "lost", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	gen := e.p.stats().Gen
	cl.Close()
	e.Close()
	path := filepath.Join(dir, logName(gen))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-3); err != nil { // "lost" cut short
		t.Fatal(err)
	}
	next, err := createLog(dir, gen+1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := next.Write(appendRecord(nil, time.Now().UnixNano(), []effect{{args: []string{"SET", "after", "1"}}})); err != nil {
		t.Fatal(err)
	}
	next.Close()

	_, cl = durableAt(t, dir, 0)
	for k, want := range map[string]int64{"kept": 1, "lost": 0, "after": 0} {
		if n := cl.Exists(ctx, k).Val(); n != want {
			t.Errorf("%s exists: %d, want %d", k, n, want)
		}
	}
}

// Writes from many connections at once, plain and scripted, are logged
// in the order they ran: appends to one value replay to the same value.
func TestDurableKeepsTheOrderWritesRan(t *testing.T) {
	dir := t.TempDir()
	e, cl := durableAt(t, dir, 0)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				var err error
				if i%2 == 0 {
					err = cl.Append(ctx, "order", fmt.Sprintf("%d.%d,", w, i)).Err()
				} else {
					err = cl.Eval(ctx, "return redis.call('APPEND', KEYS[1], ARGV[1])", []string{"order"}, fmt.Sprintf("%d.%d;", w, i)).Err()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := cl.Get(ctx, "order").Val()
	cl.Close()
	e.Close()
	_, cl = durableAt(t, dir, 0)
	if got := cl.Get(ctx, "order").Val(); got != want {
		t.Fatalf("after a restart the appends are in another order:\nwant %s\ngot  %s", want, got)
	}
}
