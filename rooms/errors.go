package rooms

import (
	"errors"
	"fmt"
)

// Kinds of error the Hub returns. Match them with errors.Is; the admin API
// maps each to a gRPC code. The errors themselves carry a message that names
// the room or client, written for a person.
var (
	ErrInvalidRoomID   = errors.New("invalid room id")              // InvalidArgument
	ErrInvalidArgument = errors.New("invalid argument")             // InvalidArgument
	ErrRoomExists      = errors.New("room already exists")          // AlreadyExists
	ErrRoomNotFound    = errors.New("room not found")               // NotFound
	ErrClientNotFound  = errors.New("client not found")             // NotFound
	ErrRoomFull        = errors.New("room is full")                 // ResourceExhausted
	ErrBanned          = errors.New("user is banned")               // PermissionDenied
	ErrBanNotFound     = errors.New("ban not found")                // NotFound
	ErrNoUserID        = errors.New("no user id")                   // FailedPrecondition
	ErrLimit           = errors.New("server limit reached")         // ResourceExhausted
	ErrRoomQuota       = fmt.Errorf("%w: room quota", ErrLimit)     // a RoomQuota is spent; also an ErrLimit
	ErrGap             = errors.New("history gap")                  // the client must rejoin without resuming
	ErrNotJoined       = errors.New("not a member of the room")     // FailedPrecondition
	ErrAlreadyJoined   = errors.New("already a member of the room") // AlreadyExists
	ErrNoPresence      = errors.New("room has presence off")        // FailedPrecondition: its members are not listed
	ErrClosed          = errors.New("server is shutting down")
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
