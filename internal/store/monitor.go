package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Monitor is one monitoring session of a conference: the media node streams
// it to Addr (ip:port).
type Monitor struct {
	E164        string
	Addr        string
	KeepAliveMs int64
}

// AddMonitor records a monitoring session, alive as of now (Unix ms).
// Errors: ErrConfNotFound.
func (s *Store) AddMonitor(ctx context.Context, e164, addr string, now int64) error {
	_, err := s.run(ctx, monitorScript, e164, "add", e164, addr, strconv.FormatInt(now, 10))
	return err
}

// KeepMonitorAlive renews a session. Errors: ErrMonitorNotFound.
func (s *Store) KeepMonitorAlive(ctx context.Context, e164, addr string, now int64) error {
	_, err := s.run(ctx, monitorScript, e164, "keepalive", e164, addr, strconv.FormatInt(now, 10))
	return err
}

// RemoveMonitor forgets a session. Errors: ErrMonitorNotFound.
func (s *Store) RemoveMonitor(ctx context.Context, e164, addr string) error {
	_, err := s.run(ctx, monitorScript, e164, "remove", e164, addr, "0")
	return err
}

// Monitors lists a conference's sessions.
func (s *Store) Monitors(ctx context.Context, e164 string) ([]Monitor, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	zs, err := s.rdb.ZRangeWithScores(ctx, monitorKey(e164), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make([]Monitor, 0, len(zs))
	for _, z := range zs {
		out = append(out, Monitor{E164: e164, Addr: fmt.Sprint(z.Member), KeepAliveMs: int64(z.Score)})
	}
	return out, nil
}

// StaleMonitors lists sessions not kept alive since before (Unix ms).
func (s *Store) StaleMonitors(ctx context.Context, before int64) ([]Monitor, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, monitorsKey, &redis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(before, 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make([]Monitor, 0, len(zs))
	for _, z := range zs {
		e164, addr, ok := strings.Cut(fmt.Sprint(z.Member), "|")
		if !ok {
			continue
		}
		out = append(out, Monitor{E164: e164, Addr: addr, KeepAliveMs: int64(z.Score)})
	}
	return out, nil
}
