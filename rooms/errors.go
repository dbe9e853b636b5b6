package rooms

import (
	"errors"
	"fmt"
)

// Kinds of error the Hub returns. Match them with errors.Is. What each is on
// the wire (gRPC code, HTTP status, client protocol code) is the table in
// package rooms/errcode, which fails its test until a new kind has a row.
// The errors themselves carry a message that names the room or client,
// written for a person.
var (
	ErrInvalidRoomID   = errors.New("invalid room id")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrRoomExists      = errors.New("room already exists")
	ErrRoomNotFound    = errors.New("room not found")
	ErrClientNotFound  = errors.New("client not found")
	ErrRoomFull        = errors.New("room is full")
	ErrBanned          = errors.New("user is banned")
	ErrBanNotFound     = errors.New("ban not found")
	ErrNoUserID        = errors.New("no user id")
	ErrLimit           = errors.New("server limit reached")
	ErrRoomQuota       = fmt.Errorf("%w: room quota", ErrLimit) // a RoomQuota is spent; also an ErrLimit
	ErrGap             = errors.New("history gap")              // the client must rejoin without resuming
	ErrNotJoined       = errors.New("not a member of the room")
	ErrAlreadyJoined   = errors.New("already a member of the room")
	ErrNoPresence      = errors.New("room has presence off") // its members are not listed
	ErrClosed          = errors.New("server is shutting down")
	ErrUnavailable     = errors.New("cluster bus unavailable") // a broker could not reach the other nodes; try again later
)

// hubError is an error of one of the kinds above with its own message.
type hubError struct {
	kind error
	msg  string
}

func (e *hubError) Error() string { return e.msg }
func (e *hubError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &hubError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
