// Command roombench is roomd's load generator: it opens many WebSocket
// clients in rooms, publishes through the admin API, and reports connection
// setup rate, deliveries per second, publish-to-receive latency, lost and
// duplicate deliveries, and the server's memory and CPU per connection and
// per delivery (from /proc). It only targets loopback addresses and stops by
// itself. With -target centrifugo it drives Centrifugo instead, through its
// JSON client protocol and server HTTP API. See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is everything roombench can be told.
type config struct {
	target      string // roomd (or anything serving /ws/{room}) or centrifugo
	url         string // one public base per node, comma-separated
	admin       string // comma-separated
	apiKey      string // Centrifugo's http_api.key
	adminGRPC   string // comma-separated
	via         string
	conns       int
	rooms       int
	publishers  int
	rate        float64
	payload     int
	duration    time.Duration
	sourceAddrs string
	serverPIDs  []int // servers whose RSS and CPU are summed; none: no /proc
	jsonPath    string
	setupOnly   bool
	idle        time.Duration
	settle      time.Duration
	drain       time.Duration
	dialWorkers int
	dialTimeout time.Duration
	readBuffer  int
	roomPrefix  string
	keepRooms   bool
	noCreate    bool      // another process creates and deletes the rooms
	process     int       // this process's number among several sharing rooms
	publishAt   time.Time // zero: publish once set up
	stalled     int
	reader      string // epoll or goroutines
	pollers     int    // -reader epoll: how many
}

