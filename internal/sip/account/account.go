package account

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Path is where the account API is served.
const Path = "/AgoraAccount"

// Method is the only method of the account API.
const Method = "getAgoraAccount"

// Result codes of a response (resCode).
const (
	ResOK       = "0"
	ResBadToken = "1"
)

// TimestampLayout is the request's timestamp: YYYYMMDDhhmmss.
const TimestampLayout = "20060102150405"

const (
	// DefaultSkew is how far a timestamp may be from the node's clock.
	DefaultSkew = time.Hour
	// maxBody bounds a request body.
	maxBody = 16 << 10
)

// Options configure the handler.
type Options struct {
	// AppID is the secret the terminals' tokens are made with. Required.
	AppID string
	// Account is what the node answers: its own account. Required.
	Account string
	// Skew is how far a timestamp may be from the clock; default 3600 s.
	Skew time.Duration
	// Location reads timestamps; default the node's local time zone.
	Location *time.Location
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Request is the body of POST /AgoraAccount.
type Request struct {
	Method       string          `json:"method"`
	StreamNumber json.RawMessage `json:"streamNumber"`
	Token        string          `json:"token"`
	Timestamp    string          `json:"timestamp"`
}

// Response is its answer.
type Response struct {
	Method       string `json:"method"`
	StreamNumber string `json:"streamNumber"`
	ResCode      string `json:"resCode"`
	Account      string `json:"account,omitempty"`
}

// Token is the token a terminal sends: MD5(appid + timestamp) in
// upper-case hex.
func Token(appID, timestamp string) string {
	sum := md5.Sum([]byte(appID + timestamp))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// Handler answers the account API.
type Handler struct{ opts Options }

// ErrBadOptions: the handler cannot serve as configured.
var ErrBadOptions = errors.New("account: bad options")

// NewHandler checks opts and fills in the defaults.
func NewHandler(opts Options) (*Handler, error) {
	if opts.AppID == "" {
		return nil, fmt.Errorf("%w: no appid configured: set the platform's SIP appid (the demo topology's is convene-demo)", ErrBadOptions)
	}
	if opts.Account == "" {
		return nil, fmt.Errorf("%w: no account configured: set the SIP node's account", ErrBadOptions)
	}
	if opts.Skew <= 0 {
		opts.Skew = DefaultSkew
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{opts: opts}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "the account API takes POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "BAD_REQUEST", "the request body is larger than "+strconv.Itoa(maxBody)+" bytes")
			return
		}
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "the request body could not be read")
		return
	}
	resp, status, msg := h.Answer(body)
	if status != http.StatusOK {
		writeError(w, status, "BAD_REQUEST", msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// Answer answers one request body: the response and 200, or 400 with a
// sentence that says what is wrong with the body.
func (h *Handler) Answer(body []byte) (Response, int, string) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return Response{}, http.StatusBadRequest, `the body is not a JSON object: send {"method":"getAgoraAccount","streamNumber":...,"token":...,"timestamp":"YYYYMMDDhhmmss"}`
	}
	if dec.More() {
		return Response{}, http.StatusBadRequest, "the body holds more than one JSON value: send one request object"
	}
	stream, ok := streamNumber(req.StreamNumber)
	switch {
	case req.Method != Method:
		return Response{}, http.StatusBadRequest, `method must be "getAgoraAccount"`
	case !ok:
		return Response{}, http.StatusBadRequest, "streamNumber must be a string or a number: the terminal's serial number of the request"
	case req.Token == "":
		return Response{}, http.StatusBadRequest, "token is missing: send the upper-case hex MD5 of appid + timestamp"
	case len(req.Timestamp) != len(TimestampLayout):
		return Response{}, http.StatusBadRequest, "timestamp must be YYYYMMDDhhmmss"
	}
	ts, err := time.ParseInLocation(TimestampLayout, req.Timestamp, h.opts.Location)
	if err != nil {
		return Response{}, http.StatusBadRequest, "timestamp must be YYYYMMDDhhmmss"
	}
	resp := Response{Method: Method, StreamNumber: stream, ResCode: ResBadToken}
	skew := h.opts.Now().Sub(ts)
	want := Token(h.opts.AppID, req.Timestamp)
	got := strings.ToUpper(strings.TrimSpace(req.Token))
	tokenOK := subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	if tokenOK && skew <= h.opts.Skew && skew >= -h.opts.Skew {
		resp.ResCode, resp.Account = ResOK, h.opts.Account
	}
	return resp, http.StatusOK, ""
}

// streamNumber reads the serial number, a JSON string or number.
func streamNumber(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true
	}
	return "", false
}

// writeError answers with the API's error envelope.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
