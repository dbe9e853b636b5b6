package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
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
// CI machine can starve a reader for 400 ms but not for that long.
func TestAgainstInProcessServer(t *testing.T) {
	for _, reader := range readers() {
		t.Run(reader, func(t *testing.T) { testAgainstInProcessServer(t, reader) })
	}
}

// readers are the -reader values this system has.
func readers() []string {
	if epollSupported {
		return []string{readerEpoll, readerGoroutines}
	}
	return []string{readerGoroutines}
}

func testAgainstInProcessServer(t *testing.T, reader string) {
	hub := rooms.NewHub(rooms.Config{})
	edge := wsedge.New(wsedge.Config{Hub: hub, AutoCreate: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PingInterval: 100 * time.Millisecond, PongTimeout: 3 * time.Second})
	wsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpSrv := &http.Server{Handler: edge.Handler()}
	go httpSrv.Serve(wsLn)
	grpcSrv, _ := roomadmin.NewGRPCServer(roomadmin.NewService(roomadmin.HubRooms(hub)))
	go grpcSrv.Serve(grpcLn)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(ctx)
		_ = edge.Shutdown(ctx)
		grpcSrv.Stop()
	}()

	cfg, err := parseFlags([]string{
		"-url", "ws://" + wsLn.Addr().String(), "-admin-grpc", grpcLn.Addr().String(),
		"-conns", "30", "-rooms", "3", "-publishers", "4", "-rate", "100", "-duration", "500ms",
		"-settle", "0s", "-server-pid", "0", "-source-addrs", "127.0.0.1-127.0.0.3",
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
