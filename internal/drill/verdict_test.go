package drill

import (
	"slices"
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	a := Ident{Domain: "drill", Class: "8_720p"}
	b := Ident{Domain: "drill", Class: "32_1080p"}
	want := Census{"6600001": a, "6600002": a}
	cases := []struct {
		name    string
		m       Measure
		says    []string // each a part of one problem, in order
		counted Counts
	}{
		{
			name: "every conference once",
			m:    Measure{Running: Census{"6600001": a, "6600002": a}, Copies: map[string]int{"6600001": 1, "6600002": 1}},
		},
		{
			name:    "lost",
			m:       Measure{Running: Census{"6600001": a}, Copies: map[string]int{"6600001": 1}},
			says:    []string{"6600002 was lost"},
			counted: Counts{Lost: 1},
		},
		{
			name:    "doubled",
			m:       Measure{Running: Census{"6600001": a, "6600002": a}, Copies: map[string]int{"6600001": 2, "6600002": 1}},
			says:    []string{"6600001 runs on 2 nodes at once"},
			counted: Counts{Doubled: 1},
		},
		{
			name:    "left pending",
			m:       Measure{Running: Census{"6600001": a}, Waiting: map[string]string{"6600002": "pending-restore"}, Copies: map[string]int{"6600001": 1}},
			says:    []string{"6600002 is left pending-restore"},
			counted: Counts{Pending: 1},
		},
		{
			name: "changed class",
			m:    Measure{Running: Census{"6600001": a, "6600002": b}, Copies: map[string]int{"6600001": 1, "6600002": 1}},
			says: []string{"6600002 is now of drill class 32_1080p"},
		},
		{
			name: "on no live node",
			m:    Measure{Running: Census{"6600001": a, "6600002": a}, Copies: map[string]int{"6600001": 1}},
			says: []string{"6600002 runs on no live node"},
		},
		{
			name: "from nowhere",
			m: Measure{Running: Census{"6600001": a, "6600002": a, "6600003": a}, Waiting: map[string]string{"6600004": "creating"},
				Copies: map[string]int{"6600001": 1, "6600002": 1, "6600003": 1, "6600005": 1}},
			says: []string{
				"6600003 runs but was never booked", "6600004 is creating but was never booked",
				"6600003 is hosted by 1 live nodes", "6600005 is hosted by 1 live nodes",
			},
			counted: Counts{Pending: 1},
		},
		{
			name: "audit",
			m:    Measure{Running: Census{"6600001": a, "6600002": a}, Copies: map[string]int{"6600001": 1, "6600002": 1}, Audit: "domain drill counts 3 conferences of class 8_720p; 2 exist"},
			says: []string{"audit: domain drill counts 3"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.Step, tc.m.Want = "step", want
			got := Judge(tc.m)
			if len(got) != len(tc.says) {
				t.Fatalf("Judge said %d problems, want %d:\n%s", len(got), len(tc.says), strings.Join(got, "\n"))
			}
			for i, part := range tc.says {
				if !strings.HasPrefix(got[i], "step: ") || !strings.Contains(got[i], part) {
					t.Errorf("problem %d is %q; want it to say %q", i, got[i], part)
				}
			}
			if c := tc.m.Count(); c != tc.counted {
				t.Errorf("Count() = %+v, want %+v", c, tc.counted)
			}
		})
	}
}

func TestVerdictKeepsOtherFailures(t *testing.T) {
	a := Ident{Domain: "drill", Class: "8_720p"}
	ok := Measure{Step: "fine", Want: Census{"1": a}, Running: Census{"1": a}, Copies: map[string]int{"1": 1}}
	lost := Measure{Step: "broken", Want: Census{"1": a}}
	if got := Verdict([]Measure{ok}, nil); len(got) != 0 {
		t.Fatalf("a clean step failed: %v", got)
	}
	got := Verdict([]Measure{ok, lost}, []string{"a step did not happen"})
	if !slices.Equal(got, []string{"a step did not happen", "broken: conference 1 was lost"}) {
		t.Fatalf("Verdict = %q", got)
	}
}

func TestPlan(t *testing.T) {
	specs, err := plan(layout{apis: 2, schedulers: 2, services: 2, nodes: 5, nodeHosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	var names, nodes []string
	apis := map[string]bool{}
	for _, s := range specs {
		names = append(names, s.name)
		nodes = append(nodes, s.nodes...)
		if s.kind == "api" {
			apis[s.listen] = true
		}
	}
	wantNames := []string{"rms-1", "rms-2", "pms-1", "pms-2", "registry-1", "registry-2", "sched-a", "sched-b",
		"breakout-1", "breakout-2", "api-1", "api-2", "nodes-1", "nodes-2"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("hosts %v, want %v", names, wantNames)
	}
	if want := []string{"node-1-1", "node-1-2", "node-1-3", "node-2-1", "node-2-2"}; !slices.Equal(nodes, want) {
		t.Errorf("nodes %v, want %v", nodes, want)
	}
	if len(apis) != 2 {
		t.Errorf("the two APIs listen on %v: want two addresses", apis)
	}
	if _, err := plan(layout{nodes: 1, nodeHosts: 2}); err == nil {
		t.Error("a node host without a node was planned")
	}
}
