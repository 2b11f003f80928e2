package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// clientLog takes the redis client's own messages, such as one line per
// failed dial while the store is down, which would otherwise be printed
// to stderr by the thousand. Every failure they report also reaches the
// caller of the store as an error, so they are kept at debug level.
type clientLog struct{}

func (clientLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "store client", "msg", fmt.Sprintf(format, v...))
}

func init() { redis.SetLogger(clientLog{}) }
