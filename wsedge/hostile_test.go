package wsedge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"roomd/rooms"
)

// startEdge serves an Edge on a real loopback port.
func startEdge(t testing.TB, cfg Config) (*rooms.Hub, string) {
	t.Helper()
	return startEdgeWithHub(t, rooms.NewHub(rooms.Config{}), cfg)
}

func startEdgeWithHub(t testing.TB, hub *rooms.Hub, cfg Config) (*rooms.Hub, string) {
	t.Helper()
	cfg.Hub = hub
	cfg.AutoCreate = true
	edge := New(cfg)
	srv := httptest.NewUnstartedServer(edge.Handler())
	srv.Config.ReadHeaderTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		edge.Shutdown(ctx)
		srv.Close()
	})
	return hub, srv.Listener.Addr().String()
}

// rawClient speaks WebSocket by hand, to send what no library would.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr, room string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws/" + room + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw upgrade: %v %v", resp, err)
	}
	return &rawClient{conn, br}
}

// clientFrame builds a frame with every header bit under the test's control.
func clientFrame(fin bool, rsv, opcode byte, masked bool, payload []byte) []byte {
	b0 := rsv<<4 | opcode
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, maskBit|byte(n))
	case n <= 0xFFFF:
		out = append(out, maskBit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	key := [4]byte{1, 2, 3, 4}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

func (c *rawClient) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := c.conn.Write(f); err != nil {
			t.Fatalf("raw write: %v", err)
		}
	}
}

// readFrame reads one server frame (never masked, never fragmented).
func (c *rawClient) readFrame() (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = int64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = int64(binary.BigEndian.Uint64(l[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// closeCode reads server frames until a close frame and returns its code,
// or -1 if the connection ended without one.
func (c *rawClient) closeCode(t *testing.T) int {
	t.Helper()
	code, _ := c.closeFrame()
	return code
}

// closeFrame reads server frames until a close frame and returns its code
// and reason; the code is -1 if the connection ended without one.
func (c *rawClient) closeFrame() (int, string) {
	for {
		opcode, payload, err := c.readFrame()
		switch {
		case err != nil:
			return -1, ""
		case opcode != opClose:
			continue
		case len(payload) < 2:
			return 1005, ""
		}
		return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
	}
}

// A hostile peer gets the RFC 6455 answer for each violation, and a
// well-behaved member of the same room keeps receiving all the while.
func TestHostileClientsGetTheRFCAnswerAndOthersCarryOn(t *testing.T) {
	hub, addr := startEdge(t, Config{MaxMessageBytes: 1024, MessageRate: 50, MessageBurst: 20})
	good, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/r", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()

	text := func(s string) []byte { return clientFrame(true, 0, opText, true, []byte(s)) }
	closeWith := func(code uint16) []byte {
		return clientFrame(true, 0, opClose, true, binary.BigEndian.AppendUint16(nil, code))
	}
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   int
	}{
		{"unmasked frame", [][]byte{clientFrame(true, 0, opText, false, []byte("hi"))}, 1002},
		{"reserved bit", [][]byte{clientFrame(true, 2, opText, true, []byte("hi"))}, 1002},
		{"bad opcode", [][]byte{clientFrame(true, 0, 0x3, true, nil)}, 1002},
		{"control frame over 125 bytes", [][]byte{clientFrame(true, 0, opPing, true, make([]byte, 126))}, 1002},
		{"fragmented control frame", [][]byte{clientFrame(false, 0, opPing, true, []byte("x"))}, 1002},
		{"continuation without start", [][]byte{clientFrame(true, 0, 0x0, true, []byte("x"))}, 1002},
		{"close code 1005 on the wire", [][]byte{closeWith(1005)}, 1002},
		{"close code 999", [][]byte{closeWith(999)}, 1002},
		{"close reason not UTF-8", [][]byte{clientFrame(true, 0, opClose, true, []byte{0x03, 0xe8, 0xff})}, 1007},
		{"64-bit length with the top bit set", [][]byte{{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}}, 1002},
		{"invalid UTF-8 text", [][]byte{text("\xc3\x28")}, 1007},
		{"invalid UTF-8 across fragments", [][]byte{clientFrame(false, 0, opText, true, []byte("\xe2\x82")), clientFrame(true, 0, 0x0, true, []byte("x"))}, 1007},
		{"message over the limit", [][]byte{text(strings.Repeat("x", 1025))}, 1009},
		{"message over the limit in fragments", [][]byte{clientFrame(false, 0, opBinary, true, make([]byte, 1000)), clientFrame(true, 0, 0x0, true, make([]byte, 100))}, 1009},
		{"flood", func() [][]byte {
			var fs [][]byte
			for range 200 {
				fs = append(fs, text("spam"))
			}
			return fs
		}(), 1008},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr, "r")
			c.send(t, tc.frames...)
			if got := c.closeCode(t); got != tc.want {
				t.Errorf("server answered %d, want %d", got, tc.want)
			}
			// The room is fine: the good member gets the next message.
			want := "after " + tc.name
			hub.Publish(&rooms.Message{RoomID: "r", Kind: rooms.Text, Payload: []byte(want)})
			for {
				good.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, data, err := good.ReadMessage()
				if err != nil {
					t.Fatalf("good member: %v", err)
				}
				if string(data) == want {
					break
				}
			}
		})
	}
}

