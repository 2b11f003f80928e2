package license

import (
	"errors"
	"testing"
)

func TestClassOf(t *testing.T) {
	tests := []struct {
		name       string
		scale      int
		resolution string
		want       string
		wantErr    bool
	}{
		{"small hd", 8, "720p", "8_720p", false},
		{"large full hd", 192, "1080p", "192_1080p", false},
		{"scale not a tier", 16, "720p", "", true},
		{"resolution unknown", 32, "4k", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ClassOf(tt.scale, tt.resolution)
			if tt.wantErr {
				if !errors.Is(err, ErrBadClass) {
					t.Fatalf("err = %v, want ErrBadClass", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tt.want || c.LimitField() != tt.want+"_confnumlimit" || c.CountField() != tt.want+"_confnum" {
				t.Fatalf("got %s / %s / %s", c, c.LimitField(), c.CountField())
			}
		})
	}
}

func TestParseClassRoundTrip(t *testing.T) {
	for _, c := range All() {
		got, err := ParseClass(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseClass(%q) = %v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"", "8", "x_720p", "8_480p", "7_720p"} {
		if _, err := ParseClass(bad); err == nil {
			t.Errorf("ParseClass(%q) accepted", bad)
		}
	}
}

func TestLimits(t *testing.T) {
	l := Limits{"8_720p": 5, "32_1080p": 2}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := l.Canonical(); got != "32_1080p=2,8_720p=5" {
		t.Fatalf("Canonical = %q", got)
	}
	if err := (Limits{"8_720p": -1}).Validate(); err == nil {
		t.Fatal("negative limit accepted")
	}
	u := Usage{Limits: l, InUse: Limits{"8_720p": 7}}
	r := u.Remaining()
	if r["8_720p"] != 0 || r["32_1080p"] != 2 || r["192_1080p"] != 0 {
		t.Fatalf("Remaining = %v", r)
	}
}
