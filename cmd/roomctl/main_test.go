package main

// The tests run roomctl's run in process against a real roomd: the binary
// built once here, started on port 0 per test, its addresses read from its
// "roomd serving" line.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// roomdBinary is the roomd the tests start, built by TestMain.
var roomdBinary string

// TestMain builds roomd once, and fails the package if a goroutine
// outlives the tests: roomctl must end every call and stream it starts.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "roomctl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	roomdBinary = filepath.Join(dir, "roomd")
	build := exec.Command("go", "build", "-o", roomdBinary, "roomd/cmd/roomd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building roomd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a roomd process.
type server struct {
	grpcAddr string // host:port of its admin gRPC API
	public   string // host:port of its WebSocket listener
	logs     *syncBuffer
}

var servingLine = regexp.MustCompile(`msg="roomd serving".* websocket=wss?://([^/ ]+)/.* admin_grpc=(\S+)`)

// startRoomd runs roomd on port 0 with args added, waits until it serves,
// and kills it when the test ends.
func startRoomd(t *testing.T, args ...string) *server {
	t.Helper()
	base := []string{"-listen", "127.0.0.1:0", "-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0"}
	cmd := exec.Command(roomdBinary, append(base, args...)...)
	cmd.Env = []string{} // no ROOMD_ variable of the machine's
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{logs: &syncBuffer{}}
	found := make(chan []string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logs.Write([]byte(sc.Text() + "\n"))
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-scanned
		cmd.Wait()
		if t.Failed() {
			t.Logf("roomd's log:\n%s", s.logs.String())
		}
	})
	select {
	case m := <-found:
		s.public, s.grpcAddr = m[1], m[2]
	case <-scanned:
		t.Fatalf("roomd exited before serving:\n%s", s.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("roomd did not serve within 30s:\n%s", s.logs.String())
	}
	return s
}

// result is what one roomctl run showed.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// invocation is a roomctl command line with its environment and stdin.
type invocation struct {
	env   map[string]string
	stdin string
}

// roomctl runs roomctl with args, its address from ROOMCTL_ADDR.
func (s *server) roomctl(t *testing.T, args ...string) result {
	t.Helper()
	return s.with(invocation{}).run(t, args...)
}

// with is roomctl against s with more variables or a stdin.
func (s *server) with(inv invocation) invocation {
	env := map[string]string{"ROOMCTL_ADDR": s.grpcAddr}
	for k, v := range inv.env {
		env[k] = v
	}
	inv.env = env
	return inv
}

func (inv invocation) run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, inv.getenv, strings.NewReader(inv.stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func (inv invocation) getenv(name string) string { return inv.env[name] }

// offline runs roomctl with no server and no environment.
func offline(t *testing.T, args ...string) result {
	t.Helper()
	return invocation{}.run(t, args...)
}

// ok runs roomctl and fails the test unless it exits 0 with nothing on
// stderr.
func (s *server) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := s.roomctl(t, args...)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("roomctl %s:\n%v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// okJSON runs roomctl with -o json and decodes its output into m.
func (s *server) okJSON(t *testing.T, m proto.Message, args ...string) {
	t.Helper()
	out := s.ok(t, append(args, "-o", "json")...)
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("roomctl %s -o json: %v in\n%s", strings.Join(args, " "), err, out)
	}
}

// want fails the test unless r exited with code and each of the
// fragments is in its stdout (stderr when the code is not 0).
func want(t *testing.T, r result, code int, fragments ...string) {
	t.Helper()
	out := r.stdout
	if code != exitOK {
		out = r.stderr
	}
	if r.code != code {
		t.Fatalf("want exit %d, got:\n%v", code, r)
	}
	for _, f := range fragments {
		if !strings.Contains(out, f) {
			t.Fatalf("want %q in the output, got:\n%v", f, r)
		}
	}
}

// join opens a raw WebSocket member of room in development mode.
func (s *server) join(t *testing.T, room, query string) *websocket.Conn {
	t.Helper()
	u := url.URL{Scheme: "ws", Host: s.public, Path: "/ws/" + room, RawQuery: query}
	ws, _, err := websocket.DefaultDialer.Dial(u.String(), nil)
	if err != nil {
		t.Fatalf("joining %s: %v", room, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// frame is one message a member received.
type frame struct {
	kind int
	data string
}

func read(t *testing.T, ws *websocket.Conn) frame {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	return frame{kind, string(data)}
}

// expectClose reads until the server closes ws, and checks how.
func expectClose(t *testing.T, ws *websocket.Conn, code int, reason string) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Text != reason {
			t.Fatalf("connection ended with %v, want close %d %q", err, code, reason)
		}
		return
	}
}

// eventually polls cond until it holds, or fails the test after a
// deadline.
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

// syncBuffer is a stdout a test reads while roomctl writes it (watch).
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
