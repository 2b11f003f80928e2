package logkeep

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// The attributes that make a line one to keep, at the top level of the
// record (or of the logger's With), not in a group.
const (
	AttrCallID = "call_id"
	AttrE164   = "e164"
)

// Bounds of what one kept line carries.
const (
	maxMessage = 4096
	maxValue   = 1024
	maxAttrs   = 64
)

// Handler returns a handler that passes every record to next and keeps
// those at or above the keeper's level that carry a call id or a
// conference number. It never waits for the keeper's sink.
func (k *Keeper) Handler(next slog.Handler) slog.Handler {
	return &handler{next: next, k: k}
}

// bound is an attribute the logger carries (With), under the groups open
// when it was added.
type bound struct {
	prefix string
	attr   slog.Attr
}

type handler struct {
	next   slog.Handler
	k      *Keeper
	bound  []bound
	prefix string // the open groups, each followed by "."
	callID string // from the logger's attributes
	e164   string
}

// Enabled is the wrapped handler's answer, or true for a level the keeper
// keeps while it has a sink.
func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l) || (l >= h.k.opts.Level && h.k.active.Load())
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.next.Enabled(ctx, r.Level) {
		err = h.next.Handle(ctx, r)
	}
	if r.Level < h.k.opts.Level || !h.k.active.Load() {
		return err
	}
	callID, e164 := h.callID, h.e164
	if h.prefix == "" {
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case AttrCallID:
				callID = a.Value.Resolve().String()
			case AttrE164:
				e164 = a.Value.Resolve().String()
			}
			return true
		})
	}
	if callID == "" && e164 == "" {
		return err
	}
	h.k.Keep(h.line(r, callID, e164))
	return err
}

// line makes the kept line of r.
func (h *handler) line(r slog.Record, callID, e164 string) Line {
	attrs := map[string]string{}
	for _, b := range h.bound {
		flatten(attrs, b.prefix, b.attr)
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(attrs, h.prefix, a)
		return true
	})
	delete(attrs, AttrCallID)
	delete(attrs, AttrE164)
	if len(attrs) == 0 {
		attrs = nil
	}
	at, msg := r.Time, r.Message
	if at.IsZero() {
		at = time.Now()
	}
	if msg == "" {
		msg = "(no message)"
	}
	return Line{
		At: at, Level: levelName(r.Level), Node: clean(h.k.opts.Node, maxValue),
		CallID: clean(callID, maxValue), E164: clean(e164, maxValue),
		Message: clean(msg, maxMessage), Attrs: attrs,
	}
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.bound = make([]bound, len(h.bound), len(h.bound)+len(attrs))
	copy(c.bound, h.bound)
	for _, a := range attrs {
		c.bound = append(c.bound, bound{prefix: h.prefix, attr: a})
		if h.prefix != "" {
			continue
		}
		switch a.Key {
		case AttrCallID:
			c.callID = a.Value.Resolve().String()
		case AttrE164:
			c.e164 = a.Value.Resolve().String()
		}
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// flatten adds a's value (a group's values, named "group.key") to dst.
func flatten(dst map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(dst, p, g)
		}
		return
	}
	if a.Key == "" || len(dst) >= maxAttrs {
		return
	}
	dst[clean(prefix+a.Key, maxValue)] = clean(v.String(), maxValue)
}

// levelName is the records' name of a level: DEBUG, INFO, WARN or ERROR
// (a level between two is named by the lower).
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	}
	return "ERROR"
}

// clean makes s text the records take: valid UTF-8 without NUL, at most
// max bytes (cut on a character boundary).
func clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
