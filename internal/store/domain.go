package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/convene/convene/internal/license"
)

// DomainInfo is domain/<moid>/info (000 §3.2).
type DomainInfo struct {
	Moid            string
	Level           int // 0 user domain, 1 platform, 2 service domain
	UpLevel         string
	Name            string
	Used            bool
	EnableH265      bool
	EnableHDMeeting bool
}

// PublishDomain writes a domain's info and, when the configured licence
// changed since it was last written, its limits. Limits an operator set at
// run time are kept across restarts with the same configuration. It reports
// whether the limits were written.
func (s *Store) PublishDomain(ctx context.Context, d DomainInfo, limits license.Limits) (bool, error) {
	info := []any{
		"moid", d.Moid, "level", strconv.Itoa(d.Level), "uplevelmoid", d.UpLevel, "name", d.Name,
		"used", boolStr(d.Used), "enableh265", boolStr(d.EnableH265), "enablehdmeeting", boolStr(d.EnableHDMeeting),
	}
	args := make([]any, 0, 4+len(info)+2*len(license.All()))
	args = append(args, d.Moid, limits.Canonical(), strconv.Itoa(len(info)/2))
	args = append(args, info...)
	classes := license.All()
	args = append(args, strconv.Itoa(len(classes)))
	for _, c := range classes {
		args = append(args, c.String(), strconv.Itoa(limits[c.String()]))
	}
	res, err := s.run(ctx, domainScript, "", args...)
	if err != nil {
		return false, err
	}
	return res.str(1) == "1", nil
}

// Domain reads domain/<moid>/info. Errors: ErrDomainNotFound.
func (s *Store) Domain(ctx context.Context, moid string) (DomainInfo, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, domainInfoKey(moid)).Result()
	if err != nil {
		return DomainInfo{}, fmt.Errorf("store: %w", err)
	}
	if len(m) == 0 {
		return DomainInfo{}, fmt.Errorf("%w: %s", ErrDomainNotFound, moid)
	}
	lvl, _ := strconv.Atoi(m["level"])
	return DomainInfo{
		Moid: m["moid"], Level: lvl, UpLevel: m["uplevelmoid"], Name: m["name"], Used: m["used"] == "1",
		EnableH265: m["enableh265"] == "1", EnableHDMeeting: m["enablehdmeeting"] == "1",
	}, nil
}

// License reads a domain's limits and counts (001 §2.1 item 1: the
// remaining licence is Usage.Remaining). Errors: ErrDomainNotFound.
func (s *Store) License(ctx context.Context, moid string) (license.Usage, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	ex := pipe.Exists(ctx, domainInfoKey(moid))
	all := pipe.HGetAll(ctx, domainLicenseKey(moid))
	if _, err := pipe.Exec(ctx); err != nil {
		return license.Usage{}, fmt.Errorf("store: %w", err)
	}
	if ex.Val() == 0 {
		return license.Usage{}, fmt.Errorf("%w: %s", ErrDomainNotFound, moid)
	}
	m := all.Val()
	u := license.Usage{Limits: license.Limits{}, InUse: license.Limits{}}
	for _, c := range license.All() {
		u.Limits[c.String()], _ = strconv.Atoi(m[c.LimitField()])
		u.InUse[c.String()], _ = strconv.Atoi(m[c.CountField()])
	}
	return u, nil
}

// SetLicenseLimits sets some of a domain's limits at run time; classes not
// named keep theirs. Counts are untouched: a limit below the count refuses
// new conferences of that class and ends none. Errors: ErrDomainNotFound.
func (s *Store) SetLicenseLimits(ctx context.Context, moid string, limits license.Limits) error {
	if err := limits.Validate(); err != nil {
		return err
	}
	if len(limits) == 0 {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := s.rdb.Exists(ctx, domainInfoKey(moid)).Result()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrDomainNotFound, moid)
	}
	kv := make([]any, 0, 2*len(limits))
	for name, v := range limits {
		c, _ := license.ParseClass(name)
		kv = append(kv, c.LimitField(), strconv.Itoa(v))
	}
	if err := s.rdb.HSet(ctx, domainLicenseKey(moid), kv...).Err(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
