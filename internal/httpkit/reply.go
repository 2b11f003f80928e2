package httpkit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/convene/convene/internal/codes"
)

// WriteJSON sends v as the JSON body of a response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := replyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(buf).Encode(codes.Envelope{Error: codes.Error{Code: codes.Internal, Message: "encoding the reply failed: " + err.Error()}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	if buf.Cap() <= 64<<10 {
		replyBufs.Put(buf)
	}
}

// replyBufs hold replies being encoded: the response copies what it is
// given, so one buffer serves reply after reply. A large one (a long
// list) is not kept.
var replyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WriteError sends e in the error envelope {"error":{"code","message"}}
// with its code's HTTP status (codes.Status).
func WriteError(w http.ResponseWriter, e *codes.Error) {
	WriteErrorStatus(w, e.Status(), e)
}

// WriteErrorStatus sends e in the error envelope with status, for the rare
// answer whose status is not its code's (a WebSocket endpoint asked
// without an upgrade: 426 with BAD_REQUEST).
func WriteErrorStatus(w http.ResponseWriter, status int, e *codes.Error) {
	WriteJSON(w, status, codes.Envelope{Error: codes.Error{Code: e.Code, Message: e.Message}})
}

// BadRequest is a 400 BAD_REQUEST with a sentence made as fmt.Sprintf
// makes it.
func BadRequest(format string, args ...any) *codes.Error {
	return codes.Errorf(codes.BadRequest, format, args...)
}
