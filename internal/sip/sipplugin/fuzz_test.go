package sipplugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/records"
)

// FuzzCDRQueryRoutes sends any query string to the call records routes
// and to the call records interface: each answers 200 with its body, or
// 400 BAD_REQUEST naming a parameter; never another status, never a
// panic.
func FuzzCDRQueryRoutes(f *testing.F) {
	for _, s := range []string{
		"", "type=video&connected=true&caller=8001*", "start=2025-03-01T00:00:00%2B08:00&end=2025-03-02T00:00:00%2B08:00",
		"start=2025-03-01T00:00:00+08:00", "page_size=1000&page=MS4xNzQwNzg3MjAwMDAwLjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nw",
		"called=*", "caller=80%00", "end=1969-12-31T23:59:59Z", "page_size=-1", "type=voice&type=video", "a=b", "%zz=1",
		"start=0001-01-01T00:00:00Z&end=9999-12-31T23:59:59Z", "connected=TRUE", "caller=" + strings.Repeat("8", 200),
	} {
		f.Add(s)
	}
	ctx := context.Background()
	db, err := records.Open(ctx, "sqlite://"+filepath.Join(f.TempDir(), "records.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	svc, err := cdr.New(cdr.Options{TimeZone: "Asia/Shanghai"}, db, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	if _, err := cdr.Generate(ctx, svc, cdr.GenerateOptions{Count: 200, Days: 3, Seed: 3, Location: svc.Location()}); err != nil {
		f.Fatal(err)
	}
	rs := &Records{db: db, svc: svc, now: time.Now}
	const token = "fuzz-token-0123456789"
	tp := &ThirdParty{svc: svc, token: sha256.Sum256([]byte(token))}
	routes := map[string]http.Handler{
		"/v1/cdrs":        httpkit.HandlerFunc(rs.listCDRs),
		"/v1/cdrs/stats":  httpkit.HandlerFunc(rs.cdrStats),
		"/v1/cdrs/export": httpkit.HandlerFunc(rs.exportCDRs),
		"/v1/calls/live":  httpkit.HandlerFunc(rs.liveCalls),
		ThirdPartyPath:    tp,
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for path, h := range routes {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.URL.RawQuery = raw
			req.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			body := w.Body.Bytes()
			switch w.Code {
			case http.StatusOK:
				if path == "/v1/cdrs/export" {
					if !bytes.HasPrefix(body, []byte(strings.Join(cdr.CSVHeader, ",")+"\n")) {
						t.Fatalf("%s?%s: an export without its header: %.200s", path, raw, body)
					}
				} else if !json.Valid(body) {
					t.Fatalf("%s?%s: 200 with %.200s", path, raw, body)
				}
			case http.StatusBadRequest:
				var env codes.Envelope
				if err := json.Unmarshal(body, &env); err != nil || env.Error.Code != codes.BadRequest ||
					!strings.HasPrefix(env.Error.Message, "parameter \"") {
					t.Fatalf("%s?%s: 400 not naming a parameter: %s", path, raw, body)
				}
			default:
				t.Fatalf("%s?%s: %d %s", path, raw, w.Code, body)
			}
		}
	})
}
