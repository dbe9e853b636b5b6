package wsedge

import (
	"encoding/binary"
	"unicode/utf8"

	"roomd/rooms"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// appendFrame appends one unmasked, final server frame.
func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
	dst = append(dst, 0x80|opcode)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// Wire formats, the index of a message's cached frame.
const (
	rawFormat      = 0 // /ws/{room}: the payload as it was sent
	protocolFormat = 1 // /ws with roomd.v1.json
)

// messageFrame encodes a room message for raw relay; it is the encoder
// passed to rooms.Message.Frame, so it runs once per message, not once per
// member. Client protocol data (JSON) arrives as text.
func messageFrame(m *rooms.Message) any {
	opcode := byte(opText)
	if m.Kind == rooms.Binary {
		opcode = opBinary
	}
	return appendFrame(make([]byte, 0, len(m.Payload)+10), opcode, m.Payload)
}

// closeFrame encodes a close frame; the reason is cut to fit a control frame
// without splitting a UTF-8 sequence. Code 1005 (no status) sends no body.
func closeFrame(code rooms.CloseCode, reason string) []byte {
	if code == rooms.CloseNoStatus {
		return appendFrame(nil, opClose, nil)
	}
	reason = truncateUTF8(reason, rooms.MaxCloseReasonBytes)
	body := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return appendFrame(nil, opClose, append(body, reason...))
}

func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
