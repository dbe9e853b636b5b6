package admin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"roomd/rooms"
)

// The gRPC code (and so, through the gateway, the HTTP status) each Hub
// error gets, wrapped as the Hub returns it; the message is the error's.
func TestStatusOfHubErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{rooms.ErrInvalidRoomID, codes.InvalidArgument},
		{rooms.ErrInvalidArgument, codes.InvalidArgument},
		{rooms.ErrRoomExists, codes.AlreadyExists},
		{rooms.ErrRoomNotFound, codes.NotFound},
		{rooms.ErrClientNotFound, codes.NotFound},
		{rooms.ErrRoomFull, codes.ResourceExhausted},
		{rooms.ErrBanned, codes.PermissionDenied},
		{rooms.ErrBanNotFound, codes.NotFound},
		{rooms.ErrNoUserID, codes.FailedPrecondition},
		{rooms.ErrLimit, codes.ResourceExhausted},
		{rooms.ErrRoomQuota, codes.ResourceExhausted},
		{rooms.ErrGap, codes.OutOfRange},
		{rooms.ErrNotJoined, codes.Internal},
		{rooms.ErrAlreadyJoined, codes.Internal},
		{rooms.ErrNoPresence, codes.Internal},
		{rooms.ErrClosed, codes.Unavailable},
		{rooms.ErrWatcherTooSlow, codes.ResourceExhausted},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("something else"), codes.Internal},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("room %q: %w", "r", tc.err)} {
			st, _ := status.FromError(statusOf(err))
			if st.Code() != tc.code || st.Message() != err.Error() {
				t.Errorf("statusOf(%v) = %v %q, want %v %q", err, st.Code(), st.Message(), tc.code, err.Error())
			}
		}
	}
}