// A client that never finishes its upgrade request is cut off by the
// server's header timeout.
func TestHalfFinishedUpgradeIsCutOff(t *testing.T) {
	_, addr := startEdge(t, Config{})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws/r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a half-finished upgrade open for 5 s")
	}
}

// panicBroker panics on one room's messages, standing in for a bug deep in
// the publish path.
type panicBroker struct{ rooms.Broker }

func (b panicBroker) Publish(m *rooms.Message) (rooms.Published, error) {
	if string(m.Payload) == "boom" {
		panic("bug on the publish path")
	}
	return b.Broker.Publish(m)
}

// A panic while serving one connection closes that connection with 1011
// and is logged; the process and the rest of the room carry on.
func TestPanicClosesOnlyThatConnection(t *testing.T) {
	panics := &panicCounter{}
	hub := rooms.NewHub(rooms.Config{NewBroker: func(local rooms.Deliverer) rooms.Broker {
		return panicBroker{rooms.NewMemoryBroker(local)}
	}})
	_, addr := startEdgeWithHub(t, hub, Config{Logger: slog.New(panics)})
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/r", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	bad, good := dial(), dial()
	bad.WriteMessage(websocket.TextMessage, []byte("boom"))
	bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := bad.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseInternalServerErr) {
		t.Fatalf("the connection that hit the bug ended with %v, want 1011", err)
	}
	if panics.n.Load() != 1 {
		t.Errorf("%d panics logged, want 1", panics.n.Load())
	}
	good.WriteMessage(websocket.TextMessage, []byte("fine"))
	good.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := good.ReadMessage(); err != nil || string(data) != "fine" {
		t.Fatalf("the other member: %q, %v", data, err)
	}
}

