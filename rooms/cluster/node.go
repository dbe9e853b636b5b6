package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"roomd/rooms"
	"roomd/rooms/admin"
)

// Config is what a node needs to join the cluster.
type Config struct {
	// URL lists the NATS servers, comma separated (nats://host:4222).
	// User and password may sit in it, or in User and Password.
	URL      string
	User     string
	Password string
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string
	// CAFile verifies the NATS servers' TLS certificates.
	CAFile string
	// Name is this node's name; see DefaultNodeName.
	Name     string
	Stream   StreamConfig
	Liveness LivenessConfig
	// CallTimeout caps how long an admin call waits for other nodes (the
	// call's own deadline, if sooner, wins), and each call to NATS.
	CallTimeout time.Duration
	Log         *slog.Logger
}

// DefaultNodeName is the host's name (its first label, as a node name must
// be one) and a short random suffix, so that two nodes started on one
// host without -node-name do not clash.
func DefaultNodeName() string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(strings.ToLower(host), ".")
	var b strings.Builder
	for _, r := range host {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r == '-' {
			b.WriteRune(r)
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	if name == "" {
		name = "roomd"
	}
	return name + "-" + strings.ToLower(rand.Text()[:4])
}

// Node is this roomd node's part of the cluster: its NATS connection, the
// stream, and once Start is called, its broker and the services that keep
// the Hub in step with the others.
type Node struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	epoch  string
	broker *Broker
	log    *slog.Logger

	// Set by Start.
	hub   *rooms.Hub
	calls *Calls
	dir   *Directory
	bans  *Bans
	live  *Liveness
}

