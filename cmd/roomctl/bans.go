package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	roomdv1 "roomd/gen/roomd/v1"
)

var bansList = &command{
	path:    "bans list",
	summary: "list the bans in force, by user id then room",
	help: `ROOM * is a ban from every room. Bans are made by kick client and kick
user with -ban; expired ones are gone. Every ban is listed, following
roomd's pages, unless -limit says fewer.`,
	setup: func(fs *flag.FlagSet) action {
		var pages pageFlags
		pages.register(fs, "bans")
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			bans, next, err := collect(pages, func(size int32, token string) ([]*roomdv1.Ban, string, error) {
				resp, err := c.ListBans(ctx, &roomdv1.ListBansRequest{PageSize: size, PageToken: token})
				if err != nil {
					return nil, "", err
				}
				return resp.Bans, resp.NextPageToken, nil
			})
			if err != nil {
				return err
			}
			if s.json() {
				return s.printJSON(&roomdv1.ListBansResponse{Bans: bans, NextPageToken: next})
			}
			now := time.Now()
			rows := make([][]string, len(bans))
			for i, b := range bans {
				room := b.RoomId
				if room == "" {
					room = "*"
				}
				rows[i] = []string{cell(b.UserId), room, untilCell(b.ExpireTime, now), cell(b.Reason)}
			}
			if err := writeTable(s.stdout, []string{"USER", "ROOM", "EXPIRES", "REASON"}, rows); err != nil {
				return err
			}
			s.tellMore("bans", next)
			return nil
		}
	},
}

var bansLift = &command{
	path:    "bans lift",
	args:    "<user-id>",
	minArgs: 1, maxArgs: 1,
	summary: "lift a user's bans, or one of them",
	help: `Lifts the user's bans from single rooms and from every room, or with -room
only the ban from that room (-room '*': the ban from every room), and prints
what was lifted. Nothing to lift is NotFound (exit code 3).`,
	setup: func(fs *flag.FlagSet) action {
		room := fs.String("room", "", "only the ban from this room; '*' for the ban from every room")
		return func(ctx context.Context, s *session, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.Unban(ctx, &roomdv1.UnbanRequest{UserId: args[0], RoomId: *room})
			if err != nil {
				return err
			}
			if s.json() {
				return s.printJSON(resp)
			}
			for _, b := range resp.Bans {
				if _, err := fmt.Fprintf(s.stdout, "lifted the ban of user %s from %s (until %s: %s)\n",
					cell(b.UserId), banRoom(b.RoomId), timeCell(b.ExpireTime), cell(b.Reason)); err != nil {
					return err
				}
			}
			return nil
		}
	},
}
