package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"text/tabwriter"
	"time"
)

// report is what one run measured; its JSON field names are stable.
type report struct {
	Date    string         `json:"date"`
	Host    hostReport     `json:"host"`
	Config  configReport   `json:"config"`
	Setup   setupReport    `json:"setup"`
	Memory  memoryReport   `json:"memory"`
	Publish *publishReport `json:"publish,omitempty"`
	// Closes counts connections that ended before teardown, by close code
	// or error (4002 is a slow consumer; Centrifugo's is 3008).
	Closes map[string]int `json:"unexpected_closes,omitempty"`
	// Centrifugo is what only a Centrifugo target has.
	Centrifugo *centrifugoReport `json:"centrifugo,omitempty"`
}

// centrifugoReport counts, over the whole run, the WebSocket frames the
// clients read that held replies other than pings (Centrifugo batches
// replies, one per line, into a frame) and the server pings they answered.
type centrifugoReport struct {
	Frames        uint64 `json:"received_ws_frames"`
	PingsAnswered uint64 `json:"pings_answered"`
}

type hostReport struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
}

type configReport struct {
	Target string `json:"target"`
	URL    string `json:"url"` // -url as given: one base, or a comma-separated list
	// Nodes is how many -url bases the clients were spread over, and
	// AdminAddresses how many admin addresses the publishers were.
	Nodes          int     `json:"nodes"`
	AdminAddresses int     `json:"admin_addresses"`
	Via            string  `json:"via"`
	Conns          int     `json:"conns"`
	Rooms          int     `json:"rooms"`
	Publishers     int     `json:"publishers"`
	Rate           float64 `json:"rate_per_publisher"`
	Payload        int     `json:"payload_bytes"`
	Duration       string  `json:"duration"`
	Reader         string  `json:"reader"`
	Pollers        int     `json:"pollers,omitempty"`
	SourceAddrs    string  `json:"source_addrs,omitempty"`
	// With several processes sharing rooms: this one's number, the rooms'
	// prefix, whether another process created them, and when publishing
	// was to start.
	Process    int    `json:"process"`
	RoomPrefix string `json:"room_prefix"`
	NoCreate   bool   `json:"no_create,omitempty"`
	PublishAt  string `json:"publish_at,omitempty"`
	// ServerPID is the first -server-pid; ServerPIDs all of them when
	// there are several, whose RSS and CPU the report sums.
	ServerPID  int   `json:"server_pid,omitempty"`
	ServerPIDs []int `json:"server_pids,omitempty"`
}

type setupReport struct {
	Connected              int            `json:"connected"`
	Failed                 int            `json:"failed"`
	Errors                 map[string]int `json:"errors,omitempty"`
	Seconds                float64        `json:"seconds"`
	PerSecond              float64        `json:"per_second"`
	LoaderCPUSeconds       float64        `json:"loader_cpu_seconds"`
	ServerCPUSeconds       float64        `json:"server_cpu_seconds"`
	ServerCPUMicrosPerConn float64        `json:"server_cpu_us_per_conn"`
	ServerRSSBeforeKB      int64          `json:"server_rss_before_kib"`
	ServerRSSAfterKB       int64          `json:"server_rss_after_kib"`
	// CarriedBytes is what the handshakes read past their end and the
	// epoll reader parsed before reading the sockets itself (frames the
	// server sent right after the handshake; 0 with -reader goroutines,
	// whose gorilla readers keep such bytes in their own buffers).
	CarriedBytes uint64 `json:"handshake_carried_bytes,omitempty"`
	// ConnectedPerNode is how many clients connected to each -url base,
	// when there are several.
	ConnectedPerNode []int `json:"connected_per_node,omitempty"`
}

type rssPoint struct {
	Seconds float64 `json:"t"`
	KB      int64   `json:"kib"`
}

type memoryReport struct {
	Connections int     `json:"connections"`
	SettledKB   int64   `json:"server_rss_settled_kib"`
	LastKB      int64   `json:"server_rss_last_kib"`
	MinKB       int64   `json:"server_rss_min_kib"`
	PerConnKB   float64 `json:"server_rss_per_conn_kib"`
	// PerConnMinKB uses the lowest RSS seen while idle (after a GC and the
	// scavenger returned memory), not the last.
	PerConnMinKB float64    `json:"server_rss_per_conn_min_kib"`
	Timeline     []rssPoint `json:"timeline,omitempty"`
}

