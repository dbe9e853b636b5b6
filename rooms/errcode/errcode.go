// Package errcode is the one table of what each kind of rooms error is on
// roomd's wires: the admin API's gRPC code (which the REST gateway turns into
// an HTTP status), the HTTP status of a refused WebSocket upgrade, and the
// client protocol's error code. The admin service (statusOf) and the
// WebSocket edge (joinStatus, failWith) read it; a new sentinel in package
// rooms gets its row here, and the test fails until it has one.
//
// It lives apart from rooms because rooms imports no transport (gRPC, the
// client protocol); it is a table of values only, with no state.
package errcode

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"

	"roomd/rooms"
	"roomd/wsedge/protocol"
)

// Codes is how one kind of error shows on each wire.
type Codes struct {
	GRPC     codes.Code // admin API
	HTTP     int        // a refused WebSocket upgrade
	Protocol string     // a client protocol error frame
}

// Internal is what an error of no kind in the table gets: a bug.
var Internal = Codes{codes.Internal, http.StatusInternalServerError, protocol.CodeInternal}

type row struct {
	kind error
	Codes
}

// table is matched in order with errors.Is and the first row wins, so a
// kind that wraps another (ErrRoomQuota is an ErrLimit) comes before it.
// Rows that say Internal on a wire are kinds that wire never meets today.
var table = []row{
	{rooms.ErrInvalidRoomID, Codes{codes.InvalidArgument, http.StatusBadRequest, protocol.CodeInvalidRoom}},
	{rooms.ErrInvalidArgument, Codes{codes.InvalidArgument, http.StatusBadRequest, protocol.CodeInternal}},
	{rooms.ErrRoomExists, Codes{codes.AlreadyExists, http.StatusInternalServerError, protocol.CodeInternal}},
	{rooms.ErrRoomNotFound, Codes{codes.NotFound, http.StatusNotFound, protocol.CodeNotFound}},
	{rooms.ErrClientNotFound, Codes{codes.NotFound, http.StatusInternalServerError, protocol.CodeInternal}},
	{rooms.ErrRoomFull, Codes{codes.ResourceExhausted, http.StatusTooManyRequests, protocol.CodeFull}},
	// A banned raw join is refused after the upgrade with close 4403
	// (wsedge), not with this HTTP status.
	{rooms.ErrBanned, Codes{codes.PermissionDenied, http.StatusInternalServerError, protocol.CodeForbidden}},
	{rooms.ErrBanNotFound, Codes{codes.NotFound, http.StatusInternalServerError, protocol.CodeInternal}},
	{rooms.ErrNoUserID, Codes{codes.FailedPrecondition, http.StatusInternalServerError, protocol.CodeInternal}},
	{rooms.ErrRoomQuota, Codes{codes.ResourceExhausted, http.StatusTooManyRequests, protocol.CodeRoomQuota}},
	{rooms.ErrLimit, Codes{codes.ResourceExhausted, http.StatusServiceUnavailable, protocol.CodeUnavailable}},
	// The admin API meets a gap only in WatchRoom's since_seq.
	{rooms.ErrGap, Codes{codes.OutOfRange, http.StatusInternalServerError, protocol.CodeGap}},
	{rooms.ErrNotJoined, Codes{codes.Internal, http.StatusInternalServerError, protocol.CodeNotJoined}},
	{rooms.ErrAlreadyJoined, Codes{codes.Internal, http.StatusInternalServerError, protocol.CodeAlreadyJoined}},
	{rooms.ErrNoPresence, Codes{codes.Internal, http.StatusInternalServerError, protocol.CodePresenceOff}},
	{rooms.ErrClosed, Codes{codes.Unavailable, http.StatusServiceUnavailable, protocol.CodeUnavailable}},
	{rooms.ErrUnavailable, Codes{codes.Unavailable, http.StatusServiceUnavailable, protocol.CodeUnavailable}},
	{rooms.ErrWatcherTooSlow, Codes{codes.ResourceExhausted, http.StatusInternalServerError, protocol.CodeInternal}},
	// A call's context ending reaches the admin API through Hub calls that
	// wait (WatchRoom).
	{context.Canceled, Codes{codes.Canceled, http.StatusInternalServerError, protocol.CodeInternal}},
	{context.DeadlineExceeded, Codes{codes.DeadlineExceeded, http.StatusInternalServerError, protocol.CodeInternal}},
}

// Of returns the codes of err's kind, or Internal when it has none.
func Of(err error) Codes {
	for _, r := range table {
		if errors.Is(err, r.kind) {
			return r.Codes
		}
	}
	return Internal
}
