package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"roomd/rooms"
	"roomd/rooms/admin"
)

// Liveness: every node says it is alive on roomd.heartbeat.<node> every
// HeartbeatInterval, with its description, and every node listens to all
// of them. A node not heard from for DeadAfter is gone: each node removes
// its members from the rooms it carries (Hub.PurgeNode), so that each
// member's leave is told once on every node. A node that stops cleanly
// says so on roomd.leaving.<node>, and the others purge it at once.
const (
	heartbeatPrefix = "roomd.heartbeat."
	leavingPrefix   = "roomd.leaving."
	// helloSubject asks every node to beat at once: a node that starts
	// learns who is alive without waiting a heartbeat interval.
	helloSubject = "roomd.hello"
)

// LivenessConfig times the heartbeats.
type LivenessConfig struct {
	// HeartbeatInterval is how often a node says it is alive. 0: 1 s.
	HeartbeatInterval time.Duration
	// DeadAfter is how long a silent node is taken for alive. 0: 10 s,
	// which with a second's heartbeat removes a killed node's members
	// from everywhere within 11 s.
	DeadAfter time.Duration
}

// Liveness knows which nodes are alive.
type Liveness struct {
	nc       *nats.Conn
	hub      *rooms.Hub
	self     func() admin.NodeInfo
	name     string
	cfg      LivenessConfig
	log      *slog.Logger
	subs     []*nats.Subscription
	stop     chan struct{}
	stopped  sync.WaitGroup
	mu       sync.Mutex
	nodes    map[string]admin.NodeInfo // by name, this one included; Heartbeat is when it was last heard
	incarnat map[string]time.Time      // each node's start time, to tell a restart from the same node
	dead     map[string]time.Time      // nodes taken for dead, by the start time of the one that was

	// Revived, if set, is called when a node taken for dead is heard
	// again (it was frozen, or cut off, not gone): its members are still
	// connected and belong in the rosters again.
	Revived func(node string)
}

// NewLiveness refuses a node whose name a live node already has (it asks
// that name's call subject, which only a live node answers); Start then
// heartbeats and listens until Stop. Call it before this node answers
// calls itself.
func NewLiveness(nc *nats.Conn, hub *rooms.Hub, self func() admin.NodeInfo, cfg LivenessConfig, log *slog.Logger) (*Liveness, error) {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 10 * time.Second
	}
	l := &Liveness{nc: nc, hub: hub, self: self, name: hub.NodeName(), cfg: cfg, log: log,
		stop: make(chan struct{}), nodes: make(map[string]admin.NodeInfo), incarnat: make(map[string]time.Time),
		dead: make(map[string]time.Time)}
	if err := l.refuseDuplicate(); err != nil {
		return nil, err
	}
	return l, nil
}

// Start heartbeats and listens to the others' heartbeats until Stop.
func (l *Liveness) Start() error {
	for _, s := range []struct {
		subject string
		handle  nats.MsgHandler
	}{{heartbeatPrefix + "*", l.heard}, {leavingPrefix + "*", l.left}, {helloSubject, func(*nats.Msg) { l.beat() }}} {
		sub, err := l.nc.Subscribe(s.subject, s.handle)
		if err != nil {
			for _, sub := range l.subs {
				_ = sub.Unsubscribe()
			}
			return err
		}
		l.subs = append(l.subs, sub)
	}
	_ = l.nc.Publish(helloSubject, nil)
	_ = l.nc.FlushTimeout(l.cfg.HeartbeatInterval)
	l.stopped.Add(1)
	go l.run()
	return nil
}

