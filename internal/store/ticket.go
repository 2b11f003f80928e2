package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Breakout WebSocket tickets are single-use. The breakout service records
// each ticket's redemption and who made it, and keeps the record until the
// ticket cannot be valid any more:
//
//	breakouts/tickets         hash: ticket id -> redeemer
//	breakouts/tickets/until   zset: ticket id -> when its record may go (Unix ms)
//
// Both writes are plain commands that are safe to repeat (HSETNX, ZADD NX)
// in one MULTI/EXEC, so a redemption whose reply was lost and that runs
// again finds its own redeemer, not someone else's. The records go by a
// sweep, not by key expiry, which the embedded server does not run.
const (
	ticketsKey         = "breakouts/tickets"
	ticketsUntilKey    = "breakouts/tickets/until"
	ticketsAttemptsKey = "breakouts/tickets/attempts"
)

// TicketAttempt counts one more connection made with ticket id (its
// first, or a retry with the same nonce) and answers its number: a later
// connection of one ticket has a higher one. A repeat after a lost reply
// only skips a number. The count goes with the ticket's record.
func (s *Store) TicketAttempt(ctx context.Context, id string) (int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := s.rdb.HIncrBy(ctx, ticketsAttemptsKey, id, 1).Result()
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return n, nil
}

// RedeemTicket records that redeemer used ticket id, unless someone did
// first, and keeps the record until until (Unix ms). It returns who holds
// the ticket: redeemer itself when this redemption, or an earlier one by
// the same redeemer, was first.
func (s *Store) RedeemTicket(ctx context.Context, id, redeemer string, until int64) (string, error) {
	if id == "" || redeemer == "" {
		return "", errors.New("store: a ticket redemption needs a ticket id and a redeemer")
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var holder *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, ticketsKey, id, redeemer)
		p.ZAddNX(ctx, ticketsUntilKey, redis.Z{Score: float64(until), Member: id})
		holder = p.HGet(ctx, ticketsKey, id)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return holder.Val(), nil
}

// ForgetTickets removes the redemption records kept until before now
// (Unix ms), up to limit of them, and says how many went. Safe to repeat.
func (s *Store) ForgetTickets(ctx context.Context, now int64, limit int) (int, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	ids, err := s.rdb.ZRangeByScore(ctx, ticketsUntilKey, &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(now, 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, ticketsKey, ids...)
		p.HDel(ctx, ticketsAttemptsKey, ids...)
		p.ZRem(ctx, ticketsUntilKey, members...)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return len(ids), nil
}
