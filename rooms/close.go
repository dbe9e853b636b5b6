package rooms

// CloseCode is the WebSocket close code a connection ends with. The same
// numbers are used on the wire, in WatchRoom events and in logs.
type CloseCode uint16

// Close codes roomd sends or reports. The 4xxx codes are roomd's own (RFC
// 6455 reserves 4000-4999 for applications); the README documents all of
// them. Every one is named here and by String, so that no other package
// spells a close code as a number.
const (
	CloseNormal          CloseCode = 1000 // the peer or the server ended the session normally
	CloseGoingAway       CloseCode = 1001 // the server is shutting down
	CloseProtocolError   CloseCode = 1002 // the peer broke RFC 6455
	CloseNoStatus        CloseCode = 1005 // never sent: the peer's close frame carried no code
	CloseAbnormal        CloseCode = 1006 // never sent: the connection dropped without a close frame
	CloseInvalidPayload  CloseCode = 1007 // a text message that is not valid UTF-8
	ClosePolicyViolation CloseCode = 1008 // the peer broke a server rule
	CloseMessageTooBig   CloseCode = 1009 // a message over the read limit
	CloseInternalError   CloseCode = 1011 // the server failed while serving this connection
	CloseServiceRestart  CloseCode = 1012 // the cluster's message history restarted (its stream was lost): reconnect and join afresh
	CloseTryAgainLater   CloseCode = 1013 // the cluster bus is unreachable: a raw member's message could not be published
	CloseKicked          CloseCode = 4000 // kicked through the admin API; the reason is the admin's
	CloseRoomDeleted     CloseCode = 4001 // the room was deleted
	CloseSlowConsumer    CloseCode = 4002 // the member could not keep up with the room
	// CloseUnauthorized and CloseForbidden refuse a connection after the
	// upgrade: a browser cannot read the HTTP status of a failed upgrade,
	// but it can read a close code and reason.
	CloseUnauthorized CloseCode = 4401 // missing, malformed, expired or wrongly signed token
	CloseForbidden    CloseCode = 4403 // room not in the token, banned, or an origin that may not connect
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
	case CloseNoStatus:
		return "no status"
	case CloseAbnormal:
		return "abnormal"
	case CloseInvalidPayload:
		return "invalid payload"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseMessageTooBig:
		return "message too big"
	case CloseInternalError:
		return "internal error"
	case CloseServiceRestart:
		return "service restart"
	case CloseTryAgainLater:
		return "try again later"
	case CloseKicked:
		return "kicked"
	case CloseRoomDeleted:
		return "room deleted"
	case CloseSlowConsumer:
		return "slow consumer"
	case CloseUnauthorized:
		return "unauthorized"
	case CloseForbidden:
		return "forbidden"
	}
	return "other"
}

// LeaveCause says why a member left a room. It comes from what the server
// itself did or saw, never from the close code: a client may close with any
// code, 4000 included, and that is still the client closing.
type LeaveCause uint8

const (
	// CauseLeft: a session client left the room and stays connected.
	CauseLeft LeaveCause = iota + 1
	// CauseClosedByClient: the client sent a close frame first.
	CauseClosedByClient
	// CauseDropped: the connection was lost (no pong, no close frame) or
	// the server closed it for something the client did or could not do:
	// a protocol or policy violation, a slow consumer, an expired token, an
	// internal error.
	CauseDropped
	// CauseKicked: kicked (or banned) through the admin API.
	CauseKicked
	// CauseRoomDeleted: the room was deleted.
	CauseRoomDeleted
	// CauseShutdown: the server is shutting down.
	CauseShutdown
)

// String names the cause for logs.
func (c LeaveCause) String() string {
	switch c {
	case CauseLeft:
		return "left"
	case CauseClosedByClient:
		return "closed by client"
	case CauseDropped:
		return "dropped"
	case CauseKicked:
		return "kicked"
	case CauseRoomDeleted:
		return "room deleted"
	case CauseShutdown:
		return "shutdown"
	}
	return "unknown"
}