// A client that floods pings is closed with 1008 once past its burst,
// however fast it reads its pongs, and is not read any more: the server
// hangs up once its close frame is out, without waiting the close timeout
// for a reply. A member of another room keeps receiving all the while.
func TestControlFrameFloodIsClosed(t *testing.T) {
	hub, addr := startEdge(t, Config{CloseTimeout: time.Minute}) // longer than the test waits
	member, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/other", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()

	const floods, pings = 4, 10_000
	flood := bytes.Repeat(clientFrame(true, 0, opPing, true, []byte("ping")), pings)
	type result struct {
		pongs   int
		code    int
		reason  string
		elapsed time.Duration
		hangUp  error // how the connection ended after the close frame
	}
	results := make(chan result, floods)
	var writers sync.WaitGroup
	defer writers.Wait()
	for range floods {
		c := dialRaw(t, addr, "flood")
		start := time.Now()
		writers.Go(func() { c.conn.Write(flood) }) // ends when the server closes, if not before
		go func() {
			var r result
			for {
				opcode, payload, err := c.readFrame()
				switch {
				case err != nil:
					r.code = -1
				case opcode == opPong:
					r.pongs++
					continue
				case opcode != opClose:
					continue
				case len(payload) >= 2:
					r.code, r.reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
				}
				r.elapsed = time.Since(start)
				for r.code != -1 && r.hangUp == nil {
					_, _, r.hangUp = c.readFrame()
				}
				results <- r
				return
			}
		}()
	}

	// The member of the other room hears every message published while the
	// floods run, and after.
	received := func(i int) {
		t.Helper()
		want := strconv.Itoa(i)
		hub.Publish(&rooms.Message{RoomID: "other", Kind: rooms.Text, Payload: []byte(want)})
		member.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, data, err := member.ReadMessage(); err != nil || string(data) != want {
			t.Fatalf("member of the other room: %q, %v; want %q", data, err, want)
		}
	}
	for i, done := 0, 0; done < floods; i++ {
		select {
		case r := <-results:
			done++
			if r.code != int(rooms.ClosePolicyViolation) || !strings.Contains(r.reason, "control frames per second") {
				t.Errorf("flooder got close %d %q, want 1008 rate limit: ... control frames per second", r.code, r.reason)
			}
			if ne, ok := r.hangUp.(net.Error); ok && ne.Timeout() {
				t.Errorf("the server kept the flooder's connection open after its close frame: %v", r.hangUp)
			}
			// Every pong answered a ping that was within the budget.
			budget := controlFrameBurst + int(controlFrameRate*r.elapsed.Seconds()) + 1
			if r.pongs > budget {
				t.Errorf("flooder got %d pongs in %v before the close, more than the %d pings its budget allows", r.pongs, r.elapsed, budget)
			}
		default:
			received(i)
		}
	}
	received(-1)
}

// A client may send as many pings and pongs as the burst at once (a
// non-browser client that pings on its own, answering the server's pings
// besides) and carries on.
func TestControlFramesWithinTheBurstAreFine(t *testing.T) {
	_, addr := startEdge(t, Config{})
	c := dialRaw(t, addr, "r")
	var frames [][]byte
	for i := range controlFrameBurst {
		op := byte(opPing)
		if i%2 == 1 {
			op = opPong
		}
		frames = append(frames, clientFrame(true, 0, op, true, []byte("x")))
	}
	frames = append(frames, clientFrame(true, 0, opText, true, []byte("still here")))
	c.send(t, frames...)
	for {
		opcode, payload, err := c.readFrame()
		switch {
		case err != nil:
			t.Fatalf("reading the echo: %v", err)
		case opcode == opClose:
			t.Fatalf("closed after %d control frames: %q", controlFrameBurst, payload)
		case opcode == opText && string(payload) == "still here":
			return
		}
	}
}

// Messages of every size, whole or in fragments with pings between them,
// arrive intact however their bytes are split.
func TestMessagesArriveWhole(t *testing.T) {
	_, addr := startEdge(t, Config{})
	c := dialRaw(t, addr, "r")
	for _, size := range []int{0, 1, 511, 512, 513, 4096, 65000} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		third := size / 3
		for _, frames := range [][][]byte{
			{clientFrame(true, 0, opBinary, true, payload)},
			{
				clientFrame(false, 0, opBinary, true, payload[:third]),
				clientFrame(true, 0, opPing, true, []byte("between")),
				clientFrame(false, 0, 0x0, true, payload[third:2*third]),
				clientFrame(true, 0, 0x0, true, payload[2*third:]),
			},
		} {
			// Written a few bytes at a time too, so that frames straddle
			// the server's reads every which way.
			wire := bytes.Join(frames, nil)
			for i := 0; i < len(wire); {
				n := min(len(wire)-i, 1+i%1500)
				c.send(t, wire[i:i+n])
				i += n
			}
			for {
				opcode, got, err := c.readFrame()
				if err != nil {
					t.Fatalf("%d bytes in %d frames: %v", size, len(frames), err)
				}
				if opcode == opClose {
					t.Fatalf("%d bytes in %d frames: closed with %q", size, len(frames), got)
				}
				if opcode == opBinary {
					if !bytes.Equal(got, payload) {
						t.Fatalf("%d bytes in %d frames: the echo differs (%d bytes)", size, len(frames), len(got))
					}
					break
				}
			}
		}
	}
}