type publishReport struct {
	Published        uint64  `json:"published"`
	PublishErrors    uint64  `json:"publish_errors"`
	FirstError       string  `json:"first_error,omitempty"`
	PublishPerSecond float64 `json:"publishes_per_second"`
	// With a -rate, payloads carry the time each publish was due, and
	// these say how far behind schedule the publishers fell: the most a
	// publish started after it was due, and the publishes that were due
	// by the end of -duration but never sent. Both 0 with -rate 0.
	PublishLagMaxMs float64 `json:"publish_lag_max_ms"`
	DueUnsent       uint64  `json:"due_unsent"`
	// ServerRecipients is the sum of the recipient counts the server
	// returned; null when its publish does not return one (Centrifugo).
	ServerRecipients *uint64 `json:"server_recipients"`
	Expected         uint64  `json:"expected_deliveries"`
	// Received counts data frames; for Centrifugo, replies (publications
	// and anything unexpected, not pings), and Frames the WebSocket frames
	// that carried them during the window (batches of one or more).
	Received      uint64 `json:"received_frames"`
	Frames        uint64 `json:"received_ws_frames,omitempty"`
	Unique        uint64 `json:"deliveries"`
	Lost          uint64 `json:"lost"`
	Duplicates    uint64 `json:"duplicates"`
	Malformed     uint64 `json:"malformed"`
	DrainComplete bool   `json:"drain_complete"`
	Stalled       int    `json:"stalled"`
	// StalledDropped counts stalled members the server closed with its
	// slow-consumer code, StalledDropCode: 4002 for roomd, 3008 for
	// Centrifugo (the field name predates the Centrifugo target).
	StalledDropped             int            `json:"stalled_dropped_4002"`
	StalledDropCode            int            `json:"stalled_drop_code,omitempty"`
	StalledEnds                map[string]int `json:"stalled_ends,omitempty"`
	DrainSeconds               float64        `json:"drain_seconds"`
	PublishSeconds             float64        `json:"publish_seconds"`
	WindowSeconds              float64        `json:"window_seconds"`
	DeliveriesPerSec           float64        `json:"deliveries_per_second"`
	LatencySamples             uint64         `json:"latency_samples"`
	LatencyP50Ms               float64        `json:"latency_p50_ms"`
	LatencyP90Ms               float64        `json:"latency_p90_ms"`
	LatencyP99Ms               float64        `json:"latency_p99_ms"`
	LatencyP999Ms              float64        `json:"latency_p999_ms"`
	LatencyMaxMs               float64        `json:"latency_max_ms"`
	ServerCPUSeconds           float64        `json:"server_cpu_seconds"`
	ServerCPUPercent           float64        `json:"server_cpu_percent"`
	ServerCPUMicrosPerDelivery float64        `json:"server_cpu_us_per_delivery"`
	ServerRSSAfterKB           int64          `json:"server_rss_after_kib"`
	LoaderCPUSeconds           float64        `json:"loader_cpu_seconds"`
	LoaderCPUPercent           float64        `json:"loader_cpu_percent"`
	LoaderMicrosPerDl          float64        `json:"loader_cpu_us_per_delivery"`
	// PublishLateMs is how long after -publish-at publishing started,
	// because this process was still setting up then (0 if on time).
	PublishLateMs float64 `json:"publish_late_ms,omitempty"`
	// OtherProcesses is what the receivers got from other processes'
	// publishers (another -process number); their deliveries are not in
	// Unique, Expected or Lost, but are in Received, Duplicates, the
	// latency, DeliveriesPerSec and the CPU per delivery.
	OtherProcesses []otherProcessReport `json:"other_processes,omitempty"`
}

