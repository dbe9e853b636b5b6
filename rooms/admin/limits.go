package admin

import (
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"roomd/rooms"
)

// Limits on admin input. A request over one is INVALID_ARGUMENT with a
// message naming the field, before anything is changed. The limits the
// WebSocket edge shares (reason and id bytes, the default payload size) are
// rooms.MaxCloseReasonBytes, rooms.MaxIDBytes and rooms.DefaultMaxMessageBytes.
const (
	MaxMetadataEntries    = 32
	MaxMetadataKeyBytes   = 64
	MaxMetadataValueBytes = 1024
	// MaxBanSeconds is rooms.MaxBanDuration in seconds: one year.
	MaxBanSeconds = uint32(rooms.MaxBanDuration / time.Second)
)

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// firstError returns the first of the checks' errors, or nil.
func firstError(checks ...error) error {
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkID bounds a user or client id; field names it.
func checkID(field, id string) error {
	if len(id) > rooms.MaxIDBytes {
		return invalid("%s is %d bytes; the limit is %d", field, len(id), rooms.MaxIDBytes)
	}
	return nil
}

func checkReason(reason string) error {
	if len(reason) > rooms.MaxCloseReasonBytes {
		return invalid("reason is %d bytes; the limit is %d, what fits in a WebSocket close frame", len(reason), rooms.MaxCloseReasonBytes)
	}
	return nil
}

func checkBanSeconds(secs uint32) error {
	if secs > MaxBanSeconds {
		return invalid("ban_seconds %d is over the limit of %d (one year)", secs, MaxBanSeconds)
	}
	return nil
}

// checkMetadata bounds a room's labels. Keys are checked in order, so that
// the same request always gets the same message.
func checkMetadata(md map[string]string) error {
	if len(md) > MaxMetadataEntries {
		return invalid("metadata has %d entries; the limit is %d", len(md), MaxMetadataEntries)
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" || len(k) > MaxMetadataKeyBytes {
			return invalid("metadata key %q is %d bytes; keys are 1 to %d bytes", truncate(k, MaxMetadataKeyBytes), len(k), MaxMetadataKeyBytes)
		}
		if v := md[k]; len(v) > MaxMetadataValueBytes {
			return invalid("metadata value of %q is %d bytes; the limit is %d", k, len(v), MaxMetadataValueBytes)
		}
	}
	return nil
}

// checkPayload bounds a message from the admin API as the WebSocket edge
// bounds one from a client.
func (s *Service) checkPayload(m *rooms.Message) error {
	if n := len(m.Payload); n > s.maxPayloadBytes {
		field := "text"
		if m.Kind == rooms.Binary {
			field = "binary"
		}
		return invalid("%s is %d bytes; the server's maximum message size is %d", field, n, s.maxPayloadBytes)
	}
	return nil
}

// truncate shortens s for an error message without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
