package wsedge

import (
	"context"
	"log/slog"
	"time"

	"roomd/rooms"
)

// roomIDs are the rooms the connection is in as it ends: a raw member's
// one room, or the rooms a client protocol connection has joined and not
// left (a kick or a deleted room has taken it out of those already).
func (c *conn) roomIDs() []string {
	if c.session == nil {
		return []string{c.roomID}
	}
	return c.client.RoomIDs()
}

// logClose writes the one line a finished connection gets: who it was,
// where from, how it ended, how long it lasted and how much it carried;
// never what it carried. Closes that point at a client misbehaving or
// falling behind (a flood, a rule broken, a slow consumer, a server
// failure) are warnings; the rest are info, which -log-level warn turns
// off on a busy node.
func (c *conn) logClose(code rooms.CloseCode, reason string, roomIDs []string) {
	level := slog.LevelInfo
	switch code {
	case rooms.ClosePolicyViolation, rooms.CloseSlowConsumer, rooms.CloseInternalError, rooms.CloseMessageTooBig:
		level = slog.LevelWarn
	}
	log := c.edge.log
	if !log.Enabled(context.Background(), level) {
		return
	}
	info := c.client.Info()
	protocol := "raw"
	if c.session != nil {
		protocol = "v1"
	}
	log.LogAttrs(context.Background(), level, "connection closed",
		slog.String("client", info.ClientID),
		slog.String("user", info.UserID),
		slog.Any("rooms", roomIDs),
		slog.String("remote", info.RemoteAddr),
		slog.String("protocol", protocol),
		slog.Int("code", int(code)),
		slog.String("reason", reason),
		slog.String("duration", time.Since(c.opened).Round(time.Millisecond).String()),
		slog.Uint64("messages_in", c.messagesIn),
		slog.Uint64("messages_out", c.messagesOut.Load()))
}
