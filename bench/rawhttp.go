package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// rawClient is one keep-alive HTTP/1.1 connection that speaks just enough of
// the protocol for the generator's requests (a request line, four headers, a
// body; a response's status, its Content-Length or chunks), as wrk does. The
// generator shares the CPUs with the server it measures: net/http's client
// spent about as much CPU per request as the server under test, which the
// server then lacked (bench/wrk/run.sh measured it: playhead-bench reported
// 0.69× of wrk's PUT/s against the same node). One per worker; not safe for
// concurrent use. http:// only (Run uses net/http for https).
type rawClient struct {
	addr, host string
	conn       net.Conn
	br         *bufio.Reader
	out        []byte
}

func newRawClient(hostport string) *rawClient { return &rawClient{addr: hostport, host: hostport} }

// errMalformed is a response the client cannot parse.
var errMalformed = errors.New("bench: malformed HTTP response")

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// do sends one request and reads the answer, discarding its body; it returns
// the status. A kept-alive connection the server closed while it was idle is
// retried once on a new one, as net/http does.
func (c *rawClient) do(ctx context.Context, method, path, token string, body []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if !reused {
			d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
			conn, err := d.DialContext(ctx, "tcp", c.addr)
			if err != nil {
				return 0, err
			}
			c.conn = conn
			if c.br == nil {
				c.br = bufio.NewReaderSize(conn, 16<<10)
			} else {
				c.br.Reset(conn)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.conn.SetDeadline(deadline)
		b := append(c.out[:0], method...)
		b = append(b, ' ')
		b = append(b, path...)
		b = append(b, " HTTP/1.1\r\nHost: "...)
		b = append(b, c.host...)
		b = append(b, "\r\nAuthorization: Bearer "...)
		b = append(b, token...)
		if body != nil {
			b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
			b = strconv.AppendInt(b, int64(len(body)), 10)
		}
		b = append(b, "\r\n\r\n"...)
		b = append(b, body...)
		c.out = b
		_, err := c.conn.Write(b)
		status, got := 0, false
		if err == nil {
			status, got, err = c.readResponse()
		}
		if err == nil {
			return status, nil
		}
		c.close()
		var ne net.Error
		if reused && !got && attempt == 0 && !(errors.As(err, &ne) && ne.Timeout()) && ctx.Err() == nil {
			continue
		}
		return 0, err
	}
}

// readResponse reads one response and discards its body. got reports
// whether any of it arrived.
func (c *rawClient) readResponse() (status int, got bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, len(line) > 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, true, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, true, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	length, chunked, closing := int64(-1), false, false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, true, err
		}
		if len(line) <= 2 { // the blank line
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, true, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, true, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closing = asciiEqualFold(value, "close")
		}
	}
	switch {
	case status == 204 || status == 304 || status/100 == 1:
	case chunked:
		err = c.discardChunks()
	case length >= 0:
		_, err = c.br.Discard(int(length))
	default: // the body ends with the connection
		_, err = io.Copy(io.Discard, c.br)
		closing = true
	}
	if err != nil {
		return 0, true, err
	}
	if closing {
		c.close()
	}
	return status, true, nil
}

// discardChunks reads a chunked body and its trailers.
func (c *rawClient) discardChunks() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			for { // trailers, then the blank line
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(n) + 2); err != nil { // the data and its CRLF
			return err
		}
	}
}

// asciiEqualFold compares b with an ASCII string, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
