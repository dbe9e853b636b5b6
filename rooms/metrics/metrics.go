// Package metrics is roomd's Prometheus endpoint. It reads the counters the
// Hub, the WebSocket edge and the cluster node keep anyway (Stats), once
// per scrape, so that nothing on the per-delivery path takes a lock or
// allocates for metrics; the one histogram, publish to write, is fed by a
// sample of write rounds (wsedge.Config.WriteLatency).
//
// No metric has a per-room or per-user label: their number would be
// unbounded. Per-room numbers are what the admin API's GetRoom is for.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"

	"roomd/rooms"
	"roomd/rooms/cluster"
	"roomd/wsedge"
)

// Sources are what the metrics read at each scrape. Hub and Edge are
// required; Cluster is nil on a node without NATS, and Ready nil means
// always ready.
type Sources struct {
	Hub     func() rooms.Stats
	Edge    func() wsedge.Stats
	Cluster func() cluster.Stats
	Ready   func() bool
	Version string
}

// Metrics is one node's registry.
type Metrics struct {
	registry *prometheus.Registry
	latency  prometheus.Histogram
	refused  *prometheus.CounterVec
	// GRPC counts admin calls by method and code (grpc_server_handled_total
	// and its siblings); give its interceptors to the gRPC server and call
	// its InitializeMetrics once the services are registered.
	GRPC *grpcprom.ServerMetrics
}

// New returns the metrics of one node: roomd's own, the gRPC server's, and
// the Go runtime's and the process's.
func New(src Sources) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "roomd_publish_to_write_seconds",
			Help: "How long a room message waited from its publication until a member's writer took it for the socket; one write round in 64 of each connection is sampled.",
			// From 100 µs to 10 s: a healthy node is in the first few
			// buckets, a slow consumer near -write-timeout in the last.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 13),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomd_admin_refusals_total",
			Help: "Admin calls turned away before they started, by API (grpc, rest) and code: Unauthenticated (no or a wrong token), ResourceExhausted (-admin-max-calls).",
		}, []string{"api", "code"}),
		GRPC: grpcprom.NewServerMetrics(),
	}
	m.registry.MustRegister(
		&collector{src: src},
		m.latency,
		m.refused,
		m.GRPC,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveWriteLatency is wsedge.Config.WriteLatency.
func (m *Metrics) ObserveWriteLatency(d time.Duration) { m.latency.Observe(d.Seconds()) }

// AdminRefused is admin.ServerConfig.Refused (api "grpc") and
// admin.GatewayConfig.Refused (api "rest").
func (m *Metrics) AdminRefused(api string) func(codes.Code) {
	return func(code codes.Code) { m.refused.WithLabelValues(api, code.String()).Inc() }
}

// Handler serves the metrics in Prometheus's text format (or OpenMetrics,
// when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// desc is shorthand for a metric without constant labels.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	connectionsDesc = desc("roomd_connections", "WebSocket connections open now, by protocol (raw relay or the v1 client protocol).", "protocol")
	openedDesc      = desc("roomd_connections_opened_total", "WebSocket connections upgraded.")
	closedDesc      = desc("roomd_connections_closed_total", "WebSocket connections finished, by the close code they ended with (1006: dropped without a close frame).", "code")
	refusalsDesc    = desc("roomd_upgrade_refusals_total", "Upgrade requests turned away, by HTTP status; refusals sent after the upgrade, so that a page can read them, count under their close code (4401, 4403, 1008).", "status")
	roomsDesc       = desc("roomd_rooms", "Rooms on this node.")
	publishedDesc   = desc("roomd_messages_published_total", "Room messages accepted for publishing on this node, by who sent them.", "source")
	deliveriesDesc  = desc("roomd_deliveries_total", "Room messages handed to members' send queues on this node.")
	queuedDesc      = desc("roomd_send_queue_bytes", "Bytes waiting in every member's send queue now (payload plus 64 bytes per message, as -max-queue-bytes counts).")
	bansDesc        = desc("roomd_bans", "Bans in force.")
	readyDesc       = desc("roomd_ready", "1 while this node takes new connections (what /readyz answers), 0 while draining or cut off from NATS.")
	buildDesc       = desc("roomd_build_info", "Always 1; its labels say which roomd this is.", "version", "go_version")

	natsConnectedDesc  = desc("roomd_nats_connected", "1 while the NATS connection is up (cluster mode).")
	natsReconnectsDesc = desc("roomd_nats_reconnects_total", "Times the NATS connection came back after a loss.")
	natsMessagesDesc   = desc("roomd_nats_messages_total", "Messages over the NATS connection, by direction.", "direction")
	natsBytesDesc      = desc("roomd_nats_bytes_total", "Bytes over the NATS connection, by direction.", "direction")
	nodesDesc          = desc("roomd_cluster_nodes", "Nodes this node hears, itself included.")
	recoveredDesc      = desc("roomd_cluster_recovered_messages_total", "Room messages this node missed live and read back from the stream.")
	presenceDropDesc   = desc("roomd_cluster_presence_dropped_total", "Joins and leaves never announced to other nodes because NATS was away too long.")
)

// collector turns the sources' Stats into metrics at scrape time.
type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connectionsDesc, openedDesc, closedDesc, refusalsDesc, roomsDesc, publishedDesc,
		deliveriesDesc, queuedDesc, bansDesc, readyDesc, buildDesc} {
		ch <- d
	}
	if c.src.Cluster != nil {
		for _, d := range []*prometheus.Desc{natsConnectedDesc, natsReconnectsDesc, natsMessagesDesc, natsBytesDesc,
			nodesDesc, recoveredDesc, presenceDropDesc} {
			ch <- d
		}
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	edge := c.src.Edge()
	gauge(connectionsDesc, float64(edge.OpenRaw), "raw")
	gauge(connectionsDesc, float64(edge.OpenSession), "v1")
	counter(openedDesc, edge.Opened)
	for code, n := range edge.Closed {
		counter(closedDesc, n, strconv.Itoa(int(code)))
	}
	for status, n := range edge.Refused {
		counter(refusalsDesc, n, strconv.Itoa(status))
	}

	hub := c.src.Hub()
	gauge(roomsDesc, float64(hub.Rooms))
	counter(publishedDesc, hub.PublishedByClients, "client")
	counter(publishedDesc, hub.PublishedByAdmin, "admin")
	counter(deliveriesDesc, hub.Deliveries)
	gauge(queuedDesc, float64(hub.QueuedBytes))
	gauge(bansDesc, float64(hub.Bans))

	ready := 1.0
	if c.src.Ready != nil && !c.src.Ready() {
		ready = 0
	}
	gauge(readyDesc, ready)
	gauge(buildDesc, 1, c.src.Version, runtime.Version())

	if c.src.Cluster == nil {
		return
	}
	cl := c.src.Cluster()
	connected := 0.0
	if cl.Connected {
		connected = 1
	}
	gauge(natsConnectedDesc, connected)
	counter(natsReconnectsDesc, cl.Reconnects)
	counter(natsMessagesDesc, cl.InMsgs, "in")
	counter(natsMessagesDesc, cl.OutMsgs, "out")
	counter(natsBytesDesc, cl.InBytes, "in")
	counter(natsBytesDesc, cl.OutBytes, "out")
	gauge(nodesDesc, float64(cl.Nodes))
	counter(recoveredDesc, cl.Recovered)
	counter(presenceDropDesc, cl.PresenceDropped)
}
