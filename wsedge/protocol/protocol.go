// Package protocol is roomd's client protocol v1: JSON text frames over a
// WebSocket that negotiated the subprotocol "roomd.v1.json". It decodes what
// clients send and encodes what the server sends; it knows nothing of
// sockets or rooms. PROTOCOL.md beside this file is the specification.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Subprotocol is the Sec-WebSocket-Protocol value that selects v1.
const Subprotocol = "roomd.v1.json"

// MaxRequestIDLength bounds the client-chosen id echoed in acks and errors.
const MaxRequestIDLength = 64

// Ops a client may send.
const (
	OpJoin    = "join"
	OpLeave   = "leave"
	OpPublish = "publish"
	OpMembers = "members"
)

// MaxMemberPage is the most members a join ack or a members page lists,
// and what a members request without a limit gets: acks stay a few KB
// whatever the size of the room.
const MaxMemberPage = 100

// Error codes, stable across versions: clients switch on them.
const (
	CodeBadRequest    = "bad_request"    // not JSON, unknown op, missing or malformed field
	CodeInvalidRoom   = "invalid_room"   // room id not 1-128 of letters, digits, _ - . :, or "." or ".."
	CodeNotFound      = "not_found"      // the room does not exist and auto-create is off
	CodeFull          = "full"           // the room is at its member limit
	CodeForbidden     = "forbidden"      // not in the token's rooms, banned, or a read-only token publishing
	CodeNotJoined     = "not_joined"     // leave, publish or members for a room this connection has not joined
	CodePresenceOff   = "presence_off"   // members of a room whose presence is off: only its count is known
	CodeAlreadyJoined = "already_joined" // join of a room already joined
	CodeTooManyRooms  = "too_many_rooms" // over the rooms-per-connection limit
	CodeRoomQuota     = "room_quota"     // the join would make a room, and its address or user has made its limit of rooms that still exist
	CodeRateLimited   = "rate_limited"   // over the message rate
	CodeTooBig        = "too_big"        // data over the message size limit
	CodeGap           = "gap"            // since cannot be honoured: history no longer reaches back, or the epoch changed
	CodeUnavailable   = "unavailable"    // the server is shutting down or at a limit, or cannot reach the cluster bus
	CodeInternal      = "internal"       // a bug; the message says more
)

// Request is one client frame.
type Request struct {
	Op   string `json:"op"`
	ID   string `json:"id"`
	Room string `json:"room"`
	// Since asks join to replay everything after this sequence of Epoch.
	Since *uint64 `json:"since,omitempty"`
	Epoch string  `json:"epoch,omitempty"`
	// Data is publish's payload: any JSON value.
	Data json.RawMessage `json:"data,omitempty"`
	// After and Limit page members: up to Limit (1 to MaxMemberPage;
	// MaxMemberPage when 0 or absent) members whose client ids sort after
	// After.
	After string `json:"after,omitempty"`
	Limit *int   `json:"limit,omitempty"`
}

// ErrBadRequest is the kind of every decoding failure.
var ErrBadRequest = errors.New("bad request")

type decodeError string

func (e decodeError) Error() string        { return string(e) }
func (e decodeError) Is(target error) bool { return target == ErrBadRequest }

func badRequest(format string, args ...any) error {
	return decodeError(fmt.Sprintf(format, args...))
}

// PageLimit is how many members a members request asks for.
func (r Request) PageLimit() int {
	if r.Limit == nil || *r.Limit == 0 {
		return MaxMemberPage
	}
	return *r.Limit
}

