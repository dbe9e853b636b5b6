package rooms

// Limits that the WebSocket edge and the admin API must agree on. Each is
// defined here once, since both import rooms, so that one side cannot
// change without the other.
const (
	// MaxCloseReasonBytes is what is left of a WebSocket control frame's
	// 125 bytes of payload after the 2-byte close code: the edge cuts a
	// close reason to it, and the admin API refuses a kick reason over it
	// so that the reason arrives whole.
	MaxCloseReasonBytes = 123
	// MaxIDBytes bounds user and client ids: ?user= and a token's sub at
	// the edge, and every user or client id the admin API takes, so that
	// any user the edge lets in can be kicked and unbanned by id.
	MaxIDBytes = 128
	// DefaultMaxMessageBytes is the largest message when none is
	// configured: from a client at the edge, and as a Publish or
	// SendToClient payload in the admin API.
	DefaultMaxMessageBytes = 64 << 10
)
