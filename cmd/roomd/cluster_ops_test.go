package main

import (
	"net/http"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"roomd/rooms/cluster/natstest"
)

// In cluster mode a node is not ready while NATS is unreachable (it could
// not publish), and ready again once NATS is back; its metrics say so and
// count the cluster's traffic.
func TestClusterReadinessFollowsNATS(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startNodes(t, nats.URL(), "a", "b")
	a := nodes[0]
	onA := joinedSession(t, a, "ann", "r")
	joinedSession(t, nodes[1], "bob", "r")
	publishText(onA, "r", "hello")

	m := a.scrape(t)
	if m["roomd_nats_connected"] != 1 || m["roomd_cluster_nodes"] != 2 || m["roomd_ready"] != 1 {
		t.Errorf("connected node: nats_connected %v, cluster_nodes %v, ready %v", m["roomd_nats_connected"], m["roomd_cluster_nodes"], m["roomd_ready"])
	}
	if m["roomd_nats_messages_total{direction=out}"] == 0 || m["roomd_nats_bytes_total{direction=in}"] == 0 {
		t.Errorf("no NATS traffic counted: %v out, %v bytes in", m["roomd_nats_messages_total{direction=out}"], m["roomd_nats_bytes_total{direction=in}"])
	}

	nats.Stop()
	eventually(t, "/readyz 503 with NATS down", func() bool {
		code, body := get(t, a.adminURL+"/readyz")
		return code == http.StatusServiceUnavailable && body == "NATS unreachable\n"
	})
	if code, _ := get(t, "http://"+a.public+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("public /readyz with NATS down: %d", code)
	}
	eventually(t, "gRPC health NOT_SERVING with NATS down", func() bool {
		return healthStatus(t, a.grpcAddr, "") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if m := a.scrape(t); m["roomd_nats_connected"] != 0 || m["roomd_ready"] != 0 {
		t.Errorf("NATS down: nats_connected %v, ready %v", m["roomd_nats_connected"], m["roomd_ready"])
	}
	if code, _ := get(t, a.adminURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with NATS down: %d, want 200 (alive)", code)
	}

	nats.Start()
	eventually(t, "/readyz 200 with NATS back", func() bool {
		code, _ := get(t, a.adminURL+"/readyz")
		return code == http.StatusOK
	})
	eventually(t, "gRPC health SERVING with NATS back", func() bool {
		return healthStatus(t, a.grpcAddr, "roomd.v1.RoomService") == healthpb.HealthCheckResponse_SERVING
	})
	if m := a.scrape(t); m["roomd_nats_reconnects_total"] < 1 {
		t.Errorf("roomd_nats_reconnects_total %v after NATS came back", m["roomd_nats_reconnects_total"])
	}
}
