// Package natstest runs real NATS servers with JetStream inside a test
// process: one server, or a cluster of several with routes between them,
// each on random ports with its store in the test's temporary directory.
// Cluster tests use it so that nothing has to run before `go test`.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startTimeout bounds how long a server may take to accept clients (an
// embedded one starts in about a millisecond here).
const startTimeout = 10 * time.Second

// Server is one NATS server with JetStream. Stop and Start restart it on
// the same client port and store, as an operator restarting it would.
type Server struct {
	t    testing.TB
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server
}

// Start runs one standalone server and stops it when the test ends.
func Start(t testing.TB) *Server { return StartWith(t, nil) }

// StartWith is Start with options changed by configure first (for
// example a user and password the server requires).
func StartWith(t testing.TB, configure func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, opts: baseOptions(t, "n1")}
	if configure != nil {
		configure(&s.opts)
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func baseOptions(t testing.TB, name string) server.Options {
	return server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		// Clients reconnect quickly in tests; the default lame-duck
		// and write deadlines are fine.
	}
}

// Start (re)starts a stopped server on its client port and store. The
// first start picks a free port; later ones reuse it so that clients
// reconnect to the same URL.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil && s.srv.Running() {
		return
	}
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		s.t.Fatalf("natstest: server %s not ready within %v", s.opts.ServerName, startTimeout)
	}
	s.srv = srv
	if s.opts.Port == server.RANDOM_PORT {
		s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	}
}

// Stop shuts the server down and waits until it has; its store stays.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Wipe deletes a stopped server's store, as a disk lost with it would:
// the next Start begins with no streams.
func (s *Server) Wipe() {
	s.t.Helper()
	if err := os.RemoveAll(s.opts.StoreDir); err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
}

// URL is the address clients connect to; it stays the same across restarts.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Name is the server's name within its cluster.
func (s *Server) Name() string { return s.opts.ServerName }

// Connect returns a client connection to s that the test closes at its end.
func (s *Server) Connect() *nats.Conn {
	s.t.Helper()
	return connect(s.t, s.URL())
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Cluster is several servers routed to one another, with clustered
// JetStream, so that streams can have replicas.
type Cluster struct {
	Servers []*Server
}

// StartCluster runs n routed servers and waits until JetStream has a meta
// leader, so that streams can be made at once.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	// Cluster ports are fixed up front (free ports found by listening
	// on port 0) because every server lists every other in its routes,
	// and a restarted one must come back on the same one.
	ports := freePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	c := &Cluster{}
	for i := range n {
		opts := baseOptions(t, fmt.Sprintf("n%d", i+1))
		opts.Cluster = server.ClusterOpts{Name: "roomd-test", Host: "127.0.0.1", Port: ports[i]}
		opts.Routes = server.RoutesFromStr(joinRoutes(routes, i))
		s := &Server{t: t, opts: opts}
		c.Servers = append(c.Servers, s)
	}
	var wg sync.WaitGroup
	for _, s := range c.Servers {
		wg.Go(s.Start)
	}
	wg.Wait()
	for _, s := range c.Servers {
		t.Cleanup(s.Stop)
	}
	c.waitForMetaLeader(t)
	c.waitForPlacement(t)
	return c
}

// waitForPlacement waits until a stream with a replica on every server can
// be made: a meta leader is elected before every server has joined, and
// until then replicated streams fail with "no suitable peers".
func (c *Cluster) waitForPlacement(t testing.TB) {
	t.Helper()
	nc := connect(t, c.URLs())
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := jetstream.StreamConfig{Name: "NATSTEST_READY", Subjects: []string{"natstest.ready"}, Replicas: len(c.Servers), Storage: jetstream.MemoryStorage}
	for {
		// Each try bounded on its own: a request the servers drop while
		// they settle is asked again rather than waited on for a minute.
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.CreateOrUpdateStream(attempt, cfg)
		if err == nil {
			_, err = js.Publish(attempt, "natstest.ready", nil)
		}
		cancelAttempt()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("natstest: no stream with %d replicas within 60s (last: %v)", len(c.Servers), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := js.DeleteStream(ctx, cfg.Name); err != nil {
		t.Fatalf("natstest: %v", err)
	}
}

func joinRoutes(routes []string, self int) string {
	out := ""
	for i, r := range routes {
		if i == self {
			continue
		}
		if out != "" {
			out += ","
		}
		out += r
	}
	return out
}

// URLs lists every server's client URL, comma separated, as nats.Connect
// takes them.
func (c *Cluster) URLs() string {
	out := ""
	for i, s := range c.Servers {
		if i > 0 {
			out += ","
		}
		out += s.URL()
	}
	return out
}

func (c *Cluster) waitForMetaLeader(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			s.mu.Lock()
			srv := s.srv
			s.mu.Unlock()
			if srv != nil && srv.Running() && srv.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("natstest: no JetStream meta leader within 30s")
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
