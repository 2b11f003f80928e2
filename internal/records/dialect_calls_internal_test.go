package records

import "testing"

func TestPositional(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"INSERT INTO t VALUES ($1, $2), ($3, $4)", "INSERT INTO t VALUES (?, ?), (?, ?)"},
		{"SELECT 1 WHERE a = $1 AND b = $10", "SELECT 1 WHERE a = $1 AND b = $10"}, // out of order: kept
		{"SELECT $1, $1", "SELECT $1, $1"},                                         // repeated: kept
		{"SELECT '$'", "SELECT '$'"},
		{"SELECT 1", "SELECT 1"},
	} {
		if got := positional(tc.in); got != tc.want {
			t.Errorf("positional(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
