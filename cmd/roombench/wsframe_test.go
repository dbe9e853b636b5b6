package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// srvFrame is a server-to-client frame: unmasked, the shortest length.
func srvFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func closeFrame(code int, text string) []byte {
	return srvFrame(true, opClose, websocket.FormatCloseMessage(code, text))
}

// frameLog records what a wsReader handed over.
type frameLog struct{ events []string }

func (l *frameLog) onData(p []byte) {
	sum := 0
	for _, c := range p {
		sum += int(c)
	}
	l.events = append(l.events, fmt.Sprintf("data %d %d", len(p), sum))
}
func (l *frameLog) onFragment()     { l.events = append(l.events, "fragment") }
func (l *frameLog) onPing(p []byte) { l.events = append(l.events, "ping "+string(p)) }
func (l *frameLog) onClose(c int, t string) {
	l.events = append(l.events, fmt.Sprintf("close %d %s", c, t))
}

// chunks is a read function returning the given chunks (each may take
// several reads if longer than the buffer), then EOF.
func chunks(cs ...[]byte) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		for len(cs) > 0 && len(cs[0]) == 0 {
			cs = cs[1:]
		}
		if len(cs) == 0 {
			return 0, nil
		}
		n := copy(b, cs[0])
		cs[0] = cs[0][n:]
		return n, nil
	}
}

// drive reads until the stream ends (bounded) and returns the events and
// the end.
func drive(t *testing.T, scratch int, read func([]byte) (int, error)) ([]string, error) {
	t.Helper()
	var w wsReader
	var l frameLog
	buf := make([]byte, scratch)
	for range 1_000_000 {
		if err := w.readOnce(buf, read, &l); err != nil {
			return l.events, err
		}
	}
	t.Fatal("the stream did not end")
	return nil, nil
}

func payloadOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

func dataEvent(p []byte) string {
	var l frameLog
	l.onData(p)
	return l.events[0]
}

func TestWSReaderFrames(t *testing.T) {
	small, mid := payloadOf(100), payloadOf(300)
	var stream []byte
	var want []string
	add := func(frame []byte, event string) {
		stream = append(stream, frame...)
		want = append(want, event)
	}
	add(srvFrame(true, opText, []byte("hi")), dataEvent([]byte("hi")))
	add(srvFrame(true, opBinary, small), dataEvent(small))
	add(srvFrame(true, opPing, []byte("are you there")), "ping are you there")
	stream = append(stream, srvFrame(true, opPong, []byte("x"))...) // ignored
	add(srvFrame(true, opBinary, nil), dataEvent(nil))
	add(srvFrame(true, opBinary, payloadOf(125)), dataEvent(payloadOf(125)))
	add(srvFrame(true, opBinary, payloadOf(126)), dataEvent(payloadOf(126))) // 16-bit length
	add(srvFrame(true, opBinary, mid), dataEvent(mid))
	add(srvFrame(false, opText, []byte("frag")), "fragment")
	add(srvFrame(true, opContinuation, []byte("ment")), "fragment")
	add(srvFrame(true, opText, []byte("after")), dataEvent([]byte("after")))
	smallEnd, smallWant := len(stream), len(want)
	add(srvFrame(true, opBinary, payloadOf(0xffff)), dataEvent(payloadOf(0xffff)))
	add(srvFrame(true, opBinary, payloadOf(0x10000)), dataEvent(payloadOf(0x10000))) // 64-bit length
	add(srvFrame(true, opText, []byte("end")), dataEvent([]byte("end")))
	tail := closeFrame(4002, "slow consumer")
	tail = append(tail, srvFrame(true, opText, []byte("never read"))...)
	stream = append(stream, tail...)
	want = append(want, "close 4002 slow consumer")

	check := func(name string, scratch int, want []string, read func([]byte) (int, error)) {
		t.Helper()
		events, err := drive(t, scratch, read)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4002 || ce.Text != "slow consumer" {
			t.Errorf("%s: ended with %v, want close 4002", name, err)
		}
		if !slices.Equal(events, want) {
			t.Errorf("%s: events\n%q\nwant\n%q", name, events, want)
		}
	}
	split := func(s []byte, size int) [][]byte {
		var cs [][]byte
		for s = bytes.Clone(s); len(s) > 0; {
			n := min(size, len(s))
			cs = append(cs, s[:n])
			s = s[n:]
		}
		return cs
	}
	// The small frames in reads of every size up to 70 bytes (frames
	// split anywhere, headers too), in two reads split at every point, and
	// everything in reads of a few sizes: with small and large buffers.
	smallStream := append(bytes.Clone(stream[:smallEnd]), tail...)
	smallWants := append(slices.Clone(want[:smallWant]), "close 4002 slow consumer")
	for _, scratch := range []int{64, 4096, 64 << 10} {
		for size := 1; size <= 70; size++ {
			check(fmt.Sprintf("scratch %d, %d-byte reads", scratch, size), scratch, smallWants, chunks(split(smallStream, size)...))
		}
		for _, size := range []int{1000, 4099, 65536, len(stream)} {
			check(fmt.Sprintf("scratch %d, all in %d-byte reads", scratch, size), scratch, want, chunks(split(stream, size)...))
		}
	}
	for k := 1; k < len(smallStream); k++ {
		s := bytes.Clone(smallStream)
		check(fmt.Sprintf("split at %d", k), 4096, smallWants, chunks(s[:k], s[k:]))
	}
}

