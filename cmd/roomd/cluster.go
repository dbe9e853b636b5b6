package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"roomd/rooms"
	"roomd/rooms/cluster"
)

// clusterConfig is what -nats-url and its companions say: with a NATS URL
// roomd is one node of a cluster; without one it is a single node and
// needs nothing else running.
type clusterConfig struct {
	natsURL        string
	natsCreds      string
	natsUser       string
	natsPassword   string
	natsCA         string
	nodeName       string
	replicas       int
	historyPerRoom int
	callTimeout    time.Duration
	nodeTimeout    time.Duration
}

func (c *clusterConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server(s) with JetStream, comma separated (nats://host:4222): roomd runs as one node of a cluster sharing rooms, history, bans and rooms made through the admin API; empty: a single node")
	fs.StringVar(&c.natsCreds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&c.natsUser, "nats-user", "", "NATS user name (or put user:password@ in -nats-url)")
	fs.StringVar(&c.natsPassword, "nats-password", "", "NATS password of -nats-user")
	fs.StringVar(&c.natsCA, "nats-ca", "", "PEM file of the CA that signed the NATS servers' TLS certificates (tls:// URLs)")
	fs.StringVar(&c.nodeName, "node-name", "", "this node's name, in its client ids and the admin API (lowercase letters, digits and -); default: the host name and a short random suffix with -nats-url, \"local\" without")
	fs.IntVar(&c.replicas, "nats-replicas", 1, "NATS servers that keep each copy of the room stream and buckets: 1 for one NATS server, 3 for a NATS cluster")
	fs.IntVar(&c.historyPerRoom, "nats-history-per-room", 1000, "with -nats-url, messages the stream keeps per room at most (a room's history_size is capped by it)")
	fs.DurationVar(&c.nodeTimeout, "cluster-node-timeout", 10*time.Second, "with -nats-url, how long a node may stay silent (nodes heartbeat every second) before the others take it for dead and remove its members from their rooms")
	fs.DurationVar(&c.callTimeout, "cluster-call-timeout", 2*time.Second, "with -nats-url, the longest an admin call waits for other nodes (the call's own deadline, if sooner, wins); those that have not answered are listed as unreachable_nodes")
}

func (c clusterConfig) validate() error {
	if c.nodeName != "" {
		if err := rooms.ValidateNodeName(c.nodeName); err != nil {
			return fmt.Errorf("-node-name: %w", err)
		}
	}
	if c.natsURL == "" {
		if c.natsCreds != "" || c.natsUser != "" || c.natsPassword != "" || c.natsCA != "" {
			return fmt.Errorf("-nats-creds, -nats-user, -nats-password and -nats-ca need -nats-url")
		}
		return nil
	}
	switch {
	case c.replicas < 1 || c.replicas > 5:
		return fmt.Errorf("-nats-replicas must be 1 to 5, got %d", c.replicas)
	case c.historyPerRoom < 1 || c.historyPerRoom > rooms.MaxHistorySize:
		return fmt.Errorf("-nats-history-per-room must be 1 to %d, got %d", rooms.MaxHistorySize, c.historyPerRoom)
	case c.callTimeout <= 0:
		return fmt.Errorf("-cluster-call-timeout must be positive")
	case c.nodeTimeout < 2*time.Second:
		return fmt.Errorf("-cluster-node-timeout must be at least 2s (two heartbeats), got %v", c.nodeTimeout)
	}
	return nil
}

// node names this node: the flag, or a default that depends on the mode.
func (c clusterConfig) node() string {
	switch {
	case c.nodeName != "":
		return c.nodeName
	case c.natsURL != "":
		return cluster.DefaultNodeName()
	}
	return rooms.DefaultNodeName
}

// connect joins the cluster's bus: the NATS connection and the stream.
func (cfg config) connectCluster(ctx context.Context, name string, log *slog.Logger) (*cluster.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := cfg.cluster
	return cluster.Connect(ctx, cluster.Config{
		URL: c.natsURL, User: c.natsUser, Password: c.natsPassword, CredsFile: c.natsCreds, CAFile: c.natsCA,
		Name: name, CallTimeout: c.callTimeout, Log: log, Liveness: cluster.LivenessConfig{DeadAfter: c.nodeTimeout},
		Stream: cluster.StreamConfig{Replicas: c.replicas, HistoryPerRoom: c.historyPerRoom,
			MaxBytes: cfg.historyBytes, MaxMessageBytes: int(cfg.maxMessageBytes)},
	})
}