// Bounds on what one run may ask for.
const (
	maxConns    = 1_000_000
	maxDuration = time.Hour
	// maxProcess is the largest -process: it fills the upper 16 bits of
	// the payload's publisher field, the publisher number the lower 16.
	maxProcess = 1<<16 - 1
)

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("roombench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.target, "target", targetRoomd, "server kind: roomd (also the baseline) or centrifugo")
	fs.StringVar(&cfg.url, "url", "ws://127.0.0.1:8080", "public WebSocket base URL, or a comma-separated list, one per node, that the clients are spread over; clients connect to URL/ws/{room} (centrifugo: URL/connection/websocket)")
	fs.StringVar(&cfg.admin, "admin", "http://127.0.0.1:9091", "admin REST base URL or comma-separated list (used with -via rest; centrifugo: its HTTP API base, default the -url hosts); publishers are spread over the list, rooms are created through the first")
	fs.StringVar(&cfg.apiKey, "api-key", "", "centrifugo: X-API-Key for its HTTP API (http_api.key)")
	fs.StringVar(&cfg.adminGRPC, "admin-grpc", "127.0.0.1:9090", "admin gRPC address or comma-separated list (used with -via grpc); publishers are spread over the list, rooms are created through the first")
	fs.StringVar(&cfg.via, "via", "grpc", "how to create rooms and publish: grpc or rest")
	fs.IntVar(&cfg.conns, "conns", 100, "WebSocket clients, spread round-robin over the rooms")
	fs.IntVar(&cfg.rooms, "rooms", 1, "rooms")
	fs.IntVar(&cfg.publishers, "publishers", 1, "publishers; publisher p publishes to room p%rooms")
	fs.Float64Var(&cfg.rate, "rate", 10, "messages/s per publisher; 0 = back to back, as fast as the admin API takes them")
	fs.IntVar(&cfg.payload, "payload", 128, fmt.Sprintf("payload bytes (at least %d: send time, publisher, sequence; centrifugo: %d, the JSON string of the header in hex)", headerSize, centrifugoMinPayload))
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long publishers publish")
	fs.StringVar(&cfg.sourceAddrs, "source-addrs", "", "client source IPs, e.g. 127.0.0.1-127.0.0.50 or a comma list (default: the kernel chooses)")
	serverPIDs := fs.String("server-pid", "0", "server process to read RSS and CPU from /proc, or a comma-separated list whose RSS and CPU are summed (0: none)")
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&cfg.setupOnly, "setup-only", false, "connect, settle, hold -idle, report memory and setup rate; publish nothing")
	fs.DurationVar(&cfg.idle, "idle", 0, "after setup and -settle, hold the idle connections this long (sampling server RSS each second)")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "wait after setup before reading server RSS")
	fs.DurationVar(&cfg.drain, "drain", 10*time.Second, "after publishing, wait at most this long for outstanding deliveries")
	fs.IntVar(&cfg.dialWorkers, "dial-workers", 64, "concurrent connection attempts")
	fs.DurationVar(&cfg.dialTimeout, "dial-timeout", 10*time.Second, "bound on one connection's dial and upgrade")
	fs.IntVar(&cfg.readBuffer, "read-buffer", 2048, "client read buffer bytes")
	fs.StringVar(&cfg.roomPrefix, "room-prefix", "", "room id prefix (default: roombench-<unix seconds>)")
	fs.BoolVar(&cfg.keepRooms, "keep-rooms", false, "do not delete the rooms at the end")
	fs.BoolVar(&cfg.noCreate, "no-create", false, "neither create nor delete the rooms: another roombench process (same -room-prefix and -rooms) does")
	fs.IntVar(&cfg.process, "process", 0, fmt.Sprintf("this process's number (0..%d) when several roombench processes share rooms, each its own: stamped in every payload, so that receivers tell their own publishers' messages from the others'", maxProcess))
	publishAt := fs.String("publish-at", "", "wall-clock time to start publishing, RFC 3339 or unix seconds, the same for every process sharing rooms (default: once set up); with -publishers 0, receive the other processes' messages from then for -duration")
	fs.StringVar(&cfg.reader, "reader", defaultReader(), "how the clients read: epoll (Linux: -pollers goroutines with an epoll instance each, one read per ready socket) or goroutines (a gorilla reader goroutine per client)")
	fs.IntVar(&cfg.pollers, "pollers", 0, "with -reader epoll: how many pollers (0: GOMAXPROCS)")
	fs.IntVar(&cfg.stalled, "stalled", 0, "extra members, round-robin over the rooms, that never read: the others' latency should not change")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch cfg.target {
	case targetRoomd:
		if set["api-key"] {
			return nil, fmt.Errorf("-api-key is for -target centrifugo")
		}
	case targetCentrifugo:
		// Centrifugo has no rooms to create and one publish API: its HTTP
		// API, by default on the same host and port as the WebSocket.
		if set["via"] || set["admin-grpc"] {
			return nil, fmt.Errorf("-via and -admin-grpc do not apply to -target centrifugo: it publishes through Centrifugo's HTTP API at -admin")
		}
		cfg.via = viaCentrifugoAPI
		if !set["admin"] {
			urls, err := splitList("url", cfg.url)
			if err != nil {
				return nil, err
			}
			for i, u := range urls {
				if urls[i], err = centrifugoAPIBase(u); err != nil {
					return nil, err
				}
			}
			cfg.admin = strings.Join(urls, ",")
		}
		if cfg.payload < centrifugoMinPayload {
			return nil, fmt.Errorf("-payload must be at least %d bytes with -target centrifugo (a JSON string of the header in hex)", centrifugoMinPayload)
		}
	default:
		return nil, fmt.Errorf("-target must be %s or %s", targetRoomd, targetCentrifugo)
	}
	pids, err := parsePIDs(*serverPIDs)
	if err != nil {
		return nil, err
	}
	cfg.serverPIDs = pids
	if cfg.publishAt, err = parsePublishAt(*publishAt, time.Now()); err != nil {
		return nil, err
	}
	if cfg.roomPrefix == "" {
		cfg.roomPrefix = fmt.Sprintf("roombench-%d", time.Now().Unix())
	}
	switch {
	case cfg.conns < 1 || cfg.conns > maxConns:
		return nil, fmt.Errorf("-conns must be 1..%d", maxConns)
	case cfg.rooms < 1 || cfg.rooms > cfg.conns:
		return nil, fmt.Errorf("-rooms must be 1..conns")
	case cfg.publishers < 0 || cfg.publishers > 10_000:
		return nil, fmt.Errorf("-publishers must be 0..10000")
	case cfg.rate < 0:
		return nil, fmt.Errorf("-rate must not be negative")
	case cfg.payload < headerSize || cfg.payload > 1<<20:
		return nil, fmt.Errorf("-payload must be %d..%d bytes", headerSize, 1<<20)
	case cfg.duration <= 0 || cfg.duration > maxDuration, cfg.idle < 0 || cfg.idle > maxDuration,
		cfg.settle < 0 || cfg.settle > maxDuration, cfg.drain < 0 || cfg.drain > maxDuration:
		return nil, fmt.Errorf("-duration, -idle, -settle and -drain must be 0..%s (duration > 0)", maxDuration)
	case cfg.stalled < 0 || cfg.stalled > maxConns:
		return nil, fmt.Errorf("-stalled must be 0..%d", maxConns)
	case cfg.dialWorkers < 1 || cfg.dialWorkers > 10_000:
		return nil, fmt.Errorf("-dial-workers must be 1..10000")
	case cfg.readBuffer < 64 || cfg.readBuffer > 1<<20:
		return nil, fmt.Errorf("-read-buffer must be 64..1048576")
	case cfg.via != "grpc" && cfg.via != "rest" && cfg.via != viaCentrifugoAPI:
		return nil, fmt.Errorf("-via must be grpc or rest")
	case cfg.reader != readerEpoll && cfg.reader != readerGoroutines:
		return nil, fmt.Errorf("-reader must be %s or %s", readerEpoll, readerGoroutines)
	case cfg.reader == readerEpoll && !epollSupported:
		return nil, fmt.Errorf("-reader epoll needs Linux; use -reader goroutines")
	case cfg.pollers < 0 || cfg.pollers > 1024:
		return nil, fmt.Errorf("-pollers must be 0..1024")
	case cfg.process < 0 || cfg.process > maxProcess:
		return nil, fmt.Errorf("-process must be 0..%d", maxProcess)
	case cfg.setupOnly && !cfg.publishAt.IsZero():
		return nil, fmt.Errorf("-publish-at does not go with -setup-only")
	}
	if cfg.reader != readerEpoll {
		cfg.pollers = 0
	} else if cfg.pollers == 0 {
		cfg.pollers = runtime.GOMAXPROCS(0)
	}
	return cfg, nil
}

