package wsedge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"roomd/rooms"
	"roomd/wsedge/protocol"
)

// What a refused upgrade (HTTP status) and a refused request (protocol error
// code) say for each Hub error, wrapped as the Hub returns it.
func TestHubErrorsOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		err  error
		http int
		code string
	}{
		{rooms.ErrInvalidRoomID, http.StatusBadRequest, protocol.CodeInvalidRoom},
		{rooms.ErrInvalidArgument, http.StatusBadRequest, protocol.CodeInternal},
		{rooms.ErrRoomExists, http.StatusInternalServerError, protocol.CodeInternal},
		{rooms.ErrRoomNotFound, http.StatusNotFound, protocol.CodeNotFound},
		{rooms.ErrClientNotFound, http.StatusInternalServerError, protocol.CodeInternal},
		{rooms.ErrRoomFull, http.StatusTooManyRequests, protocol.CodeFull},
		{rooms.ErrBanned, http.StatusInternalServerError, protocol.CodeForbidden},
		{rooms.ErrBanNotFound, http.StatusInternalServerError, protocol.CodeInternal},
		{rooms.ErrNoUserID, http.StatusInternalServerError, protocol.CodeInternal},
		{rooms.ErrLimit, http.StatusServiceUnavailable, protocol.CodeUnavailable},
		{rooms.ErrRoomQuota, http.StatusTooManyRequests, protocol.CodeRoomQuota},
		{rooms.ErrGap, http.StatusInternalServerError, protocol.CodeGap},
		{rooms.ErrNotJoined, http.StatusInternalServerError, protocol.CodeNotJoined},
		{rooms.ErrAlreadyJoined, http.StatusInternalServerError, protocol.CodeAlreadyJoined},
		{rooms.ErrNoPresence, http.StatusInternalServerError, protocol.CodePresenceOff},
		{rooms.ErrClosed, http.StatusServiceUnavailable, protocol.CodeUnavailable},
		{rooms.ErrWatcherTooSlow, http.StatusInternalServerError, protocol.CodeInternal},
		{context.Canceled, http.StatusInternalServerError, protocol.CodeInternal},
		{context.DeadlineExceeded, http.StatusInternalServerError, protocol.CodeInternal},
		{errors.New("something else"), http.StatusInternalServerError, protocol.CodeInternal},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("room %q: %w", "r", tc.err)} {
			if got := joinStatus(err); got != tc.http {
				t.Errorf("joinStatus(%v) = %d, want %d", err, got, tc.http)
			}
			if got := protocolCode(err); got != tc.code {
				t.Errorf("protocolCode(%v) = %q, want %q", err, got, tc.code)
			}
		}
	}
}
