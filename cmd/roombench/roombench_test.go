package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"roomd/rooms"
	roomadmin "roomd/rooms/admin"
	"roomd/wsedge"

	"go.uber.org/goleak"
)

func TestRefusesNonLoopbackTargets(t *testing.T) {
	for _, tc := range []struct{ flag, value string }{
		{"url", "ws://10.0.0.1:8080"},
		{"url", "ws://example.com:8080"},
		{"url", "ws://127.0.0.1:8080,ws://10.0.0.1:8080"},
		{"admin-grpc", "127.0.0.1:9090,8.8.8.8:9090"},
		{"admin", "http://127.0.0.1:9091,http://192.168.1.1:9091"},
		{"admin", "http://192.168.1.1:9091"},
		{"admin-grpc", "8.8.8.8:9090"},
		{"source-addrs", "127.0.0.1-127.0.1.0,10.0.0.1"},
		{"centrifugo url", "ws://10.0.0.1:8000"},
		{"centrifugo admin", "http://10.0.0.1:8000"},
	} {
		args := []string{"-" + tc.flag, tc.value}
		switch tc.flag {
		case "admin":
			args = append(args, "-via", "rest")
		case "centrifugo url":
			args = []string{"-target", "centrifugo", "-url", tc.value}
		case "centrifugo admin":
			args = []string{"-target", "centrifugo", "-url", "ws://127.0.0.1:8000", "-admin", tc.value}
		}
		cfg, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		_, err = run(context.Background(), cfg, io.Discard)
		if !errors.Is(err, errNotLoopback) {
			t.Errorf("-%s %s: err = %v, want errNotLoopback", tc.flag, tc.value, err)
		}
	}
}

func TestParseSourceAddrs(t *testing.T) {
	got, err := parseSourceAddrs("127.0.0.1-127.0.0.3,::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"127.0.0.5-127.0.0.1", "127.0.0.1-127.1.0.0", "nope"} {
		if _, err := parseSourceAddrs(bad); err == nil {
			t.Errorf("parseSourceAddrs(%q) accepted", bad)
		}
	}
}

func TestListFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-url", "ws://127.0.0.1:1, ws://127.0.0.1:2", "-server-pid", "10,20, 30"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.serverPIDs, []int{10, 20, 30}) {
		t.Errorf("server pids %v", cfg.serverPIDs)
	}
	urls, err := checkURLs("url", cfg.url, "ws")
	if err != nil || len(urls) != 2 || urls[0].String() != "ws://127.0.0.1:1" || urls[1].String() != "ws://127.0.0.1:2" {
		t.Errorf("urls %v, %v", urls, err)
	}
	if cfg, err := parseFlags(nil, io.Discard); err != nil || cfg.serverPIDs != nil {
		t.Errorf("default -server-pid: %v, %v", cfg.serverPIDs, err)
	}
	cf, err := parseFlags([]string{"-target", "centrifugo", "-url", "ws://127.0.0.1:28000,ws://127.0.0.1:28001"}, io.Discard)
	if err != nil || cf.admin != "http://127.0.0.1:28000,http://127.0.0.1:28001" {
		t.Errorf("centrifugo -admin from two URLs: %q, %v", cf.admin, err)
	}
	for _, bad := range [][]string{
		{"-server-pid", "1,,2"},
		{"-server-pid", "1,0"},
		{"-server-pid", "x"},
		{"-server-pid", "7,8,7"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := checkURLs("url", "ws://127.0.0.1:1,", "ws"); err == nil {
		t.Error("an empty -url entry accepted")
	}
	if _, err := checkHostPorts("admin-grpc", strings.Repeat("127.0.0.1:1,", maxNodes)+"127.0.0.1:1"); err == nil {
		t.Errorf("more than %d admin addresses accepted", maxNodes)
	}
}

// TestPlace: every room has members on every node, each node sees the
// source addresses equally (within one), the nodes have as many clients
// as the rooms allow (within a round of them), and with one node a
// client's room and source are what they were before there were nodes.
func TestPlace(t *testing.T) {
	for _, tc := range []struct{ conns, rooms, nodes, srcs int }{
		{300, 3, 3, 3}, {300, 1, 3, 50}, {1000, 6, 3, 51}, {19000, 1, 3, 50}, {100, 4, 2, 0},
	} {
		perRoomNode := map[[2]int]int{}
		perNodeSrc := map[[2]int]int{}
		for i := range tc.conns {
			room, node, src := place(i, tc.rooms, tc.nodes, tc.srcs)
			perRoomNode[[2]int{room, node}]++
			perNodeSrc[[2]int{node, src}]++
			if tc.rooms == 1 && node != i%tc.nodes {
				t.Errorf("%+v: client %d on node %d, want %d", tc, i, node, i%tc.nodes)
			}
		}
		if len(perRoomNode) != tc.rooms*tc.nodes {
			t.Errorf("%+v: %d (room, node) pairs have members, want %d", tc, len(perRoomNode), tc.rooms*tc.nodes)
		}
		srcs := max(tc.srcs, 1)
		if len(perNodeSrc) != tc.nodes*srcs {
			t.Errorf("%+v: %d (node, source) pairs used, want %d", tc, len(perNodeSrc), tc.nodes*srcs)
		}
		// Within a node the sources take turns; the nodes' totals differ
		// by at most a round of the rooms.
		perNode := make([]int, tc.nodes)
		for node := range tc.nodes {
			lo, hi := tc.conns, 0
			for src := range srcs {
				n := perNodeSrc[[2]int{node, src}]
				lo, hi = min(lo, n), max(hi, n)
				perNode[node] += n
			}
			if hi-lo > 1 {
				t.Errorf("%+v: node %d has from %d to %d clients per source", tc, node, lo, hi)
			}
		}
		if lo, hi := slices.Min(perNode), slices.Max(perNode); hi-lo > tc.rooms {
			t.Errorf("%+v: clients per node %v", tc, perNode)
		}
	}
	for i := range 100 {
		if room, node, src := place(i, 7, 1, 5); room != i%7 || node != 0 || src != i%5 {
			t.Fatalf("one node: client %d in room %d on node %d from source %d", i, room, node, src)
		}
	}
	// Publishers: with three rooms and three admin addresses, nine
	// publishers put each room's three on the three addresses.
	seen := map[[2]int]bool{}
	for p := range 9 {
		seen[[2]int{p % 3, publishNode(p, 3, 3)}] = true
	}
	if len(seen) != 9 {
		t.Errorf("publishers of each room on %d (room, address) pairs, want 9", len(seen))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := int64(1); i <= 10000; i++ {
		h.record(int(i), i*int64(time.Microsecond))
	}
	n, q, maxv := h.quantiles(0.5, 0.99)
	if n != 10000 || maxv != 10*time.Millisecond {
		t.Fatalf("n %d max %s", n, maxv)
	}
	for i, want := range []time.Duration{5 * time.Millisecond, 9900 * time.Microsecond} {
		if d := q[i] - want; d < 0 || d > want/25 {
			t.Errorf("quantile %d = %s, want %s within 4%%", i, q[i], want)
		}
	}
	for v := int64(0); v < 1<<20; v = v*5/4 + 1 {
		if b := bucketOf(v); bucketUpper(b) < v || (b > 0 && bucketUpper(b-1) >= v) {
			t.Fatalf("value %d in bucket %d with upper %d", v, b, bucketUpper(b))
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAgainstInProcessServer runs a short benchmark against a hub, edge and
// admin gRPC server in this process, with each reader: every message
// arrives exactly once. The server pings every 100 ms, so the readers
// answer dozens of pings; it drops a client silent for 3 s, which a loaded
// CI machine can starve a reader for 400 ms but not for that long. With two
// nodes the same server listens twice, so that the clients and publishers
// spread over two URLs and two admin addresses still reach one hub.
func TestAgainstInProcessServer(t *testing.T) {
	for _, reader := range readers() {
		t.Run(reader, func(t *testing.T) { testAgainstInProcessServer(t, reader, 1) })
	}
	t.Run("two nodes", func(t *testing.T) { testAgainstInProcessServer(t, defaultReader(), 2) })
}

// readers are the -reader values this system has.
func readers() []string {
	if epollSupported {
		return []string{readerEpoll, readerGoroutines}
	}
	return []string{readerGoroutines}
}

// inProcessServer is a hub with its edge and admin gRPC server, listening
// on nodes loopback ports each.
type inProcessServer struct {
	wsURLs, grpcAddrs []string
	stop              func()
}

func startInProcessServer(t *testing.T, nodes int) *inProcessServer {
	t.Helper()
	hub := rooms.NewHub(rooms.Config{})
	edge := wsedge.New(wsedge.Config{Hub: hub, AutoCreate: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PingInterval: 100 * time.Millisecond, PongTimeout: 3 * time.Second})
	httpSrv := &http.Server{Handler: edge.Handler()}
	grpcSrv, _ := roomadmin.NewGRPCServer(roomadmin.NewService(roomadmin.HubRooms(hub, roomadmin.LocalNode{})))
	s := &inProcessServer{}
	for range nodes {
		wsLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go httpSrv.Serve(wsLn)
		go grpcSrv.Serve(grpcLn)
		s.wsURLs = append(s.wsURLs, "ws://"+wsLn.Addr().String())
		s.grpcAddrs = append(s.grpcAddrs, grpcLn.Addr().String())
	}
	s.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(ctx)
		_ = edge.Shutdown(ctx)
		grpcSrv.Stop()
	}
	return s
}

func testAgainstInProcessServer(t *testing.T, reader string, nodes int) {
	srv := startInProcessServer(t, nodes)
	defer srv.stop()

	pids := "0"
	if nodes > 1 { // this process and its parent: the sums are what is checked
		pids = strconv.Itoa(os.Getpid()) + "," + strconv.Itoa(os.Getppid())
	}
	cfg, err := parseFlags([]string{
		"-url", strings.Join(srv.wsURLs, ","), "-admin-grpc", strings.Join(srv.grpcAddrs, ","),
		"-conns", "30", "-rooms", "3", "-publishers", "4", "-rate", "100", "-duration", "500ms",
		"-settle", "0s", "-server-pid", pids, "-source-addrs", "127.0.0.1-127.0.0.3",
		"-json", t.TempDir() + "/report.json", "-reader", reader,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Setup.Connected != 30 || rep.Config.Reader != reader {
		t.Fatalf("connected %d of 30 (reader %s): %v", rep.Setup.Connected, rep.Config.Reader, rep.Setup.Errors)
	}
	if rep.Config.Nodes != nodes || rep.Config.AdminAddresses != nodes {
		t.Errorf("report says %d nodes and %d admin addresses, want %d", rep.Config.Nodes, rep.Config.AdminAddresses, nodes)
	}
	if nodes > 1 {
		// Ten clients in each room, five on each node.
		if !slices.Equal(rep.Setup.ConnectedPerNode, []int{15, 15}) {
			t.Errorf("connected per node %v, want [15 15]", rep.Setup.ConnectedPerNode)
		}
		if len(rep.Config.ServerPIDs) != 2 || rep.Setup.ServerRSSBeforeKB <= 0 {
			t.Errorf("server pids %v, RSS before %d KiB", rep.Config.ServerPIDs, rep.Setup.ServerRSSBeforeKB)
		}
	} else if rep.Setup.ConnectedPerNode != nil {
		t.Errorf("connected per node %v with one node", rep.Setup.ConnectedPerNode)
	}
	if len(rep.Closes) != 0 {
		t.Errorf("connections ended: %v", rep.Closes)
	}
	p := rep.Publish
	if p == nil || p.Published == 0 || p.Lost != 0 || p.Duplicates != 0 || p.Malformed != 0 || !p.DrainComplete {
		t.Fatalf("publish report %+v", p)
	}
	// Four publishers over three rooms of ten: room 0 has two publishers.
	// Every delivery the server counted arrived.
	if p.Unique != p.Expected || p.ServerRecipients == nil || *p.ServerRecipients != p.Expected {
		t.Errorf("deliveries %d, expected %d, server counted %v", p.Unique, p.Expected, p.ServerRecipients)
	}
	if p.LatencySamples != p.Unique || p.LatencyMaxMs <= 0 {
		t.Errorf("latency samples %d for %d deliveries, max %v ms", p.LatencySamples, p.Unique, p.LatencyMaxMs)
	}
	rep.writeTable(io.Discard)
	if err := rep.writeJSON(cfg.jsonPath); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cfg.jsonPath); err != nil || fi.Size() == 0 {
		t.Errorf("JSON report: %v", err)
	}
}

// TestOtherProcessesAccounting: receivers check other processes'
// publishers, whose counts they do not know, for order and duplicates, and
// count as missing what a receiver lacks below the highest sequence any
// receiver here got.
func TestOtherProcessesAccounting(t *testing.T) {
	cfg, err := parseFlags([]string{"-conns", "3", "-rooms", "2", "-publishers", "0", "-process", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(cfg)
	a, b, c := &receiver{index: 0, room: 0}, &receiver{index: 1, room: 1}, &receiver{index: 2, room: 0}
	f.receivers = []*receiver{a, b, c}
	deliver := func(r *receiver, proc, p int, seq uint64) {
		var hdr [headerSize]byte
		putHeader(hdr[:], time.Now(), publisherID(proc, p), seq)
		f.account(r, &f.counts.shards[r.index], r.index, &hdr, time.Now())
	}
	// Process 1's publisher 0 publishes to room 0, its publisher 1 to
	// room 1; process 2's publisher 2 to room 0.
	for _, seq := range []uint64{1, 2, 3, 3} { // the second 3 is a duplicate
		deliver(a, 1, 0, seq)
	}
	deliver(c, 1, 0, 1)
	deliver(c, 1, 0, 3) // 2 is missing
	deliver(b, 1, 1, 1)
	deliver(b, 1, 1, 2)
	deliver(a, 2, 2, 1) // c never gets it
	deliver(a, 1, 1, 3) // publisher 1 is not of room 0
	deliver(b, 0, 1, 1) // process 0 is this one, which has no publishers

	received, unique, dups, malformed := f.counts.sum()
	if received != 0 || unique != 0 || dups != 1 || malformed != 2 || f.counts.othersSum() != 8 {
		t.Errorf("own unique %d, duplicates %d, malformed %d, others %d; want 0, 1, 2, 8 (received %d counts frames only)",
			unique, dups, malformed, f.counts.othersSum(), received)
	}
	got := f.otherProcesses()
	want := []otherProcessReport{
		// Room 0's two receivers expect 1..3 of publisher 0, room 1's one
		// receiver 1..2 of publisher 1.
		{Process: 1, Publishers: 2, Expected: 8, Deliveries: 7, Missing: 1, Duplicates: 1, HighestSeqSum: 5},
		{Process: 2, Publishers: 1, Expected: 2, Deliveries: 1, Missing: 1, HighestSeqSum: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("other processes\n%+v, want\n%+v", got, want)
	}
}

// TestSeveralProcesses runs three roombench processes' worth of runs at
// once against one server, sharing two rooms: process 0 creates them and
// publishes, process 1 publishes, process 2 only receives. Each process
// gets its own publishers' messages exactly once, and every message of the
// others' publishers with nothing missing.
func TestSeveralProcesses(t *testing.T) {
	srv := startInProcessServer(t, 1)
	defer srv.stop()
	at := time.Now().Add(2 * time.Second).Format(time.RFC3339Nano)
	prefix := fmt.Sprintf("several-%d", time.Now().UnixNano())
	args := func(process, publishers int, extra ...string) []string {
		return append([]string{
			"-url", srv.wsURLs[0], "-admin-grpc", srv.grpcAddrs[0], "-room-prefix", prefix, "-publish-at", at,
			"-conns", "20", "-rooms", "2", "-publishers", strconv.Itoa(publishers), "-rate", "100", "-duration", "500ms",
			"-settle", "0s", "-drain", "3s", "-process", strconv.Itoa(process),
		}, extra...)
	}
	runs := [][]string{args(0, 2), args(1, 2, "-no-create"), args(2, 0, "-no-create")}
	reps := make([]*report, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, a := range runs {
		cfg, err := parseFlags(a, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { reps[i], errs[i] = run(context.Background(), cfg, io.Discard) })
	}
	wg.Wait()
	for i, rep := range reps {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		p := rep.Publish
		if rep.Setup.Connected != 20 || p == nil || p.Lost != 0 || p.Duplicates != 0 || p.Malformed != 0 || p.Unique != p.Expected || !p.DrainComplete {
			t.Fatalf("process %d: connected %d, publish report %+v", i, rep.Setup.Connected, p)
		}
		var table strings.Builder
		rep.writeTable(&table)
		if want := fmt.Sprintf(" %d; rooms %s-0..", i, prefix); !strings.Contains(table.String(), want) {
			t.Errorf("process %d: the table has no %q:\n%s", i, want, table.String())
		}
		if p.PublishLateMs != 0 {
			t.Errorf("process %d started publishing %.0f ms late", i, p.PublishLateMs)
		}
		// Ten members of each room in each process: each publish of
		// process 0 or 1 reaches 30, 10 of them here.
		var want []otherProcessReport
		for j, other := range reps[:2] {
			if j == i {
				continue
			}
			op := other.Publish
			want = append(want, otherProcessReport{Process: j, Publishers: 2, Expected: 10 * op.Published,
				Deliveries: 10 * op.Published, HighestSeqSum: op.Published + op.PublishErrors})
		}
		if !slices.Equal(p.OtherProcesses, want) {
			t.Errorf("process %d: other processes\n%+v, want\n%+v", i, p.OtherProcesses, want)
		}
		if i < 2 && (p.Published == 0 || p.ServerRecipients == nil || *p.ServerRecipients != 30*p.Published) {
			t.Errorf("process %d: published %d, server counted %v recipients, want 30 each", i, p.Published, p.ServerRecipients)
		}
		// The other processes' deliveries have latencies too (all but any
		// that arrived before this process's own start, a moment after
		// theirs).
		var others uint64
		for _, o := range p.OtherProcesses {
			others += o.Deliveries
		}
		if p.LatencySamples <= p.Unique || p.LatencySamples > p.Unique+others {
			t.Errorf("process %d: %d latency samples for %d own and %d other deliveries", i, p.LatencySamples, p.Unique, others)
		}
	}
}

func TestProcessFlags(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for raw, want := range map[string]time.Time{
		"":                          {},
		"1800000010":                time.Unix(1_800_000_010, 0),
		"1800000010.25":             time.Unix(1_800_000_010, 250_000_000),
		"2027-01-15T08:00:30Z":      time.Date(2027, 1, 15, 8, 0, 30, 0, time.UTC),
		"2027-01-15T09:00:30+01:00": time.Date(2027, 1, 15, 8, 0, 30, 0, time.UTC),
		"1799999000":                time.Unix(1_799_999_000, 0), // in the past: publish at once
	} {
		got, err := parsePublishAt(raw, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parsePublishAt(%q) = %v, %v; want %v", raw, got, err, want)
		}
	}
	for _, bad := range []string{"soon", "-5", "0", "1800007201", "2027-01-15 08:00:30", "1800000010m", "30m1800000010"} {
		if _, err := parsePublishAt(bad, now); err == nil {
			t.Errorf("parsePublishAt(%q) accepted", bad)
		}
	}
	cfg, err := parseFlags([]string{"-process", "65535", "-no-create", "-room-prefix", "shared"}, io.Discard)
	if err != nil || cfg.process != 65535 || !cfg.noCreate || cfg.roomPrefix != "shared" {
		t.Errorf("process flags: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"-process", "65536"},
		{"-process", "-1"},
		{"-setup-only", "-publish-at", "2000000000"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if proc, p := splitPublisherID(publisherID(65535, 9999)); proc != 65535 || p != 9999 {
		t.Errorf("publisher id round trip: process %d publisher %d", proc, p)
	}
	if publisherID(0, 7) != 7 {
		t.Error("process 0's publisher ids are not the publisher numbers")
	}
}
