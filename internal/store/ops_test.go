package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/store"
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
				cl.ZAdd(ctx, "ops/times", redis.Z{Score: 1, Member: id})
				cl.HSet(ctx, "ops/replies", id, "s2:OK")
			}
			sc := store.WrapScript("return 'x'")
			for i := range 2 {
				if err := sc.Run(ctx, cl, nil, fmt.Sprintf("new-%d", i)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if n := cl.ZCard(ctx, "ops/times").Val(); n != 2 {
				t.Fatalf("%d operation records left, want the 2 new ones", n)
			}
			if n := cl.HLen(ctx, "ops/replies").Val(); n != 2 {
				t.Fatalf("%d replies left, want the 2 new ones", n)
			}
			// An expired record no longer answers: the operation runs anew.
			if got, _ := sc.Run(ctx, cl, nil, "old-00").Text(); got != "x" {
				t.Fatalf("a pruned operation answered %q", got)
			}
		})
	}
}