// Decode parses one client frame. The request's id is returned even when
// another field is wrong, so the error can carry it.
func Decode(frame []byte) (Request, error) {
	var r Request
	if !utf8.Valid(frame) {
		return r, badRequest("frame is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var probe struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(frame, &probe) == nil && len(probe.ID) <= MaxRequestIDLength {
			r.ID = probe.ID
		} else {
			r.ID = ""
		}
		return r, badRequest("frame is not a request object: %v", err)
	}
	if dec.More() {
		return r, badRequest("frame holds more than one JSON value")
	}
	if len(r.ID) > MaxRequestIDLength {
		r.ID = ""
		return r, badRequest("id longer than %d bytes", MaxRequestIDLength)
	}
	paging := r.After != "" || r.Limit != nil
	switch r.Op {
	case OpJoin:
		if r.Data != nil || paging {
			return r, badRequest("join takes no data, after or limit")
		}
	case OpLeave:
		if r.Data != nil || r.Since != nil || r.Epoch != "" || paging {
			return r, badRequest("leave takes only op, id and room")
		}
	case OpPublish:
		if r.Data == nil {
			return r, badRequest("publish needs data")
		}
		if r.Since != nil || r.Epoch != "" || paging {
			return r, badRequest("publish takes no since, epoch, after or limit")
		}
	case OpMembers:
		if r.Data != nil || r.Since != nil || r.Epoch != "" {
			return r, badRequest("members takes only op, id, room, after and limit")
		}
		if r.Limit != nil && (*r.Limit < 0 || *r.Limit > MaxMemberPage) {
			return r, badRequest("limit %d is not between 1 and %d", *r.Limit, MaxMemberPage)
		}
	case "":
		return r, badRequest("missing op")
	default:
		return r, badRequest("unknown op %q", r.Op)
	}
	if r.Room == "" {
		return r, badRequest("missing room")
	}
	return r, nil
}

// Sender names who a message came from: a member, or the server (the admin
// API).
type Sender struct {
	ClientID string `json:"clientId,omitempty"`
	UserID   string `json:"userId,omitempty"`
	Server   bool   `json:"server,omitempty"`
}

// Member is one client in a room, as join's ack lists them.
type Member struct {
	ClientID string `json:"clientId"`
	UserID   string `json:"userId"`
}

// Server frames. Each has a "type".
type (
	Welcome struct {
		Type     string `json:"type"` // "welcome"
		ClientID string `json:"clientId"`
		UserID   string `json:"userId"`
		Protocol string `json:"protocol"`
	}
	// Ack answers a leave (ID and room only) or a publish (with the
	// message's sequence).
	Ack struct {
		Type string `json:"type"` // "ack"
		ID   string `json:"id"`
		Room string `json:"room,omitempty"`
		Seq  uint64 `json:"seq,omitempty"`
	}
	// JoinAck answers a join with every field, zeros included: the room's
	// current sequence (0 before its first message), its epoch, whether it
	// has presence, its member count and, with presence, its first members
	// by client id (Next, the last of them, when more follow), and how many
	// messages it is about to replay.
	JoinAck struct {
		Type        string   `json:"type"` // "ack"
		ID          string   `json:"id"`
		Room        string   `json:"room"`
		Seq         uint64   `json:"seq"`
		Epoch       string   `json:"epoch"`
		Presence    bool     `json:"presence"`
		MemberCount int      `json:"memberCount"`
		Members     []Member `json:"members,omitempty"` // never empty with presence: the joiner is a member
		Next        string   `json:"next,omitempty"`
		Replayed    int      `json:"replayed"`
	}
	// MembersAck answers a members request: the room's member count and a
	// page of members in client id order; Next, the last of them, when
	// more follow.
	MembersAck struct {
		Type        string   `json:"type"` // "ack"
		ID          string   `json:"id"`
		Room        string   `json:"room"`
		MemberCount int      `json:"memberCount"`
		Members     []Member `json:"members"`
		Next        string   `json:"next,omitempty"`
	}
	Error struct {
		Type    string `json:"type"` // "error"
		ID      string `json:"id,omitempty"`
		Room    string `json:"room,omitempty"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	// Message carries a room message (Seq > 0) or one sent to this client
	// alone (Room empty). Data is the JSON a member published, or a JSON
	// string for text; Binary (base64) replaces Data for binary messages.
	Message struct {
		Type   string          `json:"type"` // "message"
		Room   string          `json:"room,omitempty"`
		Seq    uint64          `json:"seq,omitempty"`
		From   Sender          `json:"from"`
		Data   json.RawMessage `json:"data,omitempty"`
		Binary []byte          `json:"binary,omitempty"`
		Time   time.Time       `json:"time"`
	}
	Presence struct {
		Type     string `json:"type"` // "presence"
		Room     string `json:"room"`
		Event    string `json:"event"` // "joined" or "left"
		ClientID string `json:"clientId"`
		UserID   string `json:"userId"`
	}
	// Notice tells a client why it is about to lose a room or its
	// connection: "kicked" or "room_deleted".
	Notice struct {
		Type   string `json:"type"`
		Room   string `json:"room,omitempty"`
		Reason string `json:"reason,omitempty"`
	}
)

// Encode marshals a server frame; server frames always marshal.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("protocol: cannot encode %T: %v", v, err))
	}
	return b
}
