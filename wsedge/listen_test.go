package wsedge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"roomd/rooms"
)

// listenedEdge is an Edge behind its own Listener and an http.Server set up
// as roomd's public one, with a short timeout on unupgraded sockets.
type listenedEdge struct {
	edge *Edge
	hub  *rooms.Hub
	srv  *http.Server
	addr string
	done chan struct{} // closed when Serve returns
}

func startListened(t *testing.T, cfg Config, timeout time.Duration) *listenedEdge {
	t.Helper()
	hub := rooms.NewHub(rooms.Config{})
	cfg.Hub = hub
	cfg.AutoCreate = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	edge := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: edge.Handler(), ReadHeaderTimeout: timeout, ReadTimeout: timeout, IdleTimeout: timeout, WriteTimeout: time.Second}
	l := &listenedEdge{edge: edge, hub: hub, srv: srv, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() { defer close(l.done); _ = srv.Serve(edge.Listener(ln, false)) }()
	t.Cleanup(func() { l.stop(t) })
	return l
}

// stop shuts the edge and the server down as roomd does; a second call
// does nothing.
func (l *listenedEdge) stop(t *testing.T) {
	select {
	case <-l.done:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if l.srv.Shutdown(ctx) != nil {
			l.srv.Close()
		}
	}()
	if err := l.edge.Shutdown(ctx); err != nil {
		t.Errorf("edge shutdown: %v", err)
	}
	wg.Wait()
	<-l.done
}

// counts is what the edge holds: sockets in total and by IP, and
// connections registered for shutdown.
func (l *listenedEdge) counts() (total, ips, conns int) {
	s := &l.edge.sockets
	s.mu.Lock()
	total, ips = s.total, len(s.perIP)
	s.mu.Unlock()
	l.edge.mu.Lock()
	conns = len(l.edge.conns)
	l.edge.mu.Unlock()
	return total, ips, conns
}

// waitForCounts polls until the edge holds exactly total sockets and conns
// connections.
func (l *listenedEdge) waitForCounts(t *testing.T, total, conns int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		gotTotal, ips, gotConns := l.counts()
		if gotTotal == total && gotConns == conns && (total > 0 || ips == 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge holds %d sockets from %d IPs and %d connections; want %d sockets and %d connections", gotTotal, ips, gotConns, total, conns)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *listenedEdge) dialWS(path string, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if strings.HasPrefix(path, "/ws?") {
		d.Subprotocols = []string{"roomd.v1.json"}
	}
	return d.Dial("ws://"+l.addr+path, header)
}

// waitClosedByServer reads until the server closes conn, and returns what
// it sent.
func waitClosedByServer(t *testing.T, conn net.Conn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("waiting for the server to close the socket: %v (read %q)", err, got)
	}
	return string(got)
}