func TestWSReaderEnds(t *testing.T) {
	eagain := func(b []byte) (int, error) { return 0, syscall.EAGAIN }
	var w wsReader
	var l frameLog
	if err := w.readOnce(make([]byte, 64), eagain, &l); err != nil || len(l.events) != 0 {
		t.Errorf("EAGAIN: err %v, events %q", err, l.events)
	}
	reset := errors.New("connection reset by peer")
	for _, tc := range []struct {
		name   string
		read   func([]byte) (int, error)
		events []string
		code   int   // a close error's code
		err    error // or this error
		proto  bool  // or a protocol error
	}{
		{name: "close without code", read: chunks(srvFrame(true, opClose, nil)), events: []string{"close 1005 "}, code: websocket.CloseNoStatusReceived},
		{name: "close 1000", read: chunks(closeFrame(1000, "")), events: []string{"close 1000 "}, code: 1000},
		{name: "EOF", read: chunks(srvFrame(true, opText, []byte("x"))), events: []string{dataEvent([]byte("x"))}, code: websocket.CloseAbnormalClosure},
		{name: "EOF in a frame", read: chunks(srvFrame(true, opText, []byte("xyz"))[:3]), code: websocket.CloseAbnormalClosure},
		{name: "read error", read: func([]byte) (int, error) { return 0, reset }, err: reset},
		{name: "masked", read: chunks([]byte{0x81, 0x81, 1, 2, 3, 4, 'x'}), proto: true},
		{name: "reserved bit", read: chunks([]byte{0xc1, 0x01, 'x'}), proto: true},
		{name: "bad opcode", read: chunks([]byte{0x83, 0x01, 'x'}), proto: true},
		{name: "long ping", read: chunks(append([]byte{0x89, 126, 0, 126}, payloadOf(126)...)), proto: true},
		{name: "fragmented ping", read: chunks(srvFrame(false, opPing, nil)), proto: true},
		{name: "over the limit", read: chunks([]byte{0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}), proto: true},
		{name: "64-bit length with the top bit", read: chunks([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}), proto: true},
	} {
		events, err := drive(t, 4096, tc.read)
		var ce *websocket.CloseError
		var pe wsProtocolError
		switch {
		case tc.code != 0 && (!errors.As(err, &ce) || ce.Code != tc.code):
			t.Errorf("%s: err %v, want close %d", tc.name, err, tc.code)
		case tc.err != nil && err != tc.err:
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		case tc.proto && !errors.As(err, &pe):
			t.Errorf("%s: err %v, want a protocol error", tc.name, err)
		}
		if !slices.Equal(events, tc.events) {
			t.Errorf("%s: events %q, want %q", tc.name, events, tc.events)
		}
	}
}

// TestWSReaderPending checks that a receiver holds a buffer only while it
// has a partial frame, and gives up a large one.
func TestWSReaderPending(t *testing.T) {
	var w wsReader
	var l frameLog
	scratch := make([]byte, 4096)
	frame := srvFrame(true, opBinary, payloadOf(100))
	if err := w.readOnce(scratch, chunks(frame), &l); err != nil || w.pending != nil {
		t.Fatalf("whole frame: err %v, pending %v", err, w.pending != nil)
	}
	if err := w.readOnce(scratch, chunks(frame[:50]), &l); err != nil || len(w.pending) != 50 {
		t.Fatalf("half a frame: err %v, %d pending", err, len(w.pending))
	}
	if err := w.readOnce(scratch, chunks(frame[50:]), &l); err != nil || len(w.pending) != 0 {
		t.Fatalf("its rest: err %v, %d pending", err, len(w.pending))
	}
	big := srvFrame(true, opBinary, payloadOf(wsKeepPending+1))
	read := chunks(big)
	for range 100 {
		if err := w.readOnce(scratch, read, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.events) == 3 {
			break
		}
	}
	if len(l.events) != 3 || w.pending != nil {
		t.Errorf("after a large frame: events %q, pending cap %d", l.events, cap(w.pending))
	}
}

