package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var (
	shanghai = time.FixedZone("CST", 8*3600)
	clock    = time.Date(2019, 6, 1, 12, 0, 0, 0, shanghai)
)

func handler(t testing.TB) *Handler {
	h, err := NewHandler(Options{AppID: "convene-demo", Account: "sipserver", Location: shanghai, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func post(t testing.TB, h http.Handler, method, body string) (int, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, Path, strings.NewReader(body)))
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%d answer is not JSON: %q", w.Code, w.Body.String())
	}
	return w.Code, out
}

func request(stream, token, ts string) string {
	return fmt.Sprintf(`{"method":"getAgoraAccount","streamNumber":%s,"token":%q,"timestamp":%q}`, stream, token, ts)
}

func TestToken(t *testing.T) {
	// md5("convene-demo20190601120000") in upper-case hex.
	if got := Token("convene-demo", "20190601120000"); got != strings.ToUpper(got) || len(got) != 32 {
		t.Fatalf("token %q", got)
	}
	if Token("a", "1") == Token("a", "2") {
		t.Fatal("the token does not depend on the timestamp")
	}
}

func TestAccount(t *testing.T) {
	h := handler(t)
	now := clock.Format(TimestampLayout)
	cases := []struct {
		name    string
		body    string
		status  int
		resCode string
		stream  string
	}{
		{"a good token", request(`"89567"`, Token("convene-demo", now), now), 200, ResOK, "89567"},
		{"lower-case and padded token", request(`"1"`, " "+strings.ToLower(Token("convene-demo", now)), now), 200, ResOK, "1"},
		{"a number as stream number", request(`89567`, Token("convene-demo", now), now), 200, ResOK, "89567"},
		{"an hour early", request(`"2"`, Token("convene-demo", "20190601110000"), "20190601110000"), 200, ResOK, "2"},
		{"an hour late", request(`"2"`, Token("convene-demo", "20190601130000"), "20190601130000"), 200, ResOK, "2"},
		{"a wrong token", request(`"3"`, Token("another-app", now), now), 200, ResBadToken, "3"},
		{"a token of another time", request(`"3"`, Token("convene-demo", "20190601120001"), now), 200, ResBadToken, "3"},
		{"over an hour old", request(`"4"`, Token("convene-demo", "20190601105959"), "20190601105959"), 200, ResBadToken, "4"},
		{"over an hour ahead", request(`"4"`, Token("convene-demo", "20190601130001"), "20190601130001"), 200, ResBadToken, "4"},
		{"not JSON", `method=getAgoraAccount`, 400, "", ""},
		{"another method", strings.Replace(request(`"5"`, "x", now), Method, "getAccount", 1), 400, "", ""},
		{"no stream number", `{"method":"getAgoraAccount","token":"x","timestamp":"20190601120000"}`, 400, "", ""},
		{"a stream number object", request(`{}`, "x", now), 400, "", ""},
		{"no token", request(`"6"`, "", now), 400, "", ""},
		{"a timestamp of another layout", request(`"7"`, "x", "2019-06-01 12:00"), 400, "", ""},
		{"an impossible date", request(`"7"`, "x", "20191301120000"), 400, "", ""},
		{"two objects", request(`"8"`, "x", now) + `{}`, 400, "", ""},
		{"the seed's capitalised names", `{"Method":"getAgoraAccount","StreamNumber":"9","Token":"` + Token("convene-demo", now) + `","Timestamp":"` + now + `"}`, 200, ResOK, "9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := post(t, h, http.MethodPost, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d: %v", status, c.status, out)
			}
			if status != 200 {
				e, _ := out["error"].(map[string]any)
				if e["code"] != "BAD_REQUEST" || e["message"] == "" {
					t.Fatalf("error envelope %v", out)
				}
				return
			}
			if out["method"] != Method || out["resCode"] != c.resCode || out["streamNumber"] != c.stream {
				t.Fatalf("answer %v", out)
			}
			if acc, has := out["account"]; (c.resCode == ResOK) != has || (has && acc != "sipserver") {
				t.Fatalf("account in %v", out)
			}
		})
	}
}

func TestAccountRefusesOtherMethodsAndBigBodies(t *testing.T) {
	h := handler(t)
	if status, out := post(t, h, http.MethodGet, ""); status != http.StatusMethodNotAllowed || out["error"] == nil {
		t.Fatalf("GET: %d %v", status, out)
	}
	big := `{"method":"getAgoraAccount","streamNumber":"` + strings.Repeat("9", maxBody) + `"}`
	if status, _ := post(t, h, http.MethodPost, big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a big body: %d", status)
	}
}

func TestServiceListensOnItsOwn(t *testing.T) {
	s, err := New(ServiceOptions{Listen: "127.0.0.1:0", Options: Options{AppID: "convene-demo", Account: "sip-a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	ts := time.Now().Format(TimestampLayout)
	resp, err := http.Post("http://"+s.Addr()+Path, "application/json", strings.NewReader(request(`"1"`, Token("convene-demo", ts), ts)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out Response
	if err := json.Unmarshal(b, &out); err != nil || out.ResCode != ResOK || out.Account != "sip-a" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if _, err := New(ServiceOptions{Options: Options{Account: "x"}}, nil); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("no appid: %v", err)
	}
}

func FuzzAccount(f *testing.F) {
	now := clock.Format(TimestampLayout)
	f.Add(request(`"89567"`, Token("convene-demo", now), now))
	f.Add(request(`1e3`, "x", now))
	f.Add(`{"method":"getAgoraAccount","streamNumber":"1","token":"` + Token("convene-demo", now) + `","timestamp":"20190601120000","extra":[1,2,{}]}`)
	f.Add(`[]`)
	f.Add(`{"timestamp":"99999999999999"}`)
	h := handler(f)
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body)))
		switch w.Code {
		case http.StatusOK:
			var out Response
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("200 with %q", w.Body.String())
			}
			if out.Method != Method || (out.ResCode != ResOK && out.ResCode != ResBadToken) || (out.ResCode == ResOK) != (out.Account == "sipserver") {
				t.Fatalf("answer %+v", out)
			}
			if out.ResCode == ResOK {
				var req Request
				_ = json.Unmarshal([]byte(body), &req)
				if !strings.EqualFold(strings.TrimSpace(req.Token), Token("convene-demo", req.Timestamp)) {
					t.Fatalf("accepted token %q for %q", req.Token, req.Timestamp)
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var out struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Error.Code != "BAD_REQUEST" || out.Error.Message == "" {
				t.Fatalf("%d with %q", w.Code, w.Body.String())
			}
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}
