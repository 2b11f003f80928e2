package cdr_test

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
)

// rawDB opens the database of url under the records package, to make it
// look as an older version left it.
func rawDB(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", dbURL
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Statistics by number of calls recorded before the number roll-ups
// existed equal those computed from the calls, once the service has
// started on the upgraded database.
func TestNumberStatsAfterUpgrade(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		db := openDB(t, dbURL)
		svc, err := cdr.New(cdr.Options{TimeZone: "Asia/Shanghai", Now: func() time.Time { return now }}, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		opts := cdr.GenerateOptions{Count: 1500, Days: 10, Seed: 11, Now: now, Location: shanghai, Concurrency: 64}
		if _, err := cdr.Generate(ctx, svc, opts); err != nil {
			t.Fatal(err)
		}
		if err := svc.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		// The database as the version before the number roll-ups left it.
		raw := rawDB(t, dbURL)
		for _, q := range []string{`DROP TABLE call_number_rollups`, `DELETE FROM schema_migrations WHERE version = 5`} {
			if _, err := raw.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if err := raw.Close(); err != nil {
			t.Fatal(err)
		}
		upgraded := startService(t, openDB(t, dbURL), cdr.Options{TimeZone: "Asia/Shanghai", Now: func() time.Time { return now }})
		var all []want
		for i := range opts.Count {
			all = append(all, expected(cdr.PlanCall(opts, i)))
		}
		for _, tc := range []struct {
			query string
			keep  func(w want) bool
		}{
			{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&caller=8001*", func(w want) bool { return strings.HasPrefix(w.caller, "8001") }},
			{"start=2025-03-04T00:00:00%2B08:00&end=2025-03-05T00:00:00%2B08:00&called=80*", func(w want) bool { return strings.HasPrefix(w.called, "80") }},
			{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&called=" + mostCalled(all), func(w want) bool { return w.called == mostCalled(all) }},
		} {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := upgraded.ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			st, err := upgraded.Stats(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			exp := expectStats(all, q.Start, q.End, tc.keep)
			if exp.Totals.Count < 5 {
				t.Fatalf("%s: the case counts %d generated calls: too few to test anything", tc.query, exp.Totals.Count)
			}
			if st.Source != cdr.SourceRollups || !sameBucket(st.Totals, exp.Totals) || len(st.Buckets) != len(exp.Buckets) {
				t.Fatalf("%s: totals %+v from %s in %d buckets, want %+v from the roll-ups in %d", tc.query, st.Totals, st.Source, len(st.Buckets), exp.Totals, len(exp.Buckets))
			}
			for i := range exp.Buckets {
				if !sameBucket(st.Buckets[i], exp.Buckets[i]) {
					t.Fatalf("%s: bucket %d: %+v, want %+v", tc.query, i, st.Buckets[i], exp.Buckets[i])
				}
			}
		}
	})
}
