package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"roomd/rooms"
	"roomd/rooms/cluster"
	"roomd/wsedge"
)

// The collector reports each source's numbers under the documented names
// and labels, and the cluster's only in cluster mode.
func TestMetricsReportTheSources(t *testing.T) {
	ready := true
	src := Sources{
		Hub: func() rooms.Stats {
			return rooms.Stats{Rooms: 3, Clients: 7, Bans: 2, PublishedByClients: 11, PublishedByAdmin: 5, Deliveries: 40, QueuedBytes: 1024}
		},
		Edge: func() wsedge.Stats {
			return wsedge.Stats{OpenRaw: 4, OpenSession: 3, Opened: 9, Closed: map[rooms.CloseCode]uint64{4000: 1, 4002: 1}, Refused: map[int]uint64{429: 6}}
		},
		Ready:   func() bool { return ready },
		Version: "v1.2.3",
	}
	m := New(src)
	m.ObserveWriteLatency(3 * time.Millisecond)
	want := `
# HELP roomd_connections WebSocket connections open now, by protocol (raw relay or the v1 client protocol).
# TYPE roomd_connections gauge
roomd_connections{protocol="raw"} 4
roomd_connections{protocol="v1"} 3
# HELP roomd_connections_closed_total WebSocket connections finished, by the close code they ended with (1006: dropped without a close frame).
# TYPE roomd_connections_closed_total counter
roomd_connections_closed_total{code="4000"} 1
roomd_connections_closed_total{code="4002"} 1
# HELP roomd_deliveries_total Room messages handed to members' send queues on this node.
# TYPE roomd_deliveries_total counter
roomd_deliveries_total 40
# HELP roomd_messages_published_total Room messages accepted for publishing on this node, by who sent them.
# TYPE roomd_messages_published_total counter
roomd_messages_published_total{source="admin"} 5
roomd_messages_published_total{source="client"} 11
# HELP roomd_ready 1 while this node takes new connections (what /readyz answers), 0 while draining or cut off from NATS.
# TYPE roomd_ready gauge
roomd_ready 1
# HELP roomd_rooms Rooms on this node.
# TYPE roomd_rooms gauge
roomd_rooms 3
# HELP roomd_send_queue_bytes Bytes waiting in every member's send queue now (payload plus 64 bytes per message, as -max-queue-bytes counts).
# TYPE roomd_send_queue_bytes gauge
roomd_send_queue_bytes 1024
# HELP roomd_upgrade_refusals_total Upgrade requests turned away, by HTTP status; refusals sent after the upgrade, so that a page can read them, count under their close code (4401, 4403, 1008).
# TYPE roomd_upgrade_refusals_total counter
roomd_upgrade_refusals_total{status="429"} 6
`
	names := []string{"roomd_connections", "roomd_connections_closed_total", "roomd_deliveries_total", "roomd_messages_published_total",
		"roomd_ready", "roomd_rooms", "roomd_send_queue_bytes", "roomd_upgrade_refusals_total"}
	if err := testutil.GatherAndCompare(m.registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(m.registry, "roomd_nats_connected", "roomd_cluster_nodes"); err != nil || n != 0 {
		t.Errorf("a node without NATS reports %d cluster metrics (%v)", n, err)
	}
	if n, _ := testutil.GatherAndCount(m.registry, "roomd_publish_to_write_seconds"); n != 1 {
		t.Errorf("publish to write histogram: %d series", n)
	}
	ready = false
	if err := testutil.GatherAndCompare(m.registry, strings.NewReader("# HELP roomd_ready 1 while this node takes new connections (what /readyz answers), 0 while draining or cut off from NATS.\n# TYPE roomd_ready gauge\nroomd_ready 0\n"), "roomd_ready"); err != nil {
		t.Errorf("not ready: %v", err)
	}

	src.Cluster = func() cluster.Stats {
		return cluster.Stats{Connected: true, Reconnects: 2, InMsgs: 10, OutMsgs: 20, InBytes: 100, OutBytes: 200, Nodes: 3, Recovered: 4, PresenceDropped: 1}
	}
	cm := New(src)
	for name, want := range map[string]int{"roomd_nats_connected": 1, "roomd_nats_messages_total": 2, "roomd_cluster_nodes": 1, "roomd_cluster_recovered_messages_total": 1} {
		if n, err := testutil.GatherAndCount(cm.registry, name); err != nil || n != want {
			t.Errorf("cluster mode: %s has %d series, want %d (%v)", name, n, want, err)
		}
	}
}
