package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"time"

	roomdv1 "roomd/gen/roomd/v1"
)

var kickClient = &command{
	path:    "kick client",
	args:    "<client-id>",
	minArgs: 1, maxArgs: 1,
	summary: "close one connection (4000); -ban also bans its user from its room",
	help: `The client id is one clients list shows. With -ban, the client's user is
banned from the client's room, and the user's other connections there are
closed too; a client without a user id cannot be banned (FailedPrecondition,
and nothing is kicked).`,
	setup: func(fs *flag.FlagSet) action {
		var k kickFlags
		k.register(fs)
		return func(ctx context.Context, s *session, args []string) error {
			banSeconds, err := k.banSeconds()
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: args[0], Reason: k.reason, BanSeconds: banSeconds})
			if err != nil {
				return err
			}
			if s.json() {
				return s.printJSON(resp)
			}
			cl, of := resp.GetClient(), ""
			if cl.GetUserId() != "" {
				of = " of user " + cell(cl.GetUserId())
			}
			fmt.Fprintf(s.stdout, "kicked client %s%s from room %s\n", args[0], of, cl.GetRoomId())
			return s.printBan(resp.Ban)
		}
	},
}

var kickUser = &command{
	path:    "kick user",
	args:    "<user-id>",
	minArgs: 1, maxArgs: 1,
	summary: "close a user's connections (4000); -ban also bans the user",
	help: `Without -room, the user's connections in every room are closed with 4000,
and -ban bans the user from every room. A client protocol connection kicked
from one room only gets a notice and stays in its other rooms.`,
	setup: func(fs *flag.FlagSet) action {
		var k kickFlags
		k.register(fs)
		room := fs.String("room", "", "only the user's connections in this room, and the ban only from it")
		return func(ctx context.Context, s *session, args []string) error {
			banSeconds, err := k.banSeconds()
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.KickUser(ctx, &roomdv1.KickUserRequest{UserId: args[0], RoomId: *room, Reason: k.reason, BanSeconds: banSeconds})
			if err != nil {
				return err
			}
			s.warnPartial(resp.Partial, resp.UnreachableNodes)
			if s.json() {
				return s.printJSON(resp)
			}
			where := "every room"
			if *room != "" {
				where = "room " + *room
			}
			fmt.Fprintf(s.stdout, "kicked %s of user %s from %s\n", plural(resp.KickedCount, "connection", "connections"), args[0], where)
			return s.printBan(resp.Ban)
		}
	},
}

// kickFlags are what both kicks take.
type kickFlags struct {
	reason string
	ban    time.Duration
}

func (k *kickFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.reason, "reason", "", "the close reason the client sees (at most 123 bytes), and the ban's")
	fs.DurationVar(&k.ban, "ban", 0, "also ban the user for this long, in whole seconds (1h, 30m; at most a year)")
}

// banSeconds is -ban as the API takes it. roomd bounds the length (a
// year); only what the field cannot carry is refused here.
func (k *kickFlags) banSeconds() (uint32, error) {
	switch {
	case k.ban < 0:
		return 0, usageErrorf("-ban must not be negative, got %v", k.ban)
	case k.ban%time.Second != 0:
		return 0, usageErrorf("-ban %v: bans last whole seconds", k.ban)
	case k.ban/time.Second > math.MaxUint32:
		return 0, usageErrorf("-ban %v is too long; bans last at most a year", k.ban)
	}
	return uint32(k.ban / time.Second), nil
}

// printBan is the line under a kick that banned.
func (s *session) printBan(b *roomdv1.Ban) error {
	if b == nil {
		return nil
	}
	_, err := fmt.Fprintf(s.stdout, "banned user %s from %s until %s: %s\n", b.UserId, banRoom(b.RoomId), timeCell(b.ExpireTime), cell(b.Reason))
	return err
}

// banRoom names where a ban keeps its user out.
func banRoom(roomID string) string {
	if roomID == "" {
		return "every room"
	}
	return "room " + roomID
}
