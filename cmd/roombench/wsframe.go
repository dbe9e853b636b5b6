package main

// The epoll reader's half that does not depend on Linux: a WebSocket frame
// parser for server-to-client frames, and the connection wrapper that hands
// it whatever the handshake read past its end.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/gorilla/websocket"
)

const (
	// wsMaxPayload bounds one frame's payload: Centrifugo's read limit
	// (it batches replies into one frame), far above roomd's 1 MiB.
	wsMaxPayload = centrifugoReadLimit
	// wsMaxHeader is the longest server-to-client frame header: two bytes
	// and a 64-bit length (server frames are not masked).
	wsMaxHeader = 10
	// wsKeepPending is the largest pending buffer a receiver keeps for the
	// next partial frame once its frame completed; a larger one (a frame
	// longer than this) is let go.
	wsKeepPending = 64 << 10
	// wsPendingMin is the smallest pending buffer allocated.
	wsPendingMin = 512
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0
	opText         = 1
	opBinary       = 2
	opClose        = 8
	opPing         = 9
	opPong         = 10
)

// errWSEOF is how gorilla reports a connection that ended without a close
// frame; the epoll reader reports it the same way, so that the report's
// "unexpected end" keys do not depend on the reader.
var errWSEOF = &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: io.ErrUnexpectedEOF.Error()}

// wsProtocolError is a frame the server must not send.
type wsProtocolError string

func (e wsProtocolError) Error() string { return "websocket: " + string(e) }

// wsFrame is one parsed frame; payload aliases the read buffer.
type wsFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// parseFrame parses the server-to-client frame at the start of b. It
// returns the frame and its length in b; n == 0 when b does not hold all of
// it yet, with need the frame's whole length when the header is complete
// (0 when not even that is known). A frame the client must reject
// (reserved bits, a mask, an unknown opcode, a long or fragmented control
// frame, a payload over wsMaxPayload) is an error: the stream cannot go on.
func parseFrame(b []byte) (fr wsFrame, n, need int, err error) {
	if len(b) < 2 {
		return fr, 0, 0, nil
	}
	b0, b1 := b[0], b[1]
	fr.fin = b0&0x80 != 0
	fr.op = b0 & 0x0f
	if b0&0x70 != 0 {
		return fr, 0, 0, wsProtocolError(fmt.Sprintf("reserved bits %#x set (no extension was negotiated)", b0&0x70))
	}
	if b1&0x80 != 0 {
		return fr, 0, 0, wsProtocolError("masked frame from the server")
	}
	switch fr.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !fr.fin || b1&0x7f > 125 {
			return fr, 0, 0, wsProtocolError(fmt.Sprintf("control frame %d fragmented or longer than 125 bytes", fr.op))
		}
	default:
		return fr, 0, 0, wsProtocolError(fmt.Sprintf("bad opcode %d", fr.op))
	}
	hlen, plen := 2, uint64(b1&0x7f)
	switch plen {
	case 126:
		hlen = 4
		if len(b) < hlen {
			return fr, 0, 0, nil
		}
		plen = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		hlen = 10
		if len(b) < hlen {
			return fr, 0, 0, nil
		}
		plen = binary.BigEndian.Uint64(b[2:])
	}
	if plen > wsMaxPayload {
		return fr, 0, 0, wsProtocolError(fmt.Sprintf("frame of %d bytes, over the %d-byte limit", plen, wsMaxPayload))
	}
	need = hlen + int(plen)
	if len(b) < need {
		return fr, 0, need, nil
	}
	fr.payload = b[hlen:need:need]
	return fr, need, need, nil
}

// frameHandler is what a wsReader does with the frames it parses. A close
// frame ends the stream after onClose; pongs are ignored.
type frameHandler interface {
	// onData gets a whole text or binary message (FIN set, opcode 1 or 2).
	onData(payload []byte)
	// onFragment gets a fragment (FIN clear, or a continuation): neither
	// roomd nor Centrifugo sends them, and the reader does not reassemble.
	onFragment()
	onPing(payload []byte)
	onClose(code int, text string)
}

// wsReader reads one receiver's server-to-client frames for the epoll
// reader. Complete frames are handled straight from the read buffer; the
// bytes of a frame split across reads wait in pending, which exists only
// while a receiver has one (idle receivers hold no buffer).
type wsReader struct {
	pending []byte
}

