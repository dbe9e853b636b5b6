package wsedge

import (
	"encoding/binary"
	"fmt"
	"net"
	"unicode/utf8"

	"roomd/rooms"
)

// readBufferSize is the reader's own buffer: small, since most client
// messages are small and an idle connection should cost little.
const readBufferSize = 512

// payloadStep is the most a message's buffer grows by before its bytes
// arrive: enough for most messages in one allocation and one read, little
// for a header that announces 64 KiB and sends nothing more.
const payloadStep = 4 << 10

// frameReader reads a client's frames (RFC 6455) straight from the socket
// with a small buffer of its own. It replaces gorilla's reader so that an
// idle connection blocks in a short call chain (its goroutine keeps the
// smallest stack) and so that every frame the server sends, protocol
// errors included, goes through the connection's one writer.
type frameReader struct {
	sock net.Conn
	buf  [readBufferSize]byte
	r, w int // buf[r:w] is read but not consumed

	// unread is what is left of a frame whose payload was refused as too
	// big, for the caller to skip.
	unread int64

	// The message being assembled across fragments. timed: it was not all
	// here when it began, and the socket's read deadline is when it must
	// be whole (controlHandler.messageBegun).
	inMessage bool
	timed     bool
	opcode    byte
	payload   []byte

	// controls is the peer's budget of pings and pongs (conn.controlFrame).
	// It is the connection's, kept here because this allocation has room
	// to spare and conn's has none.
	controls tokenBucket
}

// protocolError ends a connection whose peer broke the protocol or a limit;
// code is the close code to send.
type protocolError struct {
	code   rooms.CloseCode
	reason string
	// flood: the peer sends faster than it may, so it is not read any
	// more, not even for its close reply.
	flood bool
}

func (e *protocolError) Error() string { return e.reason }

func violation(code rooms.CloseCode, format string, args ...any) error {
	return &protocolError{code: code, reason: fmt.Sprintf(format, args...)}
}

// peerClosed is how a read ends when the peer sent a close frame.
type peerClosed struct {
	code   rooms.CloseCode
	reason string
}

func (e *peerClosed) Error() string { return fmt.Sprintf("peer closed with %d %s", e.code, e.reason) }

// controlHandler takes the control frames found between data frames.
type controlHandler interface {
	// controlFrame counts a ping or pong against the peer's budget; an
	// error ends the connection.
	controlFrame() error
	onPing(data []byte)
	onPong()
	onPeerClose(code rooms.CloseCode, reason string)
	// messageBegun bounds the time a message that is not all here yet may
	// take, and reports whether it did (not when closing).
	messageBegun() bool
}

// fill makes at least n bytes (n <= readBufferSize) available in buf.
func (f *frameReader) fill(n int) error {
	if f.w-f.r >= n {
		return nil
	}
	if f.r > 0 {
		f.w = copy(f.buf[:], f.buf[f.r:f.w])
		f.r = 0
	}
	for f.w < n {
		m, err := f.sock.Read(f.buf[f.w:])
		f.w += m
		if err != nil && f.w < n {
			return err
		}
	}
	return nil
}

// readPayload appends the frame's next n payload bytes to f.payload,
// reading straight into it. f.payload grows with the bytes that arrive: by
// payloadStep or by doubling, whichever is more, and never by more than
// most (the rest of a final frame, or what the size limit leaves a message
// whose end is unknown). A header announcing 64 KiB costs 4 KiB until the
// bytes come, a stalled message holds at most twice what it sent (or 4
// KiB), and one in a single frame ends with no spare room.
func (f *frameReader) readPayload(n, most int64) error {
	for n > 0 {
		if len(f.payload) == cap(f.payload) {
			grow := max(len(f.payload), payloadStep)
			if int64(grow) > most {
				grow = int(most)
			}
			grown := make([]byte, len(f.payload), len(f.payload)+grow)
			copy(grown, f.payload)
			f.payload = grown
		}
		dst := f.payload[len(f.payload):cap(f.payload)]
		if int64(len(dst)) > n {
			dst = dst[:n]
		}
		var got int
		if f.r < f.w {
			got = copy(dst, f.buf[f.r:f.w])
			f.r += got
		} else {
			m, err := f.sock.Read(dst)
			if m == 0 && err != nil {
				return err
			}
			got = m
		}
		f.payload = f.payload[:len(f.payload)+got]
		n -= int64(got)
		most -= int64(got)
	}
	return nil
}

// skip discards n bytes.
func (f *frameReader) skip(n int64) error {
	for n > 0 {
		if f.r == f.w {
			if err := f.fill(1); err != nil {
				return err
			}
		}
		step := min(n, int64(f.w-f.r))
		f.r += int(step)
		n -= step
	}
	return nil
}

type frameHeader struct {
	fin    bool
	opcode byte
	length int64
	mask   [4]byte
}