func TestHeadEnd(t *testing.T) {
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Folded: a\r\n b\r\n\r\n"
	for _, h := range []string{head, strings.ReplaceAll(head, "\r\n", "\n")} {
		for k := range len(h) {
			var e headEnd
			n := e.scan([]byte(h[:k]))
			if n != k || e.done {
				t.Fatalf("%q: first %d bytes: %d, done %v", h, k, n, e.done)
			}
			if n := e.scan([]byte(h[k:] + "\x81\x02hi")); n != len(h)-k || !e.done {
				t.Fatalf("%q: split at %d: head ends after %d, want %d", h, k, n, len(h)-k)
			}
		}
	}
}

// fakeUpgrade answers one WebSocket upgrade on ln by hand, writing the 101
// and then after in the same write, and keeps the connection open until
// the test ends.
func fakeUpgrade(t *testing.T, ln net.Listener, after []byte) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	t.Cleanup(func() { c.Close() })
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		t.Error(err)
		return
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	if _, err := c.Write(append([]byte(resp), after...)); err != nil {
		t.Error(err)
	}
}

// TestHandshakeCarry checks that what the server sent right after the 101
// (and right after a first frame the handshake reads through gorilla) is
// neither lost in gorilla's buffer nor read twice: detach returns exactly
// what gorilla did not consume.
func TestHandshakeCarry(t *testing.T) {
	first := srvFrame(true, opText, []byte(`{"id":1,"connect":{}}`))
	rest := append(srvFrame(true, opText, []byte("{}")), srvFrame(true, opBinary, payloadOf(3000))[:700]...)
	for _, tc := range []struct {
		name      string
		after     []byte
		readFirst bool
		want      []byte
	}{
		{"nothing", nil, false, nil},
		{"frames after the 101", append(bytes.Clone(first), rest...), false, append(bytes.Clone(first), rest...)},
		{"frames after a frame the handshake reads", append(bytes.Clone(first), rest...), true, rest},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go fakeUpgrade(t, ln, tc.after)
		f := newFleet(&config{dialTimeout: 5 * time.Second, readBuffer: 4096})
		d := f.dialers(nil, true)[0]
		ws, _, err := d.DialContext(context.Background(), "ws://"+ln.Addr().String()+"/", nil)
		ln.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.readFirst {
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"id":1,"connect":{}}` {
				t.Fatalf("%s: first frame %q, %v", tc.name, msg, err)
			}
		}
		hc := ws.NetConn().(*handshakeConn)
		got := hc.detach()
		// The server wrote it all at once, but the handshake's reads may
		// have taken only part: the rest is still in the socket.
		_ = hc.Conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 8192)
		for i := 0; i < 100 && len(got) < len(tc.want); i++ {
			n, err := hc.Conn.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: carried and left %d bytes %q, want %d", tc.name, len(got), got, len(tc.want))
		}
		ws.Close()
	}
}

func TestReaderFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.reader != defaultReader() || (cfg.reader == readerEpoll) != (cfg.pollers > 0) {
		t.Errorf("default reader %q with %d pollers", cfg.reader, cfg.pollers)
	}
	if cfg, err := parseFlags([]string{"-reader", "goroutines", "-pollers", "3"}, io.Discard); err != nil || cfg.pollers != 0 {
		t.Errorf("-reader goroutines: %v, %d pollers", err, cfg.pollers)
	}
	if epollSupported {
		if cfg, err := parseFlags([]string{"-reader", "epoll", "-pollers", "3"}, io.Discard); err != nil || cfg.pollers != 3 {
			t.Errorf("-reader epoll -pollers 3: %v, %d pollers", err, cfg.pollers)
		}
	}
	for _, bad := range [][]string{{"-reader", "io_uring"}, {"-pollers", "-1"}, {"-pollers", "5000"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
