package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/store"
)

// rawBackends gives a client of the embedded server, in memory and on
// disk, and one of a real redis-server, each on an empty database.
func rawBackends(t *testing.T) map[string]*redis.Client {
	e, err := store.StartEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	d, err := store.StartEmbeddedWith(store.EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	r := redistest.Start(t, redistest.Options{})
	out := map[string]*redis.Client{}
	for name, addr := range map[string]string{"embedded": e.Addr(), "embedded on disk": d.Addr(), "redis-server": strings.TrimPrefix(r.URL(), "redis://")} {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		out[name] = c
	}
	return out
}

// describe renders a script's answer so answers of both servers compare.
func describe(v any, err error) string {
	switch {
	case errors.Is(err, redis.Nil):
		return "nil"
	case err != nil:
		return "error"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// The embedded server runs scripts on Convene's own runner; each script
// here must answer on it exactly as on redis-server.
func TestEmbeddedScriptsAnswerAsRedis(t *testing.T) {
	cases := []struct {
		name, src string
		keys      []string
		args      []any
	}{
		{"integer truncated", "return 3.7", nil, nil},
		{"string", "return 'x'", nil, nil},
		{"true is 1", "return true", nil, nil},
		{"false is nil", "return false", nil, nil},
		{"nested arrays", "return {1, 'a', {2, 'b'}}", nil, nil},
		{"array ends at nil", "return {1, nil, 3}", nil, nil},
		{"status reply", "return redis.status_reply('FINE')", nil, nil},
		{"error reply", "return redis.error_reply('MYERR boom')", nil, nil},
		{"keys and args", "return {KEYS[1], ARGV[1], ARGV[2], #KEYS, #ARGV}", []string{"k"}, []any{"a", 7}},
		{"missing key is false", "if redis.call('GET', KEYS[1]) == false then return 'false' end return 'other'", []string{"nokey"}, nil},
		{"numbers as arguments", "redis.call('SET', KEYS[1], 5) redis.call('INCRBY', KEYS[1], 2.0) return redis.call('GET', KEYS[1])", []string{"n"}, nil},
		{"hmget with a hole", "redis.call('HSET', KEYS[1], 'a', '1') local v = redis.call('HMGET', KEYS[1], 'a', 'zz') return {v[1], type(v[2]), tostring(v[2])}", []string{"h"}, nil},
		{"status from a call", "local r = redis.call('SET', KEYS[1], 'v') return r.ok", []string{"s"}, nil},
		{"pcall gives the error as a table", "redis.call('HSET', KEYS[1], 'a', '1') local r = redis.pcall('INCR', KEYS[1]) return {type(r), type(r.err)}", []string{"wrongtype"}, nil},
		{"call raises the error", "redis.call('HSET', KEYS[1], 'a', '1') redis.call('INCR', KEYS[1]) return 'not reached'", []string{"wrongtype2"}, nil},
		{"globals cannot be created", "x = 1 return 'created'", nil, nil},
		{"runtime error", "return nil + 1", nil, nil},
		{"syntax error", "return (", nil, nil},
		{"sets and sorted sets", "redis.call('SADD', KEYS[1], 'b', 'a') redis.call('ZADD', KEYS[2], 2, 'y', 1, 'x') local m = redis.call('SMEMBERS', KEYS[1]) table.sort(m) return {m[1], m[2], redis.call('ZRANGE', KEYS[2], 0, -1)[1], redis.call('ZSCORE', KEYS[2], 'y')}", []string{"set", "zset"}, nil},
		{"string library", "return string.format('%05d', 42) .. tostring(tonumber('7') + 1)", nil, nil},
	}
	clients := rawBackends(t)
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]string{}
			for name, cl := range clients {
				got[name] = describe(redis.NewScript(c.src).Run(ctx, cl, c.keys, c.args...).Result())
			}
			for name, g := range got {
				if g != got["redis-server"] {
					t.Fatalf("%s answered %q, redis-server %q", name, g, got["redis-server"])
				}
			}
		})
	}
	// Errors carry the reply's own text.
	for name, cl := range clients {
		err := redis.NewScript("return redis.error_reply('MYERR boom')").Run(ctx, cl, nil).Err()
		if err == nil || err.Error() != "MYERR boom" {
			t.Fatalf("%s: error reply came back as %v", name, err)
		}
	}
}