// Every way a socket can leave, churned concurrently, gives its count back
// exactly once: the edge ends holding nothing, and a full complement of
// sockets fits again.
func TestSocketCountsReturnToZeroWhateverPathASocketLeavesBy(t *testing.T) {
	const maxConns = 12
	// The timeout is short for a test, long for a loaded machine to get to
	// a request it has: a socket cut before its request is read is reset.
	l := startListened(t, Config{MaxConns: maxConns, MaxMessageBytes: 16}, time.Second)

	outcomes := map[string]func(t *testing.T){
		"silent until the server cuts it": func(t *testing.T) {
			conn, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			waitClosedByServer(t, conn)
		},
		"half a request, then the client hangs up": func(t *testing.T) {
			conn, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET /ws/r HTTP/1.1\r\nHost: x\r\n")
			conn.Close()
		},
		"half a request, then the client resets": func(t *testing.T) {
			conn, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET /ws/r HTTP/1.1\r\n")
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		},
		"a page, then idle until the server cuts it": func(t *testing.T) {
			conn, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n")
			if got := waitClosedByServer(t, conn); !strings.HasPrefix(got, "HTTP/1.1 200") {
				t.Errorf("got %.40q, want a 200 and then the close", got)
			}
		},
		"a request whose body never comes": func(t *testing.T) {
			conn, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
			waitClosedByServer(t, conn)
		},
		"upgrade refused with an HTTP status": func(t *testing.T) {
			_, resp, err := l.dialWS("/ws/bad%20id", nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("bad room id: %v %v, want 400", resp, err)
			}
		},
		"upgraded, then refused with a close code": func(t *testing.T) {
			ws, _, err := l.dialWS("/ws/r", http.Header{"Origin": {"https://elsewhere.example"}})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, int(rooms.CloseForbidden)) {
				t.Errorf("foreign origin: %v, want 4403", err)
			}
		},
		"upgraded, then the client leaves": func(t *testing.T) {
			ws, _, err := l.dialWS("/ws/r", nil)
			if err != nil {
				t.Fatal(err)
			}
			ws.WriteMessage(websocket.TextMessage, []byte("hi"))
			ws.Close()
		},
		"upgraded, then closed by the server": func(t *testing.T) {
			ws, _, err := l.dialWS("/ws/r", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			ws.WriteMessage(websocket.TextMessage, []byte("more than sixteen bytes"))
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
						t.Errorf("oversized message: %v, want 1009", err)
					}
					return
				}
			}
		},
		"upgraded, then reset by the client while the server closes": func(t *testing.T) {
			ws, _, err := l.dialWS("/ws/r", nil)
			if err != nil {
				t.Fatal(err)
			}
			ws.WriteMessage(websocket.TextMessage, []byte("more than sixteen bytes"))
			ws.NetConn().(*net.TCPConn).SetLinger(0)
			ws.Close()
		},
		"client protocol session, then the client leaves": func(t *testing.T) {
			ws, _, err := l.dialWS("/ws?user=ann", nil)
			if err != nil {
				t.Fatal(err)
			}
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			ws.ReadMessage() // welcome
			ws.Close()
		},
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for name, outcome := range outcomes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(fmt.Sprintf("%d %s", round, name), outcome)
			}()
		}
		wg.Wait()
		l.waitForCounts(t, 0, 0)
	}

	// A full complement fits again, and one more is refused at accept.
	var held []*websocket.Conn
	for range maxConns {
		ws, _, err := l.dialWS("/ws/r", nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ws)
	}
	l.waitForCounts(t, maxConns, maxConns)
	_, resp, err := l.dialWS("/ws/r", nil)
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("over the limit: %v %v, want 503", resp, err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "server at its limit of 12 connections\n" {
		t.Errorf("503 body %q", body)
	}
	for _, ws := range held {
		ws.Close()
	}
	l.waitForCounts(t, 0, 0)

	// Shutdown with members and an unupgraded socket still open leaves
	// nothing counted either.
	for range 2 {
		ws, _, err := l.dialWS("/ws/r", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		go func() { // reading answers the server's close frame
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	silent, err := net.Dial("tcp", l.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	l.waitForCounts(t, 3, 2)
	l.stop(t)
	l.waitForCounts(t, 0, 0)
}

// Sockets over MaxConnsPerIP are refused at accept with a bare 429, while
// another address still gets in.
func TestListenerRefusesOverThePerIPLimit(t *testing.T) {
	l := startListened(t, Config{MaxConnsPerIP: 2}, time.Minute)
	for range 2 {
		conn, err := net.Dial("tcp", l.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	l.waitForCounts(t, 2, 0)
	_, resp, err := l.dialWS("/ws/r", nil)
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket from 127.0.0.1: %v %v, want 429", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "too many connections from 127.0.0.1 (limit 2)\n" {
		t.Errorf("429 body %q", body)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDial: func(network, addr string) (net.Conn, error) {
		return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).Dial(network, addr)
	}}
	ws, _, err := d.Dial("ws://"+l.addr+"/ws/r", nil)
	if err != nil {
		t.Fatalf("from 127.0.0.2: %v, want an upgrade", err)
	}
	ws.Close()
}

// Over TLS nothing readable can be said before a handshake, so a socket
// over a limit is closed without an answer.
func TestListenerOverTLSClosesWithoutAnswer(t *testing.T) {
	edge := New(Config{Hub: rooms.NewHub(rooms.Config{}), MaxConns: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wrapped := edge.Listener(ln, true)
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := wrapped.Accept(); err == nil {
			accepted <- c
			_, _ = wrapped.Accept() // refuses the second, then fails once closed
		}
	}()
	defer wrapped.Close()
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	defer (<-accepted).Close()
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got := waitClosedByServer(t, second); got != "" {
		t.Errorf("got %q, want the socket closed without a byte", got)
	}
}

// Refusals at a limit are logged at most once per logInterval, each line
// with the count since the last.
func TestRefusalsAreLoggedOncePerInterval(t *testing.T) {
	var r RateLog
	t0 := time.Now()
	for i, tc := range []struct {
		at   time.Duration
		n    int
		logs bool
	}{{0, 1, true}, {time.Second, 0, false}, {9 * time.Second, 0, false}, {logInterval, 3, true}, {logInterval + 1, 0, false}, {3 * logInterval, 2, true}} {
		if n, ok := r.Note(t0.Add(tc.at)); n != tc.n || ok != tc.logs {
			t.Errorf("event %d at %v: note = %d, %v; want %d, %v", i, tc.at, n, ok, tc.n, tc.logs)
		}
	}
}

// The socket a connection is upgraded on keeps its descriptor reachable,
// so the flusher still writes it without blocking.
func TestListenedSocketsKeepTheFlushersFastPath(t *testing.T) {
	l := startListened(t, Config{}, time.Second)
	ws, _, err := l.dialWS("/ws/r", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	ws.WriteMessage(websocket.TextMessage, []byte("echo"))
	if _, data, err := ws.ReadMessage(); err != nil || string(data) != "echo" {
		t.Fatalf("echo: %q %v", data, err)
	}
	l.edge.mu.Lock()
	defer l.edge.mu.Unlock()
	for c := range l.edge.conns {
		c.mu.Lock() // attach set sock and raw before taking it
		_, counted := c.sock.(*socket)
		fast := c.attached && counted && c.raw != nil
		c.mu.Unlock()
		if !fast {
			t.Error("the upgraded connection is not on a counted socket with a raw descriptor")
		}
	}
}
