package store

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://:s3cret@10.0.0.5:6379/0", "redis://:xxxxx@10.0.0.5:6379/0"},
		{"redis://app:s3cret@10.0.0.5:6379", "redis://app:xxxxx@10.0.0.5:6379"},
		{"redis://10.0.0.5:6379", "redis://10.0.0.5:6379"},
		{"10.0.0.5:6379", "10.0.0.5:6379"},
		{"redis://:s3cret@[::1", "(an address that does not parse)"},
	} {
		got := RedactURL(tc.in)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
