package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// rawCreator is the create benchmark's load generator: each worker writes
// HTTP/1.1 requests itself on a connection of its own, kept alive, and
// reads the answers with the standard parser. The API's Go client costs
// three goroutines and a JSON decode per request; on a 2-core machine that
// is CPU taken from the platform being measured. What the platform does
// for a request is the same either way.
type rawCreator struct {
	addr string
	tls  bool // dial with TLS (an https API)
	req  []byte
	conn net.Conn
	br   *bufio.Reader
}

func newRawCreator(addr, token, domain string) (*rawCreator, error) {
	body, err := json.Marshal(apiclient.CreateConferenceRequest{
		Name: "bench", Domain: domain, Scale: 8, Resolution: "720p", DurationMinutes: 120,
	})
	if err != nil {
		return nil, err
	}
	req := fmt.Appendf(nil, "POST /v1/conferences HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, token, len(body))
	return &rawCreator{addr: addr, req: append(req, body...)}, nil
}

// create books one conference; a refusal comes back as an *apiclient.Error.
// A broken connection is dropped and the next create dials again.
func (c *rawCreator) create(ctx context.Context) error {
	if c.conn == nil {
		var (
			conn net.Conn
			err  error
		)
		if c.tls {
			conn, err = (&tls.Dialer{}).DialContext(ctx, "tcp", c.addr)
		} else {
			conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
		}
		if err != nil {
			return err
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	closing, err := c.roundTrip(deadline)
	if _, refused := err.(*apiclient.Error); closing || err != nil && !refused {
		c.close()
	}
	return err
}

// roundTrip sends one request and reads its answer; closing says the
// server will not take another on this connection.
func (c *rawCreator) roundTrip(deadline time.Time) (closing bool, err error) {
	if err := c.conn.SetDeadline(deadline); err != nil {
		return false, err
	}
	if _, err := c.conn.Write(c.req); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		_, err := io.Copy(io.Discard, resp.Body)
		return resp.Close, err
	}
	return resp.Close, apiclient.ResponseError(resp)
}

func (c *rawCreator) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.br = nil, nil
	}
}
