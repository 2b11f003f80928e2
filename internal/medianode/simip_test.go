package medianode

import (
	"net/netip"
	"testing"
)

// TestSimIPDistinctAndValid: every simulated node of a large platform
// reports a valid loopback address of its own.
func TestSimIPDistinctAndValid(t *testing.T) {
	seen := map[string]int{}
	for n := 1; n <= 70000; n++ {
		ip := SimIP(n)
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.IsLoopback() {
			t.Fatalf("node %d reports %q: not a loopback address (%v)", n, ip, err)
		}
		if m, dup := seen[ip]; dup {
			t.Fatalf("nodes %d and %d both report %s", m, n, ip)
		}
		seen[ip] = n
	}
	if got := SimIP(3); got != "127.0.1.3" {
		t.Fatalf("node 3 reports %s, want 127.0.1.3 as before", got)
	}
}