// readOnce performs one read with read and handles every complete frame.
// The read goes into scratch, after a copy of the pending bytes, unless the
// pending frame is longer than scratch: then into pending, grown to hold
// the whole frame. It returns nil while the stream goes on (also when the
// read returned EAGAIN or EINTR), and otherwise why it ended: a close frame
// (*websocket.CloseError), EOF (errWSEOF), the read's error, or a protocol
// error.
func (w *wsReader) readOnce(scratch []byte, read func([]byte) (int, error), h frameHandler) error {
	dst, inPending := scratch[:0], false
	if len(w.pending) > 0 {
		_, _, need, err := parseFrame(w.pending)
		if err != nil {
			return err // cannot happen: feed parsed it already
		}
		if need > len(scratch) {
			if need > cap(w.pending) {
				grown := make([]byte, len(w.pending), need)
				copy(grown, w.pending)
				w.pending = grown
			}
			dst, inPending = w.pending, true
		} else {
			dst = scratch[:copy(scratch, w.pending)]
		}
	}
	n, err := read(dst[len(dst):cap(dst)])
	if n > 0 {
		return w.feed(dst[:len(dst)+n], inPending, h)
	}
	switch {
	case err == nil:
		return errWSEOF
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return nil // level-triggered: reported again while data is left
	}
	return err
}

// feed handles every complete frame in data and keeps the rest, the start
// of a frame, in pending; data is pending's own buffer when inPending. It
// returns why the stream ended, or nil.
func (w *wsReader) feed(data []byte, inPending bool, h frameHandler) error {
	for len(data) > 0 {
		fr, n, need, err := parseFrame(data)
		if err != nil {
			return err
		}
		if n == 0 {
			if inPending { // move the partial frame to the front
				w.pending = w.pending[:copy(w.pending[:cap(w.pending)], data)]
				return nil
			}
			size := max(need, len(data)+wsMaxHeader, wsPendingMin)
			if cap(w.pending) < size {
				w.pending = make([]byte, 0, size)
			}
			w.pending = append(w.pending[:0], data...)
			return nil
		}
		data = data[n:]
		switch {
		case fr.op == opClose:
			code, text := websocket.CloseNoStatusReceived, ""
			if len(fr.payload) >= 2 {
				code, text = int(binary.BigEndian.Uint16(fr.payload)), string(fr.payload[2:])
			}
			h.onClose(code, text)
			w.pending = nil
			return &websocket.CloseError{Code: code, Text: text}
		case fr.op == opPing:
			h.onPing(fr.payload)
		case fr.op == opPong:
		case !fr.fin || fr.op == opContinuation:
			h.onFragment()
		default:
			h.onData(fr.payload)
		}
	}
	// Every frame was whole.
	if cap(w.pending) > wsKeepPending {
		w.pending = nil
	} else {
		w.pending = w.pending[:0]
	}
	return nil
}

// handshakeConn wraps a client's TCP connection during gorilla's dial (and
// Centrifugo's connect and subscribe) so that gorilla's buffered reader
// never holds a byte gorilla has not consumed: it reads from the socket
// into its own buffer and hands gorilla the HTTP response head, which
// net/http consumes entirely (a 101 has no body), and after the head's
// blank line one byte a call, which gorilla's frame reads never read past.
// What it read from the socket beyond that is left here, and detach
// returns it: the epoll reader parses it before anything it reads itself.
type handshakeConn struct {
	net.Conn
	buf      []byte // read from the socket; buf[off:] not handed out yet
	off      int
	head     headEnd
	detached bool
}

// headEnd finds the blank line that ends an HTTP head, as net/textproto
// reads lines: "\r\n" or "\n" after a line feed.
type headEnd struct {
	done      bool
	lineStart bool // the last byte was '\n' (or nothing was seen)
	cr        bool // a '\r' at the start of a line
}

// scan returns how many bytes of b belong to the head.
func (h *headEnd) scan(b []byte) int {
	for i, c := range b {
		switch {
		case c == '\n' && (h.lineStart || h.cr):
			h.done = true
			return i + 1
		case c == '\n':
			h.lineStart, h.cr = true, false
		case c == '\r' && h.lineStart:
			h.lineStart, h.cr = false, true
		default:
			h.lineStart, h.cr = false, false
		}
	}
	return len(b)
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.off == len(c.buf) {
		if c.detached {
			return c.Conn.Read(p)
		}
		if c.buf == nil {
			c.buf = make([]byte, 1024)
		}
		n, err := c.Conn.Read(c.buf[:cap(c.buf)])
		c.buf, c.off = c.buf[:n], 0
		if n == 0 {
			return 0, err
		}
	}
	avail := c.buf[c.off:]
	k := 1
	switch {
	case c.detached:
		k = len(avail)
	case !c.head.done:
		k = c.head.scan(avail)
	}
	k = copy(p, avail[:k])
	c.off += k
	return k, nil
}

// detach ends the handshake: it returns what was read past what gorilla
// consumed, and from then on reads go straight to the socket.
func (c *handshakeConn) detach() []byte {
	c.detached = true
	rest := c.buf[c.off:]
	var out []byte
	if len(rest) > 0 {
		out = append([]byte(nil), rest...)
	}
	c.buf, c.off = nil, 0
	return out
}