// A header announcing 65,000 bytes costs at most 4 KiB until the bytes
// come: many connections each holding such a message open cost far less
// than 64 KiB each.
func TestUnfinishedMessagesHoldOnlyWhatArrived(t *testing.T) {
	const conns = 100
	_, addr := startEdge(t, Config{PongTimeout: time.Minute}) // none is closed for its message during the test
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	clients := make([]*rawClient, conns)
	for i := range clients {
		clients[i] = dialRaw(t, addr, "r")
	}
	// A first fragment, a ping, then a continuation announcing 65,000
	// bytes of which 10 come. The pong shows the server has read the ping,
	// and with it the header and the 10 bytes behind it in the same write.
	unfinished := bytes.Join([][]byte{
		clientFrame(false, 0, opBinary, true, []byte("abc")),
		clientFrame(true, 0, opPing, true, []byte("sync")),
		clientFrame(false, 0, 0x0, true, make([]byte, 65000))[:2+2+4+10],
	}, nil)
	for _, c := range clients {
		c.send(t, unfinished)
	}
	for _, c := range clients {
		for {
			opcode, payload, err := c.readFrame()
			if err != nil || opcode == opClose {
				t.Fatalf("waiting for the pong: opcode %d %q, %v", opcode, payload, err)
			}
			if opcode == opPong && string(payload) == "sync" {
				break
			}
		}
	}
	after := heap()
	perConn := (int64(after) - int64(before)) / conns
	t.Logf("heap growth per connection with an unfinished message: %d bytes", perConn)
	if perConn > 16<<10 {
		t.Errorf("each connection with an unfinished message holds %d bytes of heap; want far less than the 64 KiB announced (at most 16 KiB, the connection included)", perConn)
	}
}

// A message must be finished within PongTimeout of its first frame, pings
// or not: one left unfinished between fragments while its client answers
// every ping, and one stalled inside a frame, are closed with 1008.
func TestUnfinishedMessageIsClosedInTime(t *testing.T) {
	const bound = 500 * time.Millisecond
	_, addr := startEdge(t, Config{PingInterval: 50 * time.Millisecond, PongTimeout: bound})
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"between fragments", clientFrame(false, 0, opText, true, []byte("abc"))},
		{"inside a frame", clientFrame(false, 0, opBinary, true, make([]byte, 65000))[:2+2+4+10]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr, "r")
			start := time.Now()
			c.send(t, tc.frame)
			pongs := 0
			for {
				opcode, payload, err := c.readFrame()
				if err != nil {
					t.Fatalf("after %v and %d pongs: %v, want a close frame", time.Since(start), pongs, err)
				}
				if opcode == opPing && tc.name == "between fragments" {
					c.send(t, clientFrame(true, 0, opPong, true, payload))
					pongs++
					continue
				}
				if opcode != opClose {
					continue
				}
				elapsed := time.Since(start)
				code := binary.BigEndian.Uint16(payload)
				want := "message not finished within " + bound.String()
				if code != uint16(rooms.ClosePolicyViolation) || string(payload[2:]) != want {
					t.Errorf("closed with %d %q, want 1008 %q", code, payload[2:], want)
				}
				if elapsed < bound {
					t.Errorf("closed after %v, before the %v bound", elapsed, bound)
				}
				t.Logf("closed after %v, %d pongs sent", elapsed, pongs)
				return
			}
		})
	}
}