// otherProcessReport is what this process's receivers got from another
// process's publishers (see fleet.otherProcesses).
type otherProcessReport struct {
	Process    int `json:"process"`
	Publishers int `json:"publishers_seen"`
	// Expected counts, for every receiver here and every publisher of its
	// room, the sequences up to the highest any receiver here got from it;
	// Missing those it did not get (lost, or failed at the publisher).
	Expected   uint64 `json:"expected_deliveries"`
	Deliveries uint64 `json:"deliveries"`
	Missing    uint64 `json:"missing"`
	Duplicates uint64 `json:"duplicates"`
	// HighestSeqSum sums the highest sequence got here over its
	// publishers: sequences count every attempt, so with nothing lost at
	// the tail it equals the other process's published + publish_errors.
	HighestSeqSum uint64 `json:"highest_seq_sum"`
}

func newReport(cfg *config, nodes, adminAddrs int) *report {
	r := &report{
		Date: time.Now().UTC().Format(time.RFC3339),
		Host: hostReport{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()},
		Config: configReport{
			Target: cfg.target, URL: cfg.url, Nodes: nodes, AdminAddresses: adminAddrs, Via: cfg.via, Conns: cfg.conns,
			Rooms: cfg.rooms, Publishers: cfg.publishers, Rate: cfg.rate, Payload: cfg.payload, Duration: cfg.duration.String(),
			Reader: cfg.reader, Pollers: cfg.pollers, SourceAddrs: cfg.sourceAddrs,
			Process: cfg.process, RoomPrefix: cfg.roomPrefix, NoCreate: cfg.noCreate,
		},
	}
	if !cfg.publishAt.IsZero() {
		r.Config.PublishAt = cfg.publishAt.UTC().Format(time.RFC3339Nano)
	}
	if len(cfg.serverPIDs) > 0 {
		r.Config.ServerPID = cfg.serverPIDs[0]
	}
	if len(cfg.serverPIDs) > 1 {
		r.Config.ServerPIDs = cfg.serverPIDs
	}
	return r
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	c := r.Config
	row("date", "%s (%d CPUs, %s)", r.Date, r.Host.CPUs, r.Host.GoVersion)
	if c.Target != "" && c.Target != targetRoomd {
		row("target", "%s at %s", c.Target, c.URL)
	}
	switch {
	case r.Publish != nil && c.Publishers == 0:
		row("load", "%d conns in %d rooms, no publishers: receiving the other processes' messages for %s", c.Conns, c.Rooms, c.Duration)
	case r.Publish != nil:
		row("load", "%d conns in %d rooms, %d publishers at %s via %s, %d-byte payloads, %s",
			c.Conns, c.Rooms, c.Publishers, rateString(c.Rate), c.Via, c.Payload, c.Duration)
	default:
		row("load", "%d idle conns in %d rooms", c.Conns, c.Rooms)
	}
	if c.Process != 0 || c.NoCreate || c.PublishAt != "" {
		created := "created here"
		if c.NoCreate {
			created = "created by another process"
		}
		row("process", "%d; rooms %s-0.. %s; publishing from %s", c.Process, c.RoomPrefix, created, orWhenSetUp(c.PublishAt))
	}
	if c.Nodes > 1 || c.AdminAddresses > 1 {
		row("nodes", "%d URLs for the clients; admin addresses for the publishers: %d", c.Nodes, c.AdminAddresses)
	}
	s := r.Setup
	row("setup", "%d connected, %d failed in %.2f s: %.0f %s", s.Connected, s.Failed, s.Seconds, s.PerSecond, setupWhat(c.Target))
	if len(s.ConnectedPerNode) > 0 {
		row("  per node", "%v connected", s.ConnectedPerNode)
	}
	for _, k := range sortedKeys(s.Errors) {
		row("  dial error", "%d× %s", s.Errors[k], k)
	}
	server := "server"
	if n := len(c.ServerPIDs); n > 1 {
		server = fmt.Sprintf("servers (sum of %d)", n)
	}
	row("setup CPU", "%s %.2f s (%.1f µs/conn), loader %.2f s", server, s.ServerCPUSeconds, s.ServerCPUMicrosPerConn, s.LoaderCPUSeconds)
	if c.Reader != "" {
		row("reader", "%s", readerWhat(c.Reader, c.Pollers))
	}
	if s.CarriedBytes > 0 {
		row("  carried", "%d bytes read past the handshakes, parsed by the epoll reader first", s.CarriedBytes)
	}
	if c.ServerPID != 0 {
		m := r.Memory
		row(server+" RSS", "%d KiB before, %d after setup, %d settled, %d last, %d min", s.ServerRSSBeforeKB, s.ServerRSSAfterKB, m.SettledKB, m.LastKB, m.MinKB)
		row("RSS per conn", "%.2f KiB (last), %.2f KiB (min)", m.PerConnKB, m.PerConnMinKB)
	}
	if p := r.Publish; p != nil {
		if c.Publishers > 0 {
			row("published", "%d ok, %d errors, %.0f/s over %.2f s", p.Published, p.PublishErrors, p.PublishPerSecond, p.PublishSeconds)
		}
		if p.PublishLateMs > 0 {
			row("  late", "publishing started %.0f ms after -publish-at: this process was still setting up", p.PublishLateMs)
		}
		if c.Rate > 0 && c.Publishers > 0 {
			row("  schedule", "started at most %.2f ms after due, %d due but never sent (latency counts from when due)", p.PublishLagMaxMs, p.DueUnsent)
		}
		if p.FirstError != "" {
			row("  first error", "%s", p.FirstError)
		}
		counted := "server count unknown"
		if p.ServerRecipients != nil {
			counted = fmt.Sprintf("server counted %d", *p.ServerRecipients)
		}
		var others uint64
		for _, o := range p.OtherProcesses {
			others += o.Deliveries
		}
		switch {
		case c.Publishers == 0:
			row("deliveries", "%d from other processes, %.0f/s over %.2f s", others, p.DeliveriesPerSec, p.WindowSeconds)
		case others > 0:
			row("deliveries", "%d of %d expected (%s), and %d from other processes: %.0f/s over %.2f s",
				p.Unique, p.Expected, counted, others, p.DeliveriesPerSec, p.WindowSeconds)
		default:
			row("deliveries", "%d of %d expected (%s), %.0f/s over %.2f s", p.Unique, p.Expected, counted, p.DeliveriesPerSec, p.WindowSeconds)
		}
		if p.Frames > 0 {
			row("  frames", "%d replies in %d WebSocket frames (%.2f per frame)", p.Received, p.Frames, float64(p.Received)/float64(p.Frames))
		}
		row("lost / dup", "%d lost, %d duplicates, %d malformed, drain complete %v after %.2f s", p.Lost, p.Duplicates, p.Malformed, p.DrainComplete, p.DrainSeconds)
		for _, o := range p.OtherProcesses {
			row("other process", "%d: %d publishers seen, %d deliveries of %d expected, %d missing (lost, or failed at the publisher), %d duplicates; highest sequences sum %d (its published + publish errors, if none lost at the tail)",
				o.Process, o.Publishers, o.Deliveries, o.Expected, o.Missing, o.Duplicates, o.HighestSeqSum)
		}
		if p.Stalled > 0 {
			row("stalled", "%d members never read; the server closed %d of them with %d", p.Stalled, p.StalledDropped, p.StalledDropCode)
			for _, k := range sortedKeys(p.StalledEnds) {
				row("  stalled end", "%d× %s", p.StalledEnds[k], k)
			}
		}
		row("latency", "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms (%d samples)",
			p.LatencyP50Ms, p.LatencyP90Ms, p.LatencyP99Ms, p.LatencyP999Ms, p.LatencyMaxMs, p.LatencySamples)
		if c.ServerPID != 0 {
			row(server+" CPU", "%.2f s (%.0f%% of a core): %.3f µs/delivery; RSS after %d KiB", p.ServerCPUSeconds, p.ServerCPUPercent, p.ServerCPUMicrosPerDelivery, p.ServerRSSAfterKB)
		}
		row("loader CPU", "%.2f s (%.0f%% of a core): %.3f µs/delivery", p.LoaderCPUSeconds, p.LoaderCPUPercent, p.LoaderMicrosPerDl)
	}
	if cf := r.Centrifugo; cf != nil {
		row("centrifugo", "%d WebSocket frames with replies read, %d pings answered (whole run)", cf.Frames, cf.PingsAnswered)
	}
	for _, k := range sortedKeys(r.Closes) {
		row("unexpected end", "%d× %s", r.Closes[k], k)
	}
	tw.Flush()
}

// orWhenSetUp names -publish-at in the table.
func orWhenSetUp(publishAt string) string {
	if publishAt == "" {
		return "when set up"
	}
	return publishAt
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
