package main

import (
	"context"
	"flag"

	roomdv1 "roomd/gen/roomd/v1"
)

var clientsList = &command{
	path:    "clients list",
	args:    "<room>",
	minArgs: 1, maxArgs: 1,
	summary: "list the clients connected to a room, by client id",
	help: `A client id is what kick client and send take. Every client is listed,
following roomd's pages, unless -limit says fewer.`,
	setup: func(fs *flag.FlagSet) action {
		var pages pageFlags
		pages.register(fs, "clients")
		return func(ctx context.Context, s *session, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var answer partialAnswer
			clients, next, err := collect(pages, func(size int32, token string) ([]*roomdv1.Client, string, error) {
				resp, err := c.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: args[0], PageSize: size, PageToken: token})
				if err != nil {
					return nil, "", err
				}
				answer.add(resp.Partial, resp.UnreachableNodes)
				return resp.Clients, resp.NextPageToken, nil
			})
			if err != nil {
				return err
			}
			s.warnPartial(answer.partial, answer.unreachable)
			if s.json() {
				return s.printJSON(&roomdv1.ListClientsResponse{Clients: clients, NextPageToken: next, Partial: answer.partial, UnreachableNodes: answer.unreachable})
			}
			rows := make([][]string, len(clients))
			for i, cl := range clients {
				rows[i] = []string{cell(cl.ClientId), cell(cl.UserId), cell(cl.Node), cell(cl.RemoteAddr), timeCell(cl.ConnectTime)}
			}
			if err := writeTable(s.stdout, []string{"CLIENT", "USER", "NODE", "ADDRESS", "CONNECTED"}, rows); err != nil {
				return err
			}
			s.tellMore("clients", next)
			return nil
		}
	},
}
