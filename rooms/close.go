package rooms

// CloseCode is the WebSocket close code a connection ends with. The same
// numbers are used on the wire, in WatchRoom events and in logs.
type CloseCode uint16

// Close codes roomd sends. The 4xxx codes are roomd's own (RFC 6455 reserves
// 4000-4999 for applications); the README documents all of them.
const (
	CloseNormal          CloseCode = 1000 // the peer or the server ended the session normally
	CloseGoingAway       CloseCode = 1001 // the server is shutting down
	CloseProtocolError   CloseCode = 1002 // the peer broke RFC 6455
	CloseAbnormal        CloseCode = 1006 // never sent: the connection dropped without a close frame
	CloseInvalidPayload  CloseCode = 1007 // a text message that is not valid UTF-8
	ClosePolicyViolation CloseCode = 1008 // the peer broke a server rule
	CloseMessageTooBig   CloseCode = 1009 // a message over the read limit
	CloseKicked          CloseCode = 4000 // kicked through the admin API; the reason is the admin's
	CloseRoomDeleted     CloseCode = 4001 // the room was deleted
	CloseSlowConsumer    CloseCode = 4002 // the member could not keep up with the room
)

// String names the code for logs.
func (c CloseCode) String() string {
	switch c {
	case CloseNormal:
		return "normal"
	case CloseGoingAway:
		return "going away"
	case CloseProtocolError:
		return "protocol error"
	case CloseAbnormal:
		return "abnormal"
	case CloseInvalidPayload:
		return "invalid payload"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseMessageTooBig:
		return "message too big"
	case CloseKicked:
		return "kicked"
	case CloseRoomDeleted:
		return "room deleted"
	case CloseSlowConsumer:
		return "slow consumer"
	}
	return "other"
}
