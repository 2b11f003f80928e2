package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/convene/convene/internal/protocol"
)

// PutTemplate creates a template, or replaces the fields of the one with
// its number (keeping its creation time), and returns the number. A new
// template's number is allocated from n when it has none, and a given one
// must be of n's segment and held by no conference. Errors:
// ErrDomainNotFound, ErrE164Exhausted, ErrE164InUse, ErrE164OutOfSegment.
func (s *Store) PutTemplate(ctx context.Context, t protocol.Template, n Numbering) (string, error) {
	out, err := s.template(ctx, "put", t, n)
	return out.E164, err
}

// CreateTemplate makes a new template and returns it as stored. Without a
// number it gets the next free one of n's segment; a given number must be
// of that segment (unless n has none) and held by no conference and no
// template. Errors: ErrDomainNotFound, ErrE164Exhausted, ErrE164InUse, a
// *SegmentError (ErrE164OutOfSegment).
func (s *Store) CreateTemplate(ctx context.Context, t protocol.Template, n Numbering) (protocol.Template, error) {
	return s.template(ctx, "create", t, n)
}

// UpdateTemplate replaces the fields of the existing template t.E164,
// keeping its number and creation time, and returns it as stored. Errors:
// ErrDomainNotFound, ErrTemplateNotFound.
func (s *Store) UpdateTemplate(ctx context.Context, t protocol.Template) (protocol.Template, error) {
	return s.template(ctx, "update", t, Numbering{})
}

func (s *Store) template(ctx context.Context, op string, t protocol.Template, n Numbering) (protocol.Template, error) {
	invited, _ := json.Marshal(t.Invited)
	if t.Invited == nil {
		invited = []byte("[]")
	}
	res, err := s.run(ctx, templateScript, t.E164, op, t.E164, t.Domain,
		e164SeqKey(n.Platform), n.Segment, strconv.Itoa(n.Digits),
		"name", t.Name, "platformmoid", t.Platform, "scale", strconv.Itoa(t.Scale), "resolution", t.Resolution,
		"duration", strconv.Itoa(t.DurationMinutes), "public", boolStr(t.Public), "invited", string(invited),
		"password", t.Password, "createtime", strconv.FormatInt(t.CreateTime, 10),
		"modifytime", strconv.FormatInt(t.ModifyTime, 10))
	if err != nil {
		return t, err
	}
	t.E164 = res.str(1)
	t.CreateTime, _ = strconv.ParseInt(res.str(2), 10, 64)
	return t, nil
}

// DeleteTemplate removes a template. Errors: ErrTemplateNotFound.
func (s *Store) DeleteTemplate(ctx context.Context, e164 string) error {
	_, err := s.run(ctx, templateScript, e164, "del", e164, "")
	return err
}

// Template reads a template by number (001 §2.1 item 6). Errors:
// ErrTemplateNotFound.
func (s *Store) Template(ctx context.Context, e164 string) (protocol.Template, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, templateKey(e164)).Result()
	if err != nil {
		return protocol.Template{}, fmt.Errorf("store: %w", err)
	}
	if len(m) == 0 {
		return protocol.Template{}, fmt.Errorf("%w: %s", ErrTemplateNotFound, e164)
	}
	return parseTemplate(m), nil
}

// DomainTemplates lists a domain's templates, by number (001 §2.1 item 7).
func (s *Store) DomainTemplates(ctx context.Context, moid string, publicOnly bool) ([]protocol.Template, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	e164s, err := s.rdb.SMembers(ctx, domainTplKey(moid)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	sort.Strings(e164s)
	pipe := s.rdb.Pipeline()
	cmds := make([]interface {
		Result() (map[string]string, error)
	}, len(e164s))
	for i, e := range e164s {
		cmds[i] = pipe.HGetAll(ctx, templateKey(e))
	}
	if len(e164s) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	out := make([]protocol.Template, 0, len(e164s))
	for _, c := range cmds {
		m, _ := c.Result()
		if len(m) == 0 {
			continue
		}
		t := parseTemplate(m)
		if publicOnly && !t.Public {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func parseTemplate(m map[string]string) protocol.Template {
	t := protocol.Template{
		E164: m["e164"], Name: m["name"], Domain: m["moid"], Platform: m["platformmoid"],
		Resolution: m["resolution"], Public: m["public"] == "1", Password: m["password"],
	}
	t.Scale, _ = strconv.Atoi(m["scale"])
	t.DurationMinutes, _ = strconv.Atoi(m["duration"])
	t.CreateTime, _ = strconv.ParseInt(m["createtime"], 10, 64)
	t.ModifyTime, _ = strconv.ParseInt(m["modifytime"], 10, 64)
	if v := m["invited"]; v != "" && v != "[]" {
		_ = json.Unmarshal([]byte(v), &t.Invited)
	}
	return t
}
