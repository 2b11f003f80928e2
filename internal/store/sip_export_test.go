package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// LoadSIPScripts loads the SIP edge's scripts on the store's server.
func (s *Store) LoadSIPScripts(ctx context.Context) error {
	for _, sc := range []*redis.Script{sipRegisterScript, sipNonceScript, sipCallScript} {
		if err := sc.Load(ctx, s.wdb).Err(); err != nil {
			return err
		}
	}
	return nil
}
