// Package license knows the licence classes of a conference (000 §4): a
// scale tier of 8, 32, 64 or 192 parties times a resolution class, 720p
// (below 720P) or 1080p (720P and up), and the store field names that count
// them. Pure logic; it imports nothing of Convene's.
package license

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Scales are the scale tiers, smallest first.
var Scales = []int{8, 32, 64, 192}

// Resolutions are the resolution classes.
var Resolutions = []string{"720p", "1080p"}

// ErrBadClass means a scale, resolution or class name is not one of the
// licensed ones.
var ErrBadClass = errors.New("license: unknown class")

// Class is one licence class, such as 8_720p.
type Class struct {
	Scale      int
	Resolution string
}

// String is the class name used in store fields and in the API: "8_720p".
func (c Class) String() string { return strconv.Itoa(c.Scale) + "_" + c.Resolution }

// LimitField is the store field holding the class's limit.
func (c Class) LimitField() string { return c.String() + "_confnumlimit" }

// CountField is the store field holding how many conferences of the class
// run.
func (c Class) CountField() string { return c.String() + "_confnum" }

// ValidScale reports whether n is a scale tier.
func ValidScale(n int) bool {
	for _, s := range Scales {
		if s == n {
			return true
		}
	}
	return false
}

// ValidResolution reports whether r is a resolution class.
func ValidResolution(r string) bool { return r == "720p" || r == "1080p" }

// ClassOf returns the class of a conference of scale parties at resolution.
func ClassOf(scale int, resolution string) (Class, error) {
	if !ValidScale(scale) {
		return Class{}, fmt.Errorf("%w: scale %d is not one of 8, 32, 64, 192", ErrBadClass, scale)
	}
	if !ValidResolution(resolution) {
		return Class{}, fmt.Errorf("%w: resolution %q is not 720p or 1080p", ErrBadClass, resolution)
	}
	return Class{Scale: scale, Resolution: resolution}, nil
}

// ParseClass parses "8_720p".
func ParseClass(s string) (Class, error) {
	scale, res, ok := strings.Cut(s, "_")
	if !ok {
		return Class{}, fmt.Errorf("%w: %q is not <scale>_<resolution>", ErrBadClass, s)
	}
	n, err := strconv.Atoi(scale)
	if err != nil {
		return Class{}, fmt.Errorf("%w: %q is not <scale>_<resolution>", ErrBadClass, s)
	}
	return ClassOf(n, res)
}

// All lists every class, smallest scale first, 720p before 1080p.
func All() []Class {
	out := make([]Class, 0, len(Scales)*len(Resolutions))
	for _, s := range Scales {
		for _, r := range Resolutions {
			out = append(out, Class{Scale: s, Resolution: r})
		}
	}
	return out
}

// Limits maps class names to the number of conferences allowed at once.
type Limits map[string]int

// Validate checks every class name and that no limit is negative.
func (l Limits) Validate() error {
	for name, n := range l {
		if _, err := ParseClass(name); err != nil {
			return err
		}
		if n < 0 {
			return fmt.Errorf("license: limit of %s is negative (%d)", name, n)
		}
	}
	return nil
}

// Canonical is a stable text form of the limits, used to notice when the
// configured licence changed.
func (l Limits) Canonical() string {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%d", n, l[n])
	}
	return b.String()
}

// Usage is a domain's licence: limit and count per class.
type Usage struct {
	Limits Limits `json:"limits"`
	InUse  Limits `json:"in_use"`
}

// Remaining is limit minus count per class, never below zero.
func (u Usage) Remaining() Limits {
	out := make(Limits, len(u.Limits))
	for _, c := range All() {
		n := u.Limits[c.String()] - u.InUse[c.String()]
		if n < 0 {
			n = 0
		}
		out[c.String()] = n
	}
	return out
}
