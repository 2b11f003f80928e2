package testkit

import (
	"fmt"
	"testing"
	"time"
)

// Wait is the deadline tests give a condition when they have no reason to
// choose another: long enough for a loaded machine, never a measure.
const Wait = 10 * time.Second

// pollEvery is the least pause between two checks of a condition; a
// condition that takes longer to check (reading a whole store) is checked
// less often, so that the checking does not load what it waits for.
const pollEvery = 10 * time.Millisecond

// maxPause bounds the pause, so that a slow check does not leave a test
// waiting long after its condition holds.
const maxPause = 500 * time.Millisecond

// pause is the wait after a check that took took: twice as long, so that
// checking takes at most a third of the time, within pollEvery and
// maxPause.
func pause(took time.Duration) time.Duration { return min(maxPause, max(pollEvery, 2*took)) }

// Eventually checks cond until it returns nil and fails the test when
// timeout passes first, with cond's last error: what was still missing.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// poll checks cond until it returns nil, and returns nil then; after
// timeout it returns cond's last error.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		began := time.Now()
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not so after %s: %w", timeout, err)
		}
		time.Sleep(pause(time.Since(began)))
	}
}

// Cond is a condition for Eventually made of a predicate: its error says
// what was awaited.
func Cond(what string, ok func() bool) func() error {
	return func() error {
		if ok() {
			return nil
		}
		return fmt.Errorf("waiting for %s", what)
	}
}

// Await fails the test unless ok holds within Wait; what names what was
// awaited.
func Await(t testing.TB, what string, ok func() bool) {
	t.Helper()
	Eventually(t, Wait, Cond(what, ok))
}

// AwaitWithin is Await with a deadline of its own, for what takes longer
// than Wait on a loaded machine (a process restarted, a timer of its own).
func AwaitWithin(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	Eventually(t, timeout, Cond(what, ok))
}