func TestEmbeddedScriptCache(t *testing.T) {
	ctx := context.Background()
	for name, cl := range rawBackends(t) {
		t.Run(name, func(t *testing.T) {
			const src = "return ARGV[1] .. '!'"
			if err := cl.EvalSha(ctx, "0000000000000000000000000000000000000000", nil).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
				t.Fatalf("unknown sha answered %v, want NOSCRIPT", err)
			}
			sha, err := cl.ScriptLoad(ctx, src).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := cl.EvalSha(ctx, sha, nil, "hi").Result(); err != nil || got != "hi!" {
				t.Fatalf("EVALSHA answered %v, %v", got, err)
			}
			if got, err := cl.ScriptExists(ctx, sha, "00").Result(); err != nil || len(got) != 2 || !got[0] || got[1] {
				t.Fatalf("SCRIPT EXISTS answered %v, %v", got, err)
			}
			if err := cl.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := cl.EvalSha(ctx, sha, nil, "hi").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
				t.Fatalf("flushed sha answered %v, want NOSCRIPT", err)
			}
		})
	}
}

// No command sees a script half done: readers of two counters a script
// raises together always find them equal.
func TestEmbeddedScriptsAreAtomic(t *testing.T) {
	ctx := context.Background()
	for name, cl := range rawBackends(t) {
		t.Run(name, func(t *testing.T) {
			bump := redis.NewScript(`
redis.call('INCR', KEYS[1])
for i = 1, 200 do redis.call('HSET', KEYS[3], 'f' .. i, i) end
redis.call('INCR', KEYS[2])
return 1`)
			keys := []string{"a", "b", "scratch"}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			var torn, reads int
			var mu sync.Mutex
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						v, err := cl.MGet(ctx, "a", "b").Result()
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						reads++
						if fmt.Sprint(v[0]) != fmt.Sprint(v[1]) {
							torn++
						}
						mu.Unlock()
					}
				}()
			}
			var writers sync.WaitGroup
			for range 4 {
				writers.Add(1)
				go func() {
					defer writers.Done()
					for range 50 {
						if err := bump.Run(ctx, cl, keys).Err(); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			writers.Wait()
			close(stop)
			wg.Wait()
			if reads == 0 {
				t.Fatal("no read ran while the scripts did")
			}
			if torn > 0 {
				t.Fatalf("%d of %d reads saw a script half done", torn, reads)
			}
			if n, err := cl.Get(ctx, "b").Int(); err != nil || n != 200 {
				t.Fatalf("b = %d, %v after 200 runs", n, err)
			}
		})
	}
}

// A script inside MULTI is queued and run by EXEC, in order.
func TestEmbeddedScriptInsideMulti(t *testing.T) {
	ctx := context.Background()
	for name, cl := range rawBackends(t) {
		t.Run(name, func(t *testing.T) {
			var get *redis.StringCmd
			var eval *redis.Cmd
			_, err := cl.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "k", "v", 0)
				eval = p.Eval(ctx, "return redis.call('GET', KEYS[1]) .. '!'", []string{"k"})
				p.Set(ctx, "k", "w", 0)
				get = p.Get(ctx, "k")
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := eval.Text(); got != "v!" {
				t.Fatalf("the script in the transaction answered %q, want v!", got)
			}
			if got := get.Val(); got != "w" {
				t.Fatalf("GET after it answered %q", got)
			}
			// Outside a transaction the runner takes scripts again.
			if got, err := cl.Eval(ctx, "return 2", nil).Int(); err != nil || got != 2 {
				t.Fatalf("after the transaction a script answered %v, %v", got, err)
			}
		})
	}
}

// A script runs on the database its caller selected.
func TestEmbeddedScriptOnSelectedDatabase(t *testing.T) {
	ctx := context.Background()
	for name, cl := range rawBackends(t) {
		t.Run(name, func(t *testing.T) {
			opts := *cl.Options()
			opts.DB = 3
			db3 := redis.NewClient(&opts)
			t.Cleanup(func() { db3.Close() })
			if err := db3.Eval(ctx, "return redis.call('SET', KEYS[1], 'three')", []string{"where"}).Err(); err != nil {
				t.Fatal(err)
			}
			if err := cl.Eval(ctx, "return redis.call('SET', KEYS[1], 'zero')", []string{"where"}).Err(); err != nil {
				t.Fatal(err)
			}
			if got := db3.Get(ctx, "where").Val(); got != "three" {
				t.Fatalf("database 3 holds %q", got)
			}
			if got := cl.Get(ctx, "where").Val(); got != "zero" {
				t.Fatalf("database 0 holds %q", got)
			}
		})
	}
}