// Connect connects to NATS and makes sure the stream exists. A NATS that
// cannot be reached within ctx is an error: a node does not start without
// its bus.
func Connect(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	if err := rooms.ValidateNodeName(cfg.Name); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Log}
	opts := []nats.Option{
		nats.Name("roomd " + cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.Timeout(cfg.CallTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn("cluster: NATS connection lost; publishing is refused until it is back", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.log.Info("cluster: NATS connection back", "server", nc.ConnectedUrlRedacted())
			if n.broker != nil {
				go n.resync()
			}
		}),
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("NATS at %s: %w", redact(cfg.URL), err)
	}
	n.nc = nc
	if n.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, err
	}
	// A stream with replicas answers once its servers elected a leader:
	// try until ctx ends.
	for {
		// Each attempt bounded on its own: a request the servers drop
		// while they elect or catch up is asked again, instead of one
		// unanswered request using up the whole of ctx.
		attempt, cancel := context.WithTimeout(ctx, streamAttemptTimeout)
		n.stream, err = EnsureStream(attempt, n.js, cfg.Stream)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			nc.Close()
			return nil, fmt.Errorf("NATS at %s has no JetStream: start nats-server with -js", redact(cfg.URL))
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("stream %s on NATS at %s: %w", StreamName, redact(cfg.URL), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if n.epoch, err = StreamEpoch(ctx, n.stream); err != nil {
		nc.Close()
		return nil, err
	}
	return n, nil
}

// streamAttemptTimeout bounds one try at making or checking the stream
// (CreateOrUpdateStream, which may be asked again): far longer than it
// takes a NATS cluster that is up.
const streamAttemptTimeout = 5 * time.Second

// redact hides a password in a NATS URL for logs and errors.
func redact(url string) string {
	var out []string
	for _, u := range strings.Split(url, ",") {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				u = u[:scheme+3] + "***" + u[at:]
			}
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// NewBroker is rooms.Config.NewBroker for this node.
func (n *Node) NewBroker(local rooms.Deliverer) rooms.Broker {
	n.broker = NewBroker(n.nc, n.js, n.stream, n.epoch, local, n.log, n.cfg.CallTimeout)
	return n.broker
}

// Close stops the node's part in the cluster and drains its NATS
// connection.
func (n *Node) Close() {
	if n.broker != nil {
		n.broker.Close() // the members' leaves first, with how each left
	}
	if n.live != nil {
		n.live.Stop() // then the others drop whoever is left at once
	}
	if n.calls != nil {
		n.calls.Stop()
	}
	if n.dir != nil {
		n.dir.Stop()
	}
	if n.bans != nil {
		n.bans.Stop()
	}
	if n.nc != nil {
		_ = n.nc.Drain()
	}
}

// Start wires this node's Hub into the cluster: it refuses a name a live
// node has, answers other nodes' calls, mirrors the room directory and the
// bans, and heartbeats. self describes this node's addresses.
func (n *Node) Start(ctx context.Context, hub *rooms.Hub, self admin.LocalNode) error {
	n.hub = hub
	if self.Version == "" {
		self.Version = admin.BuildVersion()
	}
	describe := func() admin.NodeInfo {
		return admin.NodeInfo{Name: hub.NodeName(), PublicURL: self.PublicURL, AdminGRPC: self.AdminGRPC, AdminHTTP: self.AdminHTTP,
			StartedAt: self.StartedAt, Clients: hub.ClientCount(), Heartbeat: time.Now(), Version: self.Version}
	}
	var err error
	if n.live, err = NewLiveness(n.nc, hub, describe, n.cfg.Liveness, n.log); err != nil {
		return err
	}
	if n.calls, err = StartCalls(n.nc, hub, n.live.Names, describe, n.cfg.CallTimeout, n.log); err != nil {
		return fmt.Errorf("cluster calls: %w", err)
	}
	n.live.Revived = n.readopt
	n.broker.Roster = n.calls.Roster
	if n.dir, err = OpenDirectory(ctx, n.js, hub, DirectoryConfig{Replicas: n.cfg.Stream.Replicas, Logger: n.log}); err != nil {
		return fmt.Errorf("room directory: %w", err)
	}
	if n.bans, err = OpenBans(ctx, n.js, hub, BansConfig{Replicas: n.cfg.Stream.Replicas, Logger: n.log}); err != nil {
		return fmt.Errorf("bans: %w", err)
	}
	return n.live.Start()
}

// Rooms is the admin API's view of the whole cluster, once Start is done.
func (n *Node) Rooms() admin.Rooms { return adminRooms{n} }

// readopt lists a node's members in this node's rooms again, after it was
// taken for dead and came back.
func (n *Node) readopt(node string) {
	for _, roomID := range n.hub.RoomIDs() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
		var page clientsPage
		err := n.calls.one(ctx, node, opLocalMembers, pageReq{Room: roomID, Limit: rosterPage}, &page)
		cancel()
		if err != nil {
			n.log.Warn("cluster: a node that came back did not list its members", "node", node, "room", roomID, "err", err)
			continue
		}
		n.hub.AdoptRemoteMembers(roomID, page.Clients)
	}
}

// resync runs after NATS comes back: the stream is made again if it was
// lost (a NATS that lost its store), and then its epoch differs: every
// room's history restarts and every client reconnects (Hub.RestartHistory);
// otherwise the rooms catch up on what was published meanwhile.
func (n *Node) resync() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := EnsureStream(ctx, n.js, n.cfg.Stream)
	if err == nil {
		var epoch string
		if epoch, err = StreamEpoch(ctx, stream); err == nil && epoch != n.broker.Epoch() {
			n.log.Error("cluster: the room stream was made anew (NATS lost its store): every room's history restarts, and every client is disconnected to join afresh",
				"old_epoch", n.broker.Epoch(), "epoch", epoch)
			n.broker.Restart(stream, epoch)
			if n.hub != nil {
				n.hub.RestartHistory(epoch)
			}
			return
		}
	}
	if err != nil {
		n.log.Warn("cluster: could not check the room stream after NATS came back", "err", err)
	}
	n.broker.CatchUp()
}
