package console_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// envInt is the whole number in $name, or def.
func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: give a whole number", name, s)
	}
	return n
}

// TestScale loads a platform with many running conferences and call
// records and prints, for each page, the browser's time to the first
// byte and to the end of the load. It measures; it asserts nothing about
// time. Run it with CONVENE_CONSOLE_SCALE=1 (and -v to see the figures);
// CONVENE_CONSOLE_SCALE_CONFS and CONVENE_CONSOLE_SCALE_CDRS change the
// load (defaults 10,000 and 1,000,000); CONVENE_CONSOLE_SCALE_RECORDS keeps
// the call records in a file between runs.
func TestScale(t *testing.T) {
	if os.Getenv("CONVENE_CONSOLE_SCALE") != "1" {
		t.Skip("a measurement: set CONVENE_CONSOLE_SCALE=1 to run it")
	}
	confs := envInt(t, "CONVENE_CONSOLE_SCALE_CONFS", 10000)
	cdrs := envInt(t, "CONVENE_CONSOLE_SCALE_CDRS", 1000000)
	began := time.Now()
	file := "" // CONVENE_CONSOLE_SCALE_CDRS=0: no call records server
	if cdrs > 0 {
		// CONVENE_CONSOLE_SCALE_RECORDS names a records file kept between
		// runs: written when it does not exist, used as it is when it does.
		file = os.Getenv("CONVENE_CONSOLE_SCALE_RECORDS")
		if file == "" {
			file = recordsFile(t)
		}
		if _, err := os.Stat(file); err == nil {
			t.Logf("call records of %s, written by an earlier run", file)
		} else {
			writeCalls(t, file, cdrs, 30)
			t.Logf("%d call records written in %v", cdrs, time.Since(began).Round(time.Millisecond))
		}
	}
	p := startPlatform(t, platformOptions{records: file, capacity: confs/3 + 1000})

	began = time.Now()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(confs) {
				_, err := p.api.CreateConference(context.Background(), apiclient.CreateConferenceRequest{
					Name: "load", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 600})
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d creates failed", n, confs)
	}
	t.Logf("%d conferences created in %v", confs, time.Since(began).Round(time.Millisecond))

	all, err := p.api.PlatformConferences(context.Background(), "p1", "")
	if err != nil || len(all) == 0 {
		t.Fatalf("conferences: %v", err)
	}
	// What the pages wait for: the API's lists.
	for _, call := range []struct {
		what string
		f    func() error
	}{
		{"GET /v1/platforms/p1/conferences", func() error { _, err := p.api.PlatformConferences(context.Background(), "p1", ""); return err }},
		{"GET /v1/domains/acme/conferences", func() error {
			_, err := p.api.DomainConferences(context.Background(), "acme", apiclient.ListOptions{})
			return err
		}},
		{"GET /v1/platforms/p1/conferences?page_size=50", func() error {
			_, err := p.api.PlatformConferencePage(context.Background(), "p1", "", apiclient.PageOptions{Size: 50})
			return err
		}},
		{"  …&after=(the middle)", func() error {
			_, err := p.api.PlatformConferencePage(context.Background(), "p1", "", apiclient.PageOptions{Size: 50, After: all[len(all)/2].E164})
			return err
		}},
		{"  …&state=running", func() error {
			_, err := p.api.PlatformConferencePage(context.Background(), "p1", "running", apiclient.PageOptions{Size: 50})
			return err
		}},
		{"GET /v1/nodes", func() error { _, err := p.api.Nodes(context.Background()); return err }},
	} {
		began := time.Now()
		if err := call.f(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-40s %v", call.what, time.Since(began).Round(time.Millisecond))
	}
	c := newChrome(t, p.base)
	c.login(opToken)
	// The overview the login lands on is the first page of the console
	// since it started: nothing of the platform read yet.
	cold := c.timing("/ after logging in")
	paths := []string{"/", "/platforms", "/nodes", "/conferences", "/conferences?after=" + all[len(all)/2].E164, "/conferences?name=load&state=running",
		"/conferences/" + all[0].E164, "/licences", "/calls", "/calls?from=" + time.Now().AddDate(0, 0, -29).Format("2006-01-02"),
		"/alarms", "/hosts"}
	if cdrs > 0 {
		// A call's own page: its record and its log lines.
		page, err := p.api.CDRs(context.Background(), apiclient.CDRQuery{Start: time.Now().AddDate(0, 0, -30), End: time.Now().Add(time.Hour), PageSize: 1})
		if err != nil || len(page.CDRs) == 0 {
			t.Fatalf("a call record: %v (%d)", err, len(page.CDRs))
		}
		paths = append(paths, "/calls/"+page.CDRs[0].ID)
	}
	report := fmt.Sprintf("console pages with %d running conferences and %d call records:\n", len(all), cdrs)
	report += "  (first: the first visit of the page; again: a second visit)\n"
	report += fmt.Sprintf("  %-48s first: %s\n", "/ (the first page after the console started)", cold)
	for _, path := range paths {
		first := c.measure(path)
		again := c.measure(path)
		report += fmt.Sprintf("  %-48s first: %s\n  %-48s again: %s\n", path, first, "", again)
	}
	t.Log(report)
	fmt.Print(report)
}
