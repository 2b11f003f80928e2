package sipplugin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/records"
)

// failingAfterFirstWrite closes the records database once the first
// bytes of the answer are written: the export's next page fails.
type failingAfterFirstWrite struct {
	http.ResponseWriter
	once  sync.Once
	close func()
}

func (f *failingAfterFirstWrite) Write(p []byte) (int, error) {
	n, err := f.ResponseWriter.Write(p)
	f.once.Do(f.close)
	return n, err
}

func (f *failingAfterFirstWrite) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// An export that fails once part of it is sent is cut, never ended as
// if whole; one that fails before is an error answer.
func TestExportFailureIsNeverAShortFile(t *testing.T) {
	ctx := context.Background()
	db, err := records.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cdr.New(cdr.Options{}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := cdr.Generate(ctx, svc, cdr.GenerateOptions{Count: 2500, Days: 1, Seed: 1, Now: now}); err != nil {
		t.Fatal(err)
	}
	_ = svc.Shutdown(ctx)
	rs := &Records{db: db, svc: svc, now: time.Now}
	export := httpkit.HandlerFunc(rs.exportCDRs)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		export.ServeHTTP(&failingAfterFirstWrite{ResponseWriter: w, close: func() { _ = db.Close() }}, r)
	}))
	t.Cleanup(srv.Close)
	q := "?start=" + now.Add(-48*time.Hour).UTC().Format(time.RFC3339) + "&end=" + now.Add(time.Hour).UTC().Format(time.RFC3339)
	resp, err := http.Get(srv.URL + "/v1/cdrs/export" + q)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("a failed export ended as whole: %d, %d lines, %v", resp.StatusCode, strings.Count(string(body), "\n"), err)
	}
	// The database is closed now: the next export fails before it sends
	// anything, with the error envelope.
	resp, err = http.Get(srv.URL + "/v1/cdrs/export" + q)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		resp.Header.Get("Content-Disposition") != "" || !strings.Contains(string(body), `"INTERNAL"`) {
		t.Fatalf("an export failing at once: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}
