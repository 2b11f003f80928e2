package cdr

import (
	"context"
	"fmt"

	"github.com/convene/convene/internal/records"
)

// Step is a step of a call that Post reports.
type Step int

// The steps of a call.
const (
	Started Step = iota + 1
	Answered
	Ended
)

func (k Step) kind() (records.CallStepKind, bool) {
	switch k {
	case Started:
		return records.CallStart, true
	case Answered:
		return records.CallAnswer, true
	case Ended:
		return records.CallEnd, true
	}
	return 0, false
}

// Post reports a step of a call as CallStarted, CallAnswered and
// CallEnded do, without waiting for its write: done, when not nil, is
// told the outcome once the write's transaction ends (nil: written),
// from the writer's goroutine, so it must not block. Post itself waits
// only while the write queue is full, until ctx ends; it returns an
// error (ErrInvalidEvent, ErrClosed, ctx's) instead of calling done when
// the step was not queued. A step posted again after a failure is safe:
// every write is idempotent.
func (s *Service) Post(ctx context.Context, k Step, e CallEvent, done func(error)) error {
	kind, ok := k.kind()
	if !ok {
		return fmt.Errorf("%w: step %d is not a step of a call", ErrInvalidEvent, k)
	}
	if err := e.check(); err != nil {
		return err
	}
	return s.enqueue(ctx, &op{step: e.step(kind, s.opts.Now()), isStep: true, done: done})
}

// PostLog keeps a log line as Log does, without waiting for its write;
// done and the errors are Post's.
func (s *Service) PostLog(ctx context.Context, callID string, l LogLine, done func(error)) error {
	if err := s.checkLine(callID, l); err != nil {
		return err
	}
	return s.enqueue(ctx, &op{line: l.record(callID, s.opts.Now()), done: done})
}
