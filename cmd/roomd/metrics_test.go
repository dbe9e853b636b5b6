package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/admin"
)

// scrape reads /metrics into "name{label=value,...}" -> value (histograms:
// their _count and _sum), with labels sorted by name.
func (s *testServer) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(s.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	out := make(map[string]float64)
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name + labelString(m.GetLabel())
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"+labelString(m.GetLabel())] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labelString(m.GetLabel())] = m.GetHistogram().GetSampleSum()
			default:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func labelString(labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// moved checks that each metric moved from before to after by exactly the
// given amount (a metric missing counts as 0).
func moved(t *testing.T, step string, before, after map[string]float64, want map[string]float64) {
	t.Helper()
	for name, delta := range want {
		if got := after[name] - before[name]; got != delta {
			t.Errorf("%s: %s moved by %v, want %v", step, name, got, delta)
		}
	}
}

// A scripted sequence, a scrape after each step: every counter moves by
// exactly what happened.
func TestMetricsCountWhatHappened(t *testing.T) {
	s := startServer(t, "-max-queue-bytes", "65536")
	ctx := context.Background()
	m0 := s.scrape(t)
	for _, name := range []string{"roomd_connections{protocol=raw}", "roomd_connections{protocol=v1}", "roomd_rooms", "roomd_bans",
		"roomd_send_queue_bytes", "roomd_ready", "go_goroutines", "process_open_fds"} {
		if _, ok := m0[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if m0["roomd_build_info{go_version="+runtime.Version()+",version="+admin.BuildVersion()+"}"] != 1 {
		t.Errorf("no roomd_build_info with this version")
	}
	if m0["roomd_ready"] != 1 {
		t.Errorf("roomd_ready %v on a serving node", m0["roomd_ready"])
	}

	// Connect: two raw members and one client protocol connection.
	a := s.dial(t, "m", "user=ann")
	b := s.dial(t, "m", "user=bob")
	c := dialSession(t, s, "user=cat")
	eventually(t, "both joined", func() bool { return s.clientCount(t, "m") == 2 })
	// A connection counts as open once the server has attached its socket,
	// just after the 101 the client has seen.
	raw := "roomd_connections{protocol=raw}"
	eventually(t, "both raw connections counted", func() bool { return s.scrape(t)[raw] == m0[raw]+2 })
	m1 := s.scrape(t)
	moved(t, "connect", m0, m1, map[string]float64{
		"roomd_connections{protocol=raw}": 2, "roomd_connections{protocol=v1}": 1,
		"roomd_connections_opened_total": 3, "roomd_rooms": 1,
	})

	// Publish: one from a member (echo: both members get it), one from the
	// admin API, one from the client protocol into its own room.
	if err := a.WriteMessage(1, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	read(t, a)
	read(t, b)
	resp, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "m", Payload: &roomdv1.PublishRequest_Text{Text: "from admin"}})
	if err != nil || resp.GetRecipientCount() != 2 {
		t.Fatalf("admin publish: %v, %d recipients", err, resp.GetRecipientCount())
	}
	read(t, a)
	read(t, b)
	c.mustAck(join("c-room"))
	c.mustAck(publish("c-room", "x"))
	// A raw member's publish is counted just after its fan-out, which the
	// echoes above may overtake.
	eventually(t, "the deliveries counted", func() bool {
		return s.scrape(t)["roomd_deliveries_total"] >= m1["roomd_deliveries_total"]+5
	})
	m2 := s.scrape(t)
	moved(t, "publish", m1, m2, map[string]float64{
		"roomd_messages_published_total{source=client}": 2, "roomd_messages_published_total{source=admin}": 1,
		"roomd_deliveries_total": 5, "roomd_rooms": 1,
		`grpc_server_handled_total{grpc_code=OK,grpc_method=Publish,grpc_service=roomd.v1.RoomService,grpc_type=unary}`: 1,
	})

	// Kick with a ban: 4000, one connection fewer, one ban in force.
	if _, err := s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: clientIDOf(t, s, "m", "ann"), Reason: "bye", BanSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	expectClose(t, a, 4000, "bye")
	eventually(t, "the kicked client gone", func() bool { return s.clientCount(t, "m") == 1 })
	// Counted as closed once the server has finished the connection, after
	// the close handshake the client has just answered.
	eventually(t, "the kicked connection counted closed", func() bool {
		return s.scrape(t)["roomd_connections_closed_total{code=4000}"] == m2["roomd_connections_closed_total{code=4000}"]+1
	})
	m3 := s.scrape(t)
	moved(t, "kick", m2, m3, map[string]float64{
		"roomd_connections{protocol=raw}": -1, "roomd_connections_closed_total{code=4000}": 1, "roomd_bans": 1,
	})

	// Slow consumer: a member that never reads is closed with 4002 once
	// its socket and queue are full. Every recipient count the publishes
	// report is a delivery.
	slow := s.dial(t, "slow", "user=sid")
	eventually(t, "the slow member joined", func() bool { return s.clientCount(t, "slow") == 1 })
	eventually(t, "the slow member counted", func() bool { return s.scrape(t)[raw] == m3[raw]+1 })
	m4 := s.scrape(t)
	filler := strings.Repeat("s", 32<<10)
	delivered, published := 0.0, 0.0
	for i := 0; i < 4096 && s.clientCount(t, "slow") == 1; i++ {
		resp, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "slow", Payload: &roomdv1.PublishRequest_Text{Text: filler}})
		if err != nil {
			break // the room went with its only member
		}
		published++
		delivered += float64(resp.GetRecipientCount())
	}
	eventually(t, "the slow member dropped", func() bool { return s.scrape(t)["roomd_connections_closed_total{code=4002}"] == 1 })
	m5 := s.scrape(t)
	moved(t, "slow consumer", m4, m5, map[string]float64{
		"roomd_connections{protocol=raw}": -1, "roomd_connections_closed_total{code=4002}": 1,
		"roomd_messages_published_total{source=admin}": published, "roomd_deliveries_total": delivered,
	})
	slow.Close()

	// Refusals: a plain GET of a WebSocket path (426), a bad room id
	// (400), a page from an origin that may not connect (4403, after the
	// upgrade so that the page can read it).
	get, err := http.Get("http://" + s.public + "/ws/lobby")
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if _, resp, err := s.tryDial("%20bad", ""); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad room id: %v %v", err, resp)
	}
	m6 := s.scrape(t)
	moved(t, "refusals", m5, m6, map[string]float64{
		"roomd_upgrade_refusals_total{status=426}": 1, "roomd_upgrade_refusals_total{status=400}": 1,
		"roomd_connections_opened_total": 0,
	})

	// Publish to write: one write round in 64 is timed.
	for i := range 130 {
		if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "m", Payload: &roomdv1.PublishRequest_Text{Text: fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
		read(t, b)
	}
	m7 := s.scrape(t)
	if n := m7["roomd_publish_to_write_seconds_count"] - m6["roomd_publish_to_write_seconds_count"]; n < 2 {
		t.Errorf("130 messages, each written in its own round, gave %v latency samples, want at least 2", n)
	}
	if sum := m7["roomd_publish_to_write_seconds_sum"]; sum <= 0 || sum > 10 {
		t.Errorf("latency sum %v s", sum)
	}
	if q := m7["roomd_send_queue_bytes"]; q != 0 {
		t.Errorf("roomd_send_queue_bytes %v with every member caught up", q)
	}
}

func clientIDOf(t *testing.T, s *testServer, room, user string) string {
	t.Helper()
	resp, err := s.admin.ListClients(context.Background(), &roomdv1.ListClientsRequest{RoomId: room})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.GetClients() {
		if c.GetUserId() == user {
			return c.GetClientId()
		}
	}
	t.Fatalf("no client of %s in %s", user, room)
	return ""
}

// Admin calls refused before they start (no or a wrong token) reach no
// handler and no gRPC interceptor; they are counted by API and code, and
// /metrics itself needs no token.
func TestMetricsCountAdminRefusals(t *testing.T) {
	s := startServer(t, "-admin-token", "right-token")
	s.token = "wrong-token"
	if _, err := s.admin.ListRooms(context.Background(), &roomdv1.ListRoomsRequest{}); err == nil {
		t.Fatal("a wrong token was accepted")
	}
	s.token = ""
	if code := s.rest(t, "GET", "/v1/rooms", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("REST without a token: HTTP %d", code)
	}
	m := s.scrape(t)
	for name, want := range map[string]float64{
		"roomd_admin_refusals_total{api=grpc,code=Unauthenticated}": 1,
		"roomd_admin_refusals_total{api=rest,code=Unauthenticated}": 1,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}
