package main

import (
	"context"
	"flag"

	roomdv1 "roomd/gen/roomd/v1"
)

var nodesCmd = &command{
	path:    "nodes",
	summary: "list the nodes serving the rooms (one roomd: itself)",
	help: `NAME is what the node's client ids start with. A cluster-wide answer that
lacks nodes which did not answer in time says so on stderr.`,
	setup: func(*flag.FlagSet) action {
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.ListNodes(ctx, &roomdv1.ListNodesRequest{})
			if err != nil {
				return err
			}
			s.warnPartial(resp.Partial, resp.UnreachableNodes)
			if s.json() {
				return s.printJSON(resp)
			}
			rows := make([][]string, len(resp.Nodes))
			for i, n := range resp.Nodes {
				rows[i] = []string{cell(n.Name), countCell(n.ClientCount), cell(n.PublicUrl), cell(n.AdminGrpcAddr), cell(n.AdminHttpAddr), timeCell(n.StartTime), timeCell(n.LastHeartbeat), cell(n.Version)}
			}
			return writeTable(s.stdout, []string{"NAME", "CLIENTS", "PUBLIC", "GRPC", "REST", "STARTED", "HEARTBEAT", "VERSION"}, rows)
		}
	},
}
