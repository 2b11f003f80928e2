package breakout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Client is a client of the BMS protocol over WebSocket: what the tests,
// `convene bench breakout` and tools use to play a conference's users.
type Client struct {
	conn *websocket.Conn
}

// Message is a message a Client received, with when it arrived.
type Message struct {
	Type       string
	StatusCode uint32
	Data       []byte
	At         time.Time
	// Size is the message's length on the wire (its payload): more than
	// len(Data) when NextHead kept only its head.
	Size int
}

// Decode unmarshals the message into v.
func (m Message) Decode(v any) error { return json.Unmarshal(m.Data, v) }

// Dial connects to the WebSocket URL a ticket response gives, relative to
// the API's base URL (http://host:port). The ticket is used up: to
// connect again, ask for a new one.
func Dial(ctx context.Context, apiBase, path string) (*Client, error) {
	return DialNonce(ctx, apiBase, path, "")
}

// DialNonce is Dial with a nonce of the client's (TicketNonceHeader): a
// client that did not get the answer to a connect may connect again with
// the same ticket and nonce. Empty sends none.
func DialNonce(ctx context.Context, apiBase, path, nonce string) (*Client, error) {
	u := strings.Replace(strings.TrimRight(apiBase, "/"), "http", "ws", 1) + path
	opts := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
	if nonce != "" {
		opts.HTTPHeader = http.Header{TicketNonceHeader: []string{nonce}}
	}
	conn, resp, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		if resp != nil && resp.Body != nil {
			body, _ := io.ReadAll(resp.Body)
			return nil, fmt.Errorf("breakout: dial: %s: %w", bytes.TrimSpace(body), err)
		}
		return nil, fmt.Errorf("breakout: dial: %w", err)
	}
	conn.SetReadLimit(64 << 20)
	return &Client{conn: conn}, nil
}

// Send sends a message.
func (c *Client) Send(ctx context.Context, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.conn.Write(ctx, websocket.MessageText, data)
}

// Next waits for the next message.
func (c *Client) Next(ctx context.Context) (Message, error) {
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		return Message{}, err
	}
	m := Message{Data: data, At: time.Now(), Size: len(data)}
	if typ, status, ok := head(data); ok {
		m.Type, m.StatusCode = typ, status
		return m, nil
	}
	var h struct {
		Type       string `json:"type"`
		StatusCode uint32 `json:"statusCode"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return m, fmt.Errorf("breakout: undecodable message: %w", err)
	}
	m.Type, m.StatusCode = h.Type, h.StatusCode
	return m, nil
}

// NextHead waits for the next message and keeps only its first limit
// bytes (Data), reading the rest without keeping it: for a client that
// needs a large message's type but not its content (a benchmark's).
func (c *Client) NextHead(ctx context.Context, limit int) (Message, error) {
	return c.NextInto(ctx, make([]byte, limit))
}

// NextInto is NextHead reading into buf, which Data then shares: for a
// client that reads many messages and keeps none.
func (c *Client) NextInto(ctx context.Context, buf []byte) (Message, error) {
	_, r, err := c.conn.Reader(ctx)
	if err != nil {
		return Message{}, err
	}
	n, err := io.ReadFull(r, buf)
	size := n
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
	case err != nil:
		return Message{}, err
	default:
		rest, err := io.Copy(io.Discard, r)
		if err != nil {
			return Message{}, err
		}
		size += int(rest)
	}
	m := Message{Data: buf[:n], At: time.Now(), Size: size}
	m.Type, m.StatusCode, _ = head(m.Data)
	return m, nil
}

var (
	typePrefix   = []byte(`{"type":"`)
	statusPrefix = []byte(`","statusCode":`)
)

// head reads the type and status of a message the way the service
// encodes its notifications ({"type":"...","statusCode":n, ...}) without
// decoding the rest; ok is false for any other shape.
func head(data []byte) (typ string, status uint32, ok bool) {
	rest, found := bytes.CutPrefix(data, typePrefix)
	if !found {
		return "", 0, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return "", 0, false
	}
	typ = string(rest[:i])
	num, found := bytes.CutPrefix(rest[i:], statusPrefix)
	if !found {
		return typ, 0, bytes.HasPrefix(rest[i:], []byte(`",`)) || bytes.HasPrefix(rest[i:], []byte(`"}`))
	}
	digits := 0
	for digits < len(num) && digits < 10 && num[digits] >= '0' && num[digits] <= '9' {
		status = status*10 + uint32(num[digits]-'0')
		digits++
	}
	return typ, status, digits > 0
}

// Close closes the connection normally.
func (c *Client) Close() error { return c.conn.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the connection.
func (c *Client) CloseNow() error { return c.conn.CloseNow() }

// IssueTicket asks the API at apiBase for a ticket with the bearer token.
func IssueTicket(ctx context.Context, hc *http.Client, apiBase, token, e164 string, req TicketRequest) (TicketResponse, error) {
	var out TicketResponse
	body, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(apiBase, "/")+"/v1/conferences/"+e164+"/breakout/tickets", bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(r)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("breakout: ticket: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return out, json.Unmarshal(data, &out)
}
