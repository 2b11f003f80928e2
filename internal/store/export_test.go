package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// WrapScript wraps a script body as the store wraps its own: ARGV[1] is
// the operation id.
func WrapScript(body string) *redis.Script {
	lib, err := luaFS.ReadFile("lua/lib.lua")
	if err != nil {
		panic(err)
	}
	return wrap(string(lib), body)
}

// LoadScripts loads every script of the store on its server, so that a
// test's first run of one is an EVALSHA, not an EVALSHA answered NOSCRIPT
// and then an EVAL.
func (s *Store) LoadScripts(ctx context.Context) error {
	for _, sc := range []*redis.Script{createScript, leaseScript, releaseScript, delayScript, updateScript,
		monitorScript, domainScript, templateScript, breakoutScript, recoveryScript} {
		if err := sc.Load(ctx, s.wdb).Err(); err != nil {
			return err
		}
	}
	return nil
}
