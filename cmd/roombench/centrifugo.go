package main

// -target centrifugo: the same load against Centrifugo (v6), through its
// bidirectional JSON client protocol over WebSocket and its server HTTP API.
//
// Client protocol (JSON): a client sends commands {"id":N,"connect":{...}}
// and {"id":N,"subscribe":{"channel":...}}, newline-separated if several
// share a frame; the server answers each with a reply carrying the same id
// (and an "error" object if it failed), and pushes publications as
// {"push":{"channel":...,"pub":{"data":...}}}. The server may put several
// replies in one WebSocket frame, one per line. Its application-level ping
// is an empty reply, {}, which the client must answer with an empty
// command, {}, or be disconnected (3012, no pong).
//
// Payloads: Centrifugo's JSON protocol carries publication data as JSON, so
// the 20-byte binary header (send time, publisher, sequence) travels as a
// JSON string: a quote, the header's 20 bytes as 40 hex digits, the
// payload's padding letters, a quote, -payload bytes in all. Receivers find
// the hex digits without unmarshalling the push.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"

	"roomd/rooms"
)

// Targets and how each publishes.
const (
	targetRoomd      = "roomd"
	targetCentrifugo = "centrifugo"
	viaCentrifugoAPI = "centrifugo-http-api"
)

const (
	// centrifugoWSPath is Centrifugo's bidirectional WebSocket endpoint
	// (websocket.handler_prefix), used when -url has no path.
	centrifugoWSPath = "/connection/websocket"
	// centrifugoMinPayload is a JSON string holding the hex header.
	centrifugoMinPayload = 2 + 2*headerSize
	// centrifugoSlowCode is the close code Centrifugo sends a client it
	// drops for not reading fast enough (its client queue overflowed).
	centrifugoSlowCode = 3008
	// centrifugoReadLimit bounds one frame a Centrifugo client reads:
	// Centrifugo batches queued pushes into one frame.
	centrifugoReadLimit = 64 << 20
	// centrifugoConnectID and centrifugoSubscribeID are the command ids.
	centrifugoConnectID   = 1
	centrifugoSubscribeID = 2
)

// centrifugoAPIBase derives the HTTP API base from the WebSocket URL: same
// host and port, http instead of ws.
func centrifugoAPIBase(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", fmt.Errorf("-url %q: %w", wsURL, err)
	}
	if u.Scheme != "ws" {
		return "", fmt.Errorf("-url %q: scheme must be ws", wsURL)
	}
	return (&url.URL{Scheme: "http", Host: u.Host}).String(), nil
}

// centrifugoCommands is the first frame a client sends: connect (anonymous,
// no token) and subscribe to the room's channel, one command per line.
func centrifugoCommands(channel string) ([]byte, error) {
	ch, err := json.Marshal(channel)
	if err != nil {
		return nil, err
	}
	b := fmt.Appendf(nil, `{"id":%d,"connect":{}}`+"\n", centrifugoConnectID)
	b = fmt.Appendf(b, `{"id":%d,"subscribe":{"channel":%s}}`, centrifugoSubscribeID, ch)
	return b, nil
}

// centrifugoPong answers a server ping.
var centrifugoPong = []byte("{}")

// centrifugoError is a reply's error object.
type centrifugoError struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
}

// centrifugoHandshake sends connect and subscribe for channel and waits,
// until deadline, for both replies. The connection is ready to read pushes
// when it returns nil.
func centrifugoHandshake(ws *websocket.Conn, channel string, deadline time.Time) error {
	cmds, err := centrifugoCommands(channel)
	if err != nil {
		return err
	}
	ws.SetReadLimit(centrifugoReadLimit)
	_ = ws.SetWriteDeadline(deadline)
	_ = ws.SetReadDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, cmds); err != nil {
		return err
	}
	connected, subscribed := false, false
	for frames := 0; !connected || !subscribed; frames++ {
		if frames >= 100 {
			return errors.New("centrifugo: no connect and subscribe replies in 100 frames")
		}
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		for line := range centrifugoLines(msg) {
			if isCentrifugoPing(line) {
				if err := ws.WriteMessage(websocket.TextMessage, centrifugoPong); err != nil {
					return err
				}
				continue
			}
			var reply struct {
				ID    uint32           `json:"id"`
				Error *centrifugoError `json:"error"`
			}
			if err := json.Unmarshal(line, &reply); err != nil {
				return fmt.Errorf("centrifugo: reply %.80q: %w", line, err)
			}
			what := ""
			switch reply.ID {
			case centrifugoConnectID:
				what, connected = "connect", true
			case centrifugoSubscribeID:
				what, subscribed = "subscribe", true
			default:
				continue // a push: nothing is published before setup ends
			}
			if reply.Error != nil {
				return fmt.Errorf("centrifugo %s: error %d %s", what, reply.Error.Code, reply.Error.Message)
			}
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})
	return nil
}

// centrifugoLines yields the non-empty lines of a frame: Centrifugo joins
// several replies in one frame with '\n'.
func centrifugoLines(frame []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(frame) > 0 {
			line := frame
			if i := bytes.IndexByte(frame, '\n'); i >= 0 {
				line, frame = frame[:i], frame[i+1:]
			} else {
				frame = nil
			}
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) > 0 && !yield(line) {
				return
			}
		}
	}
}

func isCentrifugoPing(line []byte) bool { return string(line) == "{}" }