func (f *frameReader) header() (h frameHeader, err error) {
	if err := f.fill(2); err != nil {
		return h, err
	}
	b0, b1 := f.buf[f.r], f.buf[f.r+1]
	f.r += 2
	h.fin = b0&0x80 != 0
	h.opcode = b0 & 0x0f
	if b0&0x70 != 0 {
		return h, violation(rooms.CloseProtocolError, "reserved bits set (no extension was negotiated)")
	}
	if b1&0x80 == 0 {
		return h, violation(rooms.CloseProtocolError, "client frames must be masked")
	}
	switch h.length = int64(b1 & 0x7f); h.length {
	case 126:
		if err := f.fill(2); err != nil {
			return h, err
		}
		h.length = int64(binary.BigEndian.Uint16(f.buf[f.r:]))
		f.r += 2
	case 127:
		if err := f.fill(8); err != nil {
			return h, err
		}
		n := binary.BigEndian.Uint64(f.buf[f.r:])
		f.r += 8
		if n>>63 != 0 {
			return h, violation(rooms.CloseProtocolError, "frame length with its most significant bit set")
		}
		h.length = int64(n)
	}
	if err := f.fill(4); err != nil {
		return h, err
	}
	copy(h.mask[:], f.buf[f.r:f.r+4])
	f.r += 4
	return h, nil
}

func unmask(data []byte, key [4]byte) {
	for i := range data {
		data[i] ^= key[i&3]
	}
}

// next returns the next complete data message, handing control frames to
// ctl as they come. A message over limit is a protocolError with 1009,
// raised before its payload is read. With discard, payloads are skipped and
// an empty message is returned (a connection that is closing only waits for
// the peer's close frame).
func (f *frameReader) next(limit int64, discard bool, ctl controlHandler) (byte, []byte, error) {
	for {
		h, err := f.header()
		if err != nil {
			return 0, nil, err
		}
		switch h.opcode {
		case opClose, opPing, opPong:
			if err := f.control(h, ctl); err != nil {
				return 0, nil, err
			}
			continue
		case opText, opBinary:
			if f.inMessage {
				return 0, nil, violation(rooms.CloseProtocolError, "a new message began before the last one finished")
			}
			f.inMessage, f.opcode, f.payload = true, h.opcode, nil
			if !h.fin || h.length > int64(f.w-f.r) {
				f.timed = ctl.messageBegun()
			}
		case 0x0:
			if !f.inMessage {
				return 0, nil, violation(rooms.CloseProtocolError, "continuation frame without a message to continue")
			}
		default:
			return 0, nil, violation(rooms.CloseProtocolError, "unknown opcode %d", h.opcode)
		}
		if discard {
			if err := f.skip(h.length); err != nil {
				return 0, nil, err
			}
		} else {
			if int64(len(f.payload))+h.length > limit {
				f.unread, f.payload = h.length, nil
				return 0, nil, violation(rooms.CloseMessageTooBig, "message over the %d-byte limit", limit)
			}
			start, most := len(f.payload), h.length
			if !h.fin {
				most = limit - int64(start)
			}
			if err := f.readPayload(h.length, most); err != nil {
				return 0, nil, err
			}
			unmask(f.payload[start:], h.mask)
		}
		if h.fin {
			payload := f.payload
			f.inMessage, f.timed, f.payload = false, false, nil
			return f.opcode, payload, nil
		}
	}
}

// control reads a control frame and acts on it.
func (f *frameReader) control(h frameHeader, ctl controlHandler) error {
	if !h.fin {
		return violation(rooms.CloseProtocolError, "fragmented control frame")
	}
	if h.length > 125 {
		return violation(rooms.CloseProtocolError, "control frame over 125 bytes")
	}
	// The frame buffer holds any control frame whole, so the body is read
	// there: no allocation, however many pings come.
	if err := f.fill(int(h.length)); err != nil {
		return err
	}
	body := f.buf[f.r : f.r+int(h.length)]
	f.r += int(h.length)
	unmask(body, h.mask)
	switch h.opcode {
	case opPing:
		if err := ctl.controlFrame(); err != nil {
			return err
		}
		ctl.onPing(body)
	case opPong:
		if err := ctl.controlFrame(); err != nil {
			return err
		}
		ctl.onPong()
	case opClose:
		code, reason := rooms.CloseNoStatus, ""
		switch {
		case len(body) == 1:
			return violation(rooms.CloseProtocolError, "close frame with a one-byte body")
		case len(body) >= 2:
			code = rooms.CloseCode(binary.BigEndian.Uint16(body))
			if !validReceivedCloseCode(code) {
				return violation(rooms.CloseProtocolError, "close code %d may not be sent", code)
			}
			if !utf8.Valid(body[2:]) {
				return violation(rooms.CloseInvalidPayload, "close reason is not valid UTF-8")
			}
			reason = string(body[2:])
		}
		ctl.onPeerClose(code, reason)
		return &peerClosed{code: code, reason: reason}
	}
	return nil
}

// validReceivedCloseCode follows RFC 6455 section 7.4 and the IANA
// registry: 1004-1006 and 1015 are never sent on the wire.
func validReceivedCloseCode(code rooms.CloseCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
