package testkit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	cases := []struct {
		name    string
		failing int // checks that fail before one holds; -1: never holds
		want    string
	}{
		{"holds at once", 0, ""},
		{"holds after a few checks", 3, ""},
		{"never holds: the last failure is said", -1, "node n1 still down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checks := 0
			err := poll(50*time.Millisecond, func() error {
				checks++
				if tc.failing < 0 || checks <= tc.failing {
					return errors.New("node n1 still down")
				}
				return nil
			})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("poll: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("poll: %v; want the last failure %q", err, tc.want)
			case tc.failing >= 0 && checks != tc.failing+1:
				t.Fatalf("%d checks; want %d", checks, tc.failing+1)
			}
		})
	}
}

func TestPauseGrowsWithTheCheck(t *testing.T) {
	if p := pause(time.Microsecond); p != pollEvery {
		t.Fatalf("pause after a quick check: %s; want %s", p, pollEvery)
	}
	if p := pause(100 * time.Millisecond); p != 200*time.Millisecond {
		t.Fatalf("pause after a 100 ms check: %s; want 200ms", p)
	}
	if p := pause(time.Second); p != maxPause {
		t.Fatalf("pause after a 1 s check: %s; want %s", p, maxPause)
	}
}

func TestCond(t *testing.T) {
	ok := false
	c := Cond("the lease taken", func() bool { return ok })
	if err := c(); err == nil || !strings.Contains(err.Error(), "the lease taken") {
		t.Fatalf("false: %v; want what was awaited", err)
	}
	ok = true
	if err := c(); err != nil {
		t.Fatalf("true: %v", err)
	}
}