// refuseDuplicate asks whether a live node answers to this node's name.
func (l *Liveness) refuseDuplicate() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.HeartbeatInterval+time.Second)
	defer cancel()
	msg, err := l.nc.RequestWithContext(ctx, callPrefix+l.name+"."+opNodeInfo, []byte("{}"))
	if err != nil {
		return nil // nobody answers: the name is free
	}
	var r reply
	var other admin.NodeInfo
	if json.Unmarshal(msg.Data, &r) == nil && json.Unmarshal(r.Result, &other) == nil {
		return fmt.Errorf("node name %q is in use by a live node (started %s, serving %s): give this node another -node-name",
			l.name, other.StartedAt.UTC().Format(time.RFC3339), other.PublicURL)
	}
	return fmt.Errorf("node name %q is in use by a live node: give this node another -node-name", l.name)
}

func (l *Liveness) run() {
	defer l.stopped.Done()
	beat := time.NewTicker(l.cfg.HeartbeatInterval)
	defer beat.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-beat.C:
			l.beat()
			l.sweep()
		}
	}
}

// beat says this node is alive, and notes it here too.
func (l *Liveness) beat() {
	info := l.self()
	data, _ := json.Marshal(info)
	_ = l.nc.Publish(heartbeatPrefix+l.name, data)
	l.mu.Lock()
	l.nodes[l.name] = info
	l.mu.Unlock()
}

func (l *Liveness) heard(msg *nats.Msg) {
	var info admin.NodeInfo
	if json.Unmarshal(msg.Data, &info) != nil || info.Name == "" || info.Name == l.name {
		return
	}
	info.Heartbeat = time.Now()
	l.mu.Lock()
	prev, known := l.incarnat[info.Name]
	died, wasDead := l.dead[info.Name]
	delete(l.dead, info.Name)
	l.nodes[info.Name] = info
	l.incarnat[info.Name] = info.StartedAt
	l.mu.Unlock()
	if wasDead && died.Equal(info.StartedAt) && l.Revived != nil {
		l.log.Warn("cluster: a node taken for dead is back; listing its members again", "node", info.Name)
		go l.Revived(info.Name)
	}
	if known && !prev.Equal(info.StartedAt) {
		// Restarted faster than it was found dead: its old members are
		// gone, and the new process's ids differ from theirs.
		l.gone(info.Name, "it restarted")
	}
}

func (l *Liveness) left(msg *nats.Msg) {
	name := msg.Subject[len(leavingPrefix):]
	if name == l.name {
		return
	}
	l.mu.Lock()
	_, known := l.nodes[name]
	delete(l.nodes, name)
	delete(l.incarnat, name)
	l.mu.Unlock()
	if known {
		l.gone(name, "it stopped")
	}
}

// sweep forgets the nodes not heard from for DeadAfter.
func (l *Liveness) sweep() {
	now := time.Now()
	var dead []string
	l.mu.Lock()
	for name, info := range l.nodes {
		if name != l.name && now.Sub(info.Heartbeat) > l.cfg.DeadAfter {
			dead = append(dead, name)
			l.dead[name] = info.StartedAt
			delete(l.nodes, name)
			delete(l.incarnat, name)
		}
	}
	l.mu.Unlock()
	for _, name := range dead {
		l.gone(name, "silent for "+l.cfg.DeadAfter.String())
	}
}

func (l *Liveness) gone(name, why string) {
	n := l.hub.PurgeNode(name)
	l.log.Warn("cluster: a node is gone; its members left the rooms here", "node", name, "why", why, "members_removed", n)
}

// Names lists the live nodes, this one included, by name.
func (l *Liveness) Names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.nodes))
	for name := range l.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Nodes describes the live nodes as last heard.
func (l *Liveness) Nodes() []admin.NodeInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]admin.NodeInfo, 0, len(l.nodes))
	for _, info := range l.nodes {
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b admin.NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Stop stops heartbeating and tells the others this node is leaving.
func (l *Liveness) Stop() {
	select {
	case <-l.stop:
		return
	default:
		close(l.stop)
	}
	l.stopped.Wait()
	if len(l.subs) == 0 {
		return // never started
	}
	for _, s := range l.subs {
		_ = s.Unsubscribe()
	}
	_ = l.nc.Publish(leavingPrefix+l.name, nil)
	_ = l.nc.FlushTimeout(time.Second)
}
