package cli

import (
	"strings"
	"testing"
)

func TestDrillVerdict(t *testing.T) {
	acme := confIdent{Domain: "drill", Class: "8_720p"}
	big := confIdent{Domain: "drill", Class: "192_1080p"}
	booked := census{"6600001": acme, "6600002": acme, "6600003": big}
	ok := func() measure {
		return measure{
			Step: "node killed", Want: booked.clone(), Running: booked.clone(),
			Waiting: map[string]string{}, Copies: map[string]int{"6600001": 1, "6600002": 1, "6600003": 1},
		}
	}
	tests := []struct {
		name  string
		steps func() []measure
		other []string
		want  string // a failure that must be listed; "" for a pass
	}{
		{name: "every conference runs once", steps: func() []measure { return []measure{ok(), ok()} }},
		{name: "a conference lost", want: "6600002 was lost", steps: func() []measure {
			m := ok()
			delete(m.Running, "6600002")
			delete(m.Copies, "6600002")
			return []measure{ok(), m}
		}},
		{name: "lost and replaced by another: the count is right", want: "6600003 was lost", steps: func() []measure {
			m := ok()
			delete(m.Running, "6600003")
			m.Running["6600009"] = big
			m.Copies["6600009"] = 1
			return []measure{m}
		}},
		{name: "same number, another tenant", want: "6600001 is now of other", steps: func() []measure {
			m := ok()
			m.Running["6600001"] = confIdent{Domain: "other", Class: "8_720p"}
			return []measure{m}
		}},
		{name: "same number, another class", want: "class 8_1080p", steps: func() []measure {
			m := ok()
			m.Running["6600002"] = confIdent{Domain: "drill", Class: "8_1080p"}
			return []measure{m}
		}},
		{name: "running twice", want: "6600001 runs on 2 nodes", steps: func() []measure {
			m := ok()
			m.Copies["6600001"] = 2
			return []measure{m}
		}},
		{name: "stored running, hosted nowhere", want: "6600003 runs on no live node", steps: func() []measure {
			m := ok()
			delete(m.Copies, "6600003")
			return []measure{m}
		}},
		{name: "left pending", want: "6600002 is left pending-restore", steps: func() []measure {
			m := ok()
			delete(m.Running, "6600002")
			m.Waiting["6600002"] = "pending-restore"
			return []measure{m}
		}},
		{name: "one that was never booked", want: "6600042 runs but was never booked", steps: func() []measure {
			m := ok()
			m.Running["6600042"] = acme
			return []measure{m}
		}},
		{name: "the audit complains", want: "audit: licence", steps: func() []measure {
			m := ok()
			m.Audit = "licence counts 4, 3 run"
			return []measure{m}
		}},
		{name: "a step that did not happen", other: []string{"timed out waiting for the standby"}, want: "timed out", steps: func() []measure {
			return []measure{ok()}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failures, code := verdict(tt.steps(), tt.other)
			if tt.want == "" {
				if code != 0 || len(failures) != 0 {
					t.Fatalf("exit %d, failures %v; want a pass", code, failures)
				}
				return
			}
			if code == 0 {
				t.Fatalf("exit 0; want non-zero for %q", tt.want)
			}
			for _, f := range failures {
				if strings.Contains(f, tt.want) {
					return
				}
			}
			t.Fatalf("failures %v do not say %q", failures, tt.want)
		})
	}
}