// centrifugoKind is what one line of a frame is.
type centrifugoKind int

const (
	centrifugoOther   centrifugoKind = iota // a reply or push roombench does not expect
	centrifugoPing                          // {}: answer {}
	centrifugoPub                           // a publication; its header was decoded
	centrifugoBadData                       // a publication whose data holds no header
)

var (
	centrifugoPushPrefix = []byte(`{"push":{`)
	centrifugoPubKey     = []byte(`"pub":{`)
	centrifugoDataKey    = []byte(`"data":"`)
)

// parseCentrifugoLine classifies one line and, for a publication, decodes
// its header into hdr. It only looks for the publication's data string:
// JSON escapes every quote inside strings, so `"pub":{` and `"data":"`
// cannot appear inside the channel name.
func parseCentrifugoLine(line []byte, hdr *[headerSize]byte) centrifugoKind {
	if isCentrifugoPing(line) {
		return centrifugoPing
	}
	if !bytes.HasPrefix(line, centrifugoPushPrefix) {
		return centrifugoOther
	}
	rest := line[len(centrifugoPushPrefix):]
	i := bytes.Index(rest, centrifugoPubKey)
	if i < 0 {
		return centrifugoOther // join, leave, unsubscribe, disconnect...
	}
	rest = rest[i+len(centrifugoPubKey):]
	j := bytes.Index(rest, centrifugoDataKey)
	if j < 0 {
		return centrifugoBadData
	}
	rest = rest[j+len(centrifugoDataKey):]
	if len(rest) < 2*headerSize {
		return centrifugoBadData
	}
	if _, err := hex.Decode(hdr[:], rest[:2*headerSize]); err != nil {
		return centrifugoBadData
	}
	return centrifugoPub
}

// appendCentrifugoData appends payload as the JSON string Centrifugo
// publishes: '"', the header in hex, the padding after the header up to
// len(payload) bytes in all, '"'. The padding must need no JSON escaping
// (the publishers fill it with letters).
func appendCentrifugoData(dst, payload []byte) []byte {
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, payload[:headerSize])
	if pad := len(payload) - centrifugoMinPayload; pad > 0 {
		dst = append(dst, payload[headerSize:headerSize+pad]...)
	}
	return append(dst, '"')
}

// centrifugoAdmin publishes through Centrifugo's server HTTP API
// (POST /api/publish with X-API-Key), one keep-alive connection per
// publisher. Rooms are channels, which exist while they have subscribers:
// creating and deleting them does nothing.
type centrifugoAdmin struct {
	rest *restAdmin
}

func newCentrifugoAdmin(base *url.URL, apiKey string, publishers int) *centrifugoAdmin {
	a := newRESTAdmin(base, publishers)
	a.apiKey = apiKey
	return &centrifugoAdmin{rest: a}
}

func (c *centrifugoAdmin) createRoom(context.Context, string) error { return nil }
func (c *centrifugoAdmin) deleteRoom(context.Context, string) error { return nil }
func (c *centrifugoAdmin) countsRecipients() bool                   { return false }
func (c *centrifugoAdmin) close()                                   { c.rest.close() }

func (c *centrifugoAdmin) publisher() (func(context.Context, string, []byte) (int, error), error) {
	var body []byte
	var lastRoom string
	var prefix []byte // {"channel":"<room>","data":
	return func(ctx context.Context, roomID string, payload []byte) (int, error) {
		if prefix == nil || roomID != lastRoom {
			ch, err := json.Marshal(roomID)
			if err != nil {
				return 0, err
			}
			prefix = append(append([]byte(`{"channel":`), ch...), `,"data":`...)
			lastRoom = roomID
		}
		body = append(body[:0], prefix...)
		body = appendCentrifugoData(body, payload)
		body = append(body, '}')
		out, code, err := c.rest.do(ctx, http.MethodPost, "/api/publish", body)
		if err != nil {
			return 0, err
		}
		if err := centrifugoPublishResult(code, out); err != nil {
			return 0, err
		}
		return 0, nil // Centrifugo does not say how many subscribers got it
	}, nil
}

// centrifugoPublishResult checks a publish response: HTTP 200 and no error
// object (Centrifugo answers API errors with 200 and {"error":{...}}).
func centrifugoPublishResult(code int, out []byte) error {
	if code != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(out))
	}
	if !bytes.Contains(out, []byte(`"error"`)) {
		return nil
	}
	var resp struct {
		Error *centrifugoError `json:"error"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return fmt.Errorf("publish response %q: %w", out, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("centrifugo publish: error %d %s", resp.Error.Code, resp.Error.Message)
	}
	return nil
}

// readFrame reads the rest of a frame into buf[:0], growing it as needed.
func readFrame(buf []byte, r io.Reader) ([]byte, error) {
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, 512)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// setupWhat is how the report names what one connection's setup did.
func setupWhat(target string) string {
	if target == targetCentrifugo {
		return "upgrades+connects+subscribes/s"
	}
	return "upgrades+joins/s"
}

// slowCode is the close code with which the target drops a slow member.
func slowCode(target string) int {
	if target == targetCentrifugo {
		return centrifugoSlowCode
	}
	return int(rooms.CloseSlowConsumer)
}

// isCentrifugo reports whether cfg drives Centrifugo.
func (cfg *config) isCentrifugo() bool { return cfg.target == targetCentrifugo }
