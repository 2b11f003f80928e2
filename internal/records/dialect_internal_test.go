package records

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url, dialect, path, shown string
		err                       error
	}{
		{url: "sqlite:///var/lib/convene/records.db", dialect: SQLite, path: "/var/lib/convene/records.db", shown: "sqlite:///var/lib/convene/records.db"},
		{url: "sqlite://records.db", dialect: SQLite, path: "records.db", shown: "sqlite://records.db"},
		{url: "sqlite://.convene/records.db", dialect: SQLite, path: filepath.Clean(".convene/records.db"), shown: "sqlite://.convene/records.db"},
		{url: "sqlite:records.db", dialect: SQLite, path: "records.db", shown: "sqlite://records.db"},
		{url: "/data/records.db", dialect: SQLite, path: "/data/records.db", shown: "sqlite:///data/records.db"},
		{url: "./records.db", dialect: SQLite, path: "records.db", shown: "sqlite://records.db"},
		{url: "postgres://convene:pw@db:5432/records?sslmode=disable", dialect: Postgres, shown: "postgres://convene:xxxxx@db:5432/records?sslmode=disable"},
		{url: "postgresql://convene@db/records?password=pw", dialect: Postgres, shown: "postgresql://convene@db/records?password=xxxxx"},
		{url: "", err: ErrBadURL},
		{url: "sqlite://", err: ErrBadURL},
		{url: "sqlite://records.db?_pragma=x", err: ErrBadURL},
		{url: "sqlite://:memory:", err: ErrBadURL},
		{url: "sqlite://file:records.db", err: ErrBadURL},
		{url: "mysql://db/records", err: ErrBadURL},
	} {
		got, err := parseURL(c.url)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("parseURL(%q) = %+v, %v; want %v", c.url, got, err, c.err)
			}
			continue
		}
		if err != nil || got.dialect != c.dialect || got.path != c.path || got.shown != c.shown {
			t.Errorf("parseURL(%q) = %+v, %v; want %s %q shown as %q", c.url, got, err, c.dialect, c.path, c.shown)
		}
		if strings.Contains(got.shown, "pw@") || strings.Contains(got.shown, "=pw") {
			t.Errorf("parseURL(%q) shows the password: %q", c.url, got.shown)
		}
	}
}
