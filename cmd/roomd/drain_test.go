package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/wsedge/web"
)

// get answers GET url's status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// stopInBackground stops s (as SIGTERM would) without waiting; the
// returned channel gives run's error.
func stopInBackground(s *testServer) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.stop() }()
	return done
}

func healthStatus(t *testing.T, addr, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health check: %v", err)
	}
	return resp.GetStatus()
}

// On SIGTERM roomd turns not ready at once, on both listeners and in gRPC
// health, while it still serves its clients and /healthz; after the grace
// period its clients get 1001.
func TestDrainTurnsNotReadyAndKeepsServing(t *testing.T) {
	s := startServer(t, "-drain-grace", "3s", "-drain-window", "0s")
	for _, url := range []string{s.adminURL + "/readyz", "http://" + s.public + "/readyz"} {
		if code, body := get(t, url); code != http.StatusOK || body != "ready\n" {
			t.Fatalf("GET %s before the drain: %d %q", url, code, body)
		}
	}
	member := s.dial(t, "r", "")
	eventually(t, "joined", func() bool { return s.clientCount(t, "r") == 1 })

	done := stopInBackground(s)
	eventually(t, "/readyz 503 on the admin listener", func() bool {
		code, body := get(t, s.adminURL+"/readyz")
		return code == http.StatusServiceUnavailable && body == "draining\n"
	})
	if code, body := get(t, "http://"+s.public+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("public /readyz while draining: %d %q", code, body)
	}
	if code, _ := get(t, s.adminURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining: %d, want 200 (alive)", code)
	}
	for _, service := range []string{"", "roomd.v1.RoomService"} {
		if st := healthStatus(t, s.grpcAddr, service); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("gRPC health of %q while draining: %v", service, st)
		}
	}
	if m := s.scrape(t); m["roomd_ready"] != 0 {
		t.Errorf("roomd_ready %v while draining", m["roomd_ready"])
	}
	// Still serving: the member gets a message published now.
	if _, err := s.admin.Publish(context.Background(), &roomdv1.PublishRequest{RoomId: "r", Payload: &roomdv1.PublishRequest_Text{Text: "still here"}}); err != nil {
		t.Fatal(err)
	}
	if f := read(t, member); f.data != "still here" {
		t.Errorf("member read %q while draining", f.data)
	}
	member.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := member.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 {
		t.Errorf("after the grace period: %v, want close 1001", err)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// reconnectDelay is the SDK's delay before its first reconnection after a
// connection that was open (roomd.js: full jitter between half and all of
// twice BACKOFF_MIN_MS), read from the SDK itself so the two cannot drift.
func reconnectDelay(t *testing.T) func() time.Duration {
	t.Helper()
	rec := httptest.NewRecorder()
	web.SDK().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/roomd.js", nil))
	m := regexp.MustCompile(`const BACKOFF_MIN_MS = (\d+);`).FindSubmatch(rec.Body.Bytes())
	if m == nil {
		t.Fatal("roomd.js has no BACKOFF_MIN_MS")
	}
	minMS, _ := strconv.Atoi(string(m[1]))
	capMS := float64(2 * minMS)
	return func() time.Duration {
		return time.Duration((capMS/2 + rand.Float64()*capMS/2) * float64(time.Millisecond))
	}
}

// maxInWindow is the most times in any span of width w (times sorted).
func maxInWindow(times []time.Duration, w time.Duration) int {
	most, lo := 0, 0
	for hi := range times {
		for times[hi]-times[lo] >= w {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// The drain closes clients evenly over -drain-window: measured here from
// the clients' side. With the SDK's reconnect jitter on top, they come back
// at most clients/window a second (as an even spread gives), where closing
// them all at once would bring them back within a few hundred milliseconds.
// ROOMD_DRAIN_CLIENTS sets how many (the README's figures are from 10000,
// which needs -max-conns above it and a file limit to match).
func TestDrainSpreadsClosesOverTheWindow(t *testing.T) {
	clients := 1000
	if n, err := strconv.Atoi(os.Getenv("ROOMD_DRAIN_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	const window = 2 * time.Second
	// A process of its own, stopped by a real SIGTERM: 10,000 clients and
	// their server sockets would not fit one process's file limit here.
	p := startProcess(t, "-drain-window", window.String(), "-max-conns-per-ip", "0", "-max-clients-per-room", "0", "-max-message-rate", "0", "-log-level", "info")
	s := p.server("local")
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = s.dial(t, fmt.Sprintf("room-%d", i%50), "")
	}
	eventually(t, "everyone connected", func() bool { return s.scrape(t)["roomd_connections{protocol=raw}"] == float64(clients) })

	closedAt := make([]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws.SetReadDeadline(time.Now().Add(window + 20*time.Second))
			_, _, err := ws.ReadMessage()
			closedAt[i] = time.Since(start)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 1001 {
				t.Errorf("client %d: %v, want close 1001", i, err)
			}
		}()
	}
	p.signal(syscall.SIGTERM)
	wg.Wait()
	p.wait(t, 30*time.Second)
	if code := p.cmd.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("exit code %d after the drain, want %d", code, exitOK)
	}
	slices.Sort(closedAt)
	spread := closedAt[len(closedAt)-1] - closedAt[0]
	// Even: each quarter of the window closes about a quarter of them.
	quarters := make([]int, 4)
	for _, at := range closedAt {
		quarters[min(3, int(4*(at-closedAt[0])/window))]++
	}
	t.Logf("%d clients closed over %v (window %v); by quarter %v", clients, spread.Round(time.Millisecond), window, quarters)
	if spread < window*3/4 || spread > window+time.Second {
		t.Errorf("closes spread over %v, want about %v", spread, window)
	}
	for q, n := range quarters {
		if n < clients/8 || n > clients*3/8 {
			t.Errorf("quarter %d of the window closed %d of %d clients, want about a quarter", q+1, n, clients)
		}
	}

	delay := reconnectDelay(t)
	back := make([]time.Duration, clients)
	atOnce := make([]time.Duration, clients)
	for i, at := range closedAt {
		back[i] = at + delay()
		atOnce[i] = delay()
	}
	slices.Sort(back)
	slices.Sort(atOnce)
	rate := maxInWindow(back, time.Second)
	bound := int(float64(clients)/window.Seconds()*1.25) + 10
	t.Logf("SDK reconnections: at most %d in any second spread over the window (bound %d); closed at once, all %d within %v",
		rate, bound, clients, (atOnce[len(atOnce)-1] - atOnce[0]).Round(time.Millisecond))
	if rate > bound {
		t.Errorf("%d reconnections in one second, want at most %d (clients/window + 25%%)", rate, bound)
	}
}

// A second SIGTERM during the drain stops roomd at once, with exit code 3.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	p := startProcess(t, "-drain-grace", "1m")
	s := p.server("local")
	s.dial(t, "r", "")
	p.signal(syscall.SIGTERM)
	eventually(t, "not ready", func() bool {
		code, _ := get(t, p.adminURL+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	select {
	case <-p.exited:
		t.Fatal("roomd exited during the grace period")
	default:
	}
	sent := time.Now()
	p.signal(syscall.SIGTERM)
	p.wait(t, 5*time.Second)
	t.Logf("exited %v after the second signal", time.Since(sent).Round(time.Millisecond))
	if code := p.cmd.ProcessState.ExitCode(); code != exitStoppedAtOnce {
		t.Errorf("exit code %d, want %d", code, exitStoppedAtOnce)
	}
}
