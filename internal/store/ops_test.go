package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// A script run again under the same operation id answers what its first
// run answered and changes nothing, on both servers, for every kind of
// reply the scripts give.
func TestRepeatedOperationAnswersAsTheFirst(t *testing.T) {
	replies := []struct{ name, lua string }{
		{"string", "'x'"},
		{"empty string", "''"},
		{"string with separators and bytes", "'s3:t1:' .. string.char(0, 13, 10, 255) .. ':'"},
		{"integer", "42"},
		{"negative", "-7"},
		{"fraction truncated", "3.7"},
		{"large", "1700000000000"},
		{"true", "true"},
		{"false", "false"},
		{"empty array", "{}"},
		{"nested arrays", "{'OK', 1, {'a', {2, 'b'}, {}}, 'z'}"},
		{"array ends at nil", "{1, nil, 3}"},
		{"false inside an array", "{'a', false, 'b'}"},
		{"status", "redis.status_reply('FINE')"},
		{"refusal", "{'ERR', 'E164_IN_USE', '6600001'}"},
		{"counter read back", "redis.call('GET', 'runs')"},
	}
	ctx := context.Background()
	for name, cl := range rawBackends(t) {
		t.Run(name, func(t *testing.T) {
			for i, r := range replies {
				t.Run(r.name, func(t *testing.T) {
					sc := store.WrapScript("redis.call('INCR', 'runs') return " + r.lua)
					cl.Set(ctx, "runs", 0, 0)
					id := fmt.Sprintf("op-%d", i)
					first := describe(sc.Run(ctx, cl, nil, id).Result())
					again := describe(sc.Run(ctx, cl, nil, id).Result())
					if again != first {
						t.Fatalf("first run answered %s, the repeat %s", first, again)
					}
					if n, _ := cl.Get(ctx, "runs").Int(); n != 1 {
						t.Fatalf("the body ran %d times", n)
					}
					raw := describe(cl.Eval(ctx, "return "+r.lua, nil).Result())
					if r.name != "counter read back" && first != raw {
						t.Fatalf("wrapped script answered %s, the bare one %s", first, raw)
					}
					// Another operation runs.
					sc.Run(ctx, cl, nil, id+"-other")
					if n, _ := cl.Get(ctx, "runs").Int(); n != 2 {
						t.Fatalf("a new operation ran the body %d times in all, want 2", n)
					}
				})
			}
			// No id: nothing is recorded, every run runs.
			sc := store.WrapScript("return redis.call('INCR', 'free')")
			sc.Run(ctx, cl, nil, "")
			if n, _ := sc.Run(ctx, cl, nil, "").Int(); n != 2 {
				t.Fatalf("runs without an id: counter %d, want 2", n)
			}
		})
	}
}

// Replies are kept for a while, and each recording run removes a bounded
// number of expired ones: the records do not grow without end, also on the
// embedded server, which runs no key expiry.
func TestOperationRecordsArePruned(t *testing.T) {
	ctx := context.Background()
	for name, cl := range rawBackends(t) {
		t.Run(name, func(t *testing.T) {
			for i := range 40 {
				id := fmt.Sprintf("old-%02d", i)
				cl.RPush(ctx, "ops/queue", "1 "+id)
				cl.HSet(ctx, "ops/replies", id, "s2:OK")
			}
			cl.RPush(ctx, "ops/queue", "not a record")
			// Records are pruned every few runs: after 16, the expired
			// ones (and the entry that is not a record) are gone.
			sc := store.WrapScript("return 'x'")
			for i := range 16 {
				if err := sc.Run(ctx, cl, nil, fmt.Sprintf("new-%d", i)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if n := cl.LLen(ctx, "ops/queue").Val(); n != 16 {
				t.Fatalf("%d operation records left, want the 16 new ones", n)
			}
			if n := cl.HLen(ctx, "ops/replies").Val(); n != 16 {
				t.Fatalf("%d replies left, want the 16 new ones", n)
			}
			// An expired record no longer answers: the operation runs anew.
			if got, _ := sc.Run(ctx, cl, nil, "old-00").Text(); got != "x" {
				t.Fatalf("a pruned operation answered %q", got)
			}
			// A record still young stays, and still answers.
			if got, _ := sc.Run(ctx, cl, nil, "new-0").Text(); got != "x" {
				t.Fatalf("a kept operation answered %q", got)
			}
			if n := cl.HLen(ctx, "ops/replies").Val(); n != 17 {
				t.Fatalf("%d replies after a repeat and a new run, want 17", n)
			}
		})
	}
}

// A store kept by an earlier version holds its operation records in a
// sorted set; opening it moves them, oldest first, to where they are kept
// now, and the expired ones are then pruned like the others while young
// ones still answer a repeat.
func TestOperationRecordsOfAnEarlierVersionAreTakenOver(t *testing.T) {
	ctx := context.Background()
	for name, cl := range rawBackends(t) {
		t.Run(name, func(t *testing.T) {
			young := time.Now().UnixMilli()
			for i := range 40 {
				id := fmt.Sprintf("old-%02d", i)
				cl.ZAdd(ctx, "ops/times", redis.Z{Score: float64(1 + i), Member: id})
				cl.HSet(ctx, "ops/replies", id, "s2:OK")
			}
			cl.ZAdd(ctx, "ops/times", redis.Z{Score: float64(young), Member: "young"})
			cl.HSet(ctx, "ops/replies", "young", "s5:kept!")
			st, err := store.Open(ctx, store.Options{URL: cl.Options().Addr}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if n := cl.Exists(ctx, "ops/times").Val(); n != 0 {
				t.Fatal("the sorted set of an earlier version is still there")
			}
			q := cl.LRange(ctx, "ops/queue", 0, -1).Val()
			if len(q) != 41 || q[0] != "1 old-00" || q[39] != "40 old-39" || q[40] != fmt.Sprintf("%d young", young) {
				t.Fatalf("queue after taking over: %d records, %q", len(q), q)
			}
			sc := store.WrapScript("return 'x'")
			for i := range 16 {
				if err := sc.Run(ctx, cl, nil, fmt.Sprintf("new-%d", i)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if n := cl.HLen(ctx, "ops/replies").Val(); n != 17 {
				t.Fatalf("%d replies left, want the young one and the 16 new ones", n)
			}
			if got, _ := sc.Run(ctx, cl, nil, "young").Text(); got != "kept!" {
				t.Fatalf("a young record of an earlier version answered %q", got)
			}
		})
	}
}

// A server that lost the scripts (restarted, or SCRIPT FLUSH) is given
// them again by the next write, which then runs as if nothing happened.
func TestWritesAfterTheServerLostItsScripts(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 4})
		if _, err := s.Reserve(ctx, reservation("acme", "")); err != nil {
			t.Fatal(err)
		}
		if err := s.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		e164, err := s.Reserve(ctx, reservation("acme", ""))
		if err != nil {
			t.Fatalf("reserve after the scripts were flushed: %v", err)
		}
		if _, err := s.Commit(ctx, store.Placement{E164: e164, Node: "n1"}); err != nil {
			t.Fatalf("commit after the scripts were flushed: %v", err)
		}
		if err := s.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Delay(ctx, e164, 5); err != nil {
			t.Fatalf("delay after the scripts were flushed: %v", err)
		}
	})

}
