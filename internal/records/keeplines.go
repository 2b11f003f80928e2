package records

import (
	"context"

	"github.com/convene/convene/internal/logkeep"
)

// KeepLines stores the lines a host's logger kept about calls and
// conferences (the database is the host's logkeep.Sink). A line stored
// already is not stored again, so a batch may be sent twice.
func (db *DB) KeepLines(ctx context.Context, lines []logkeep.Line) error {
	out := make([]LogLine, len(lines))
	for i, l := range lines {
		out[i] = LogLine{At: l.At, CallID: l.CallID, E164: l.E164, Level: l.Level, Node: l.Node, Message: l.Message, Attrs: l.Attrs}
	}
	return db.AddLogLines(ctx, out)
}