// parsePublishAt reads -publish-at: "" (none), an RFC 3339 time or unix
// seconds (with a fraction if wanted). It may lie in the past (publishing
// then starts at once, and the report says how late), but not more than
// maxDuration ahead of now.
func parsePublishAt(raw string, now time.Time) (time.Time, error) {
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		// Unix seconds, digits with a fraction if wanted, read as a
		// duration since the epoch for an exact fraction (int64
		// nanoseconds reach the year 2262).
		since, derr := time.ParseDuration(raw + "s")
		if strings.Trim(raw, "0123456789.") != "" || derr != nil || since <= 0 {
			return time.Time{}, fmt.Errorf("-publish-at %q: want RFC 3339 (2026-12-01T10:00:00Z) or unix seconds", raw)
		}
		t = time.Unix(0, int64(since))
	}
	if t.After(now.Add(maxDuration)) {
		return time.Time{}, fmt.Errorf("-publish-at %q: more than %s from now", raw, maxDuration)
	}
	return t, nil
}

// parsePIDs reads -server-pid: "0" (none), or one or more process ids.
func parsePIDs(raw string) ([]int, error) {
	if strings.TrimSpace(raw) == "0" {
		return nil, nil
	}
	parts, err := splitList("server-pid", raw)
	if err != nil {
		return nil, err
	}
	pids := make([]int, len(parts))
	for i, part := range parts {
		pid, err := strconv.Atoi(part)
		if err != nil || pid < 1 {
			return nil, fmt.Errorf("-server-pid %q: %q is not a process id", raw, part)
		}
		if slices.Contains(pids[:i], pid) { // it would be counted twice
			return nil, fmt.Errorf("-server-pid %q: %d is there twice", raw, pid)
		}
		pids[i] = pid
	}
	return pids, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "roombench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if rep != nil {
		rep.writeTable(os.Stdout)
		if cfg.jsonPath != "" {
			if werr := rep.writeJSON(cfg.jsonPath); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "roombench:", err)
		os.Exit(1)
	}
}
