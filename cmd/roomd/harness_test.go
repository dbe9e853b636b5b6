package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms"
)

// TestMain fails the package if any goroutine outlives the tests: every
// server a test starts must stop completely.
func TestMain(m *testing.M) {
	if os.Getenv(asRoomd) != "" {
		main() // a test's roomd process (process_test.go)
		return
	}
	goleak.VerifyTestMain(sayingWhatWasSkipped{m})
}

// sayingWhatWasSkipped runs the tests, then tells the person at the
// terminal that the browser tests did not run. go test shows a passing
// package's output only with -v, so a skip would otherwise go unseen; the
// terminal is written to directly, and where there is none (CI) nothing
// is said: CI sets ROOMD_REQUIRE_BROWSER, which makes the skip a failure.
type sayingWhatWasSkipped struct{ m *testing.M }

func (s sayingWhatWasSkipped) Run() int {
	code := s.m.Run()
	if why := browserSkipped.Load(); why != nil {
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			fmt.Fprintf(tty, "roomd/cmd/roomd: the browser tests were skipped: %s\n", *why)
			tty.Close()
		}
	}
	return code
}

// browserSkipped holds why the browser tests skipped, if they did.
var browserSkipped atomic.Pointer[string]

// testServer is a real roomd, started in-process on port 0 by run().
type testServer struct {
	public   string // host:port of the WebSocket listener
	adminURL string // http://host:port of the REST gateway
	grpcAddr string
	node     string // the node's name, in its client ids
	admin    roomdv1.RoomServiceClient
	token    string // admin bearer token that admin and rest send if not empty; from -admin-token
	logs     *syncBuffer
	stop     func() error // stops roomd (as SIGTERM would) and returns run's error
}

// startServer runs roomd with test-friendly flags, plus any given args.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	base := []string{"-listen", "127.0.0.1:0", "-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0", "-shutdown-timeout", "5s", "-drain-window", "0s"}
	cfg, err := parseConfig(append(base, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	level := slog.LevelDebug // unless the test asks for a level
	if slices.Contains(args, "-log-level") {
		level, _ = parseLogLevel(cfg.logLevel)
	}
	log := cfg.ops.newLogger(logs, level)
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan listeners, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log, func(l listeners) { readyc <- l }) }()
	var l listeners
	select {
	case l = <-readyc:
	case err := <-done:
		cancel()
		t.Fatalf("roomd did not start: %v", err)
	}
	var s *testServer
	conn, err := grpc.NewClient(l.adminGRPC.String(), append(tokenOptions(func() string { return s.token }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	var stopped bool
	var runErr error
	s = &testServer{
		public:   l.public.String(),
		adminURL: "http://" + l.adminHTTP.String(),
		grpcAddr: l.adminGRPC.String(),
		node:     cmp.Or(cfg.cluster.nodeName, rooms.DefaultNodeName),
		admin:    roomdv1.NewRoomServiceClient(conn),
		token:    cfg.adminToken,
		logs:     logs,
	}
	s.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
			conn.Close()
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("roomd stopped with %v", err)
		}
		if t.Failed() {
			t.Logf("roomd log:\n%s", logs.String())
		}
	})
	return s
}

// dial opens a WebSocket to /ws/{room}; query is added as is (e.g. "user=ann").
func (s *testServer) dial(t *testing.T, room, query string) *websocket.Conn {
	t.Helper()
	ws, resp, err := s.tryDial(room, query)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", room, err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func (s *testServer) tryDial(room, query string) (*websocket.Conn, *http.Response, error) {
	u := url.URL{Scheme: "ws", Host: s.public, Path: "/ws/" + room, RawQuery: query}
	return websocket.DefaultDialer.Dial(u.String(), nil)
}

// rest calls the REST gateway and decodes a JSON response into out (if not
// nil); it returns the HTTP status.
func (s *testServer) rest(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	resp, data := restRaw(t, s, method, path, "", body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// tokenOptions makes a gRPC client send "authorization: Bearer <token()>"
// on every call while token() is not empty.
func tokenOptions(token func() string) []grpc.DialOption {
	authorize := func(ctx context.Context) context.Context {
		if t := token(); t != "" {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+t)
		}
		return ctx
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(authorize(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(authorize(ctx), desc, cc, method, opts...)
		}),
	}
}

// frame is one message a WebSocket client received.
type frame struct {
	kind int
	data string
}

// read returns the next message, failing the test after a deadline.
func read(t *testing.T, ws *websocket.Conn) frame {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return frame{kind, string(data)}
}

// expectClose reads until the server closes the connection and checks the
// close code and, if not empty, the reason.
func expectClose(t *testing.T, ws *websocket.Conn, code int, reason string) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		if ce.Code != code || (reason != "" && ce.Text != reason) {
			t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, code, reason)
		}
		return
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer collects roomd's log for failing tests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
