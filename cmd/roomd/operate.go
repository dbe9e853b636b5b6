package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/cluster"
)

// opsConfig is how roomd is run: its logs, and how it stops.
type opsConfig struct {
	logFormat   string
	drainGrace  time.Duration
	drainWindow time.Duration
}

func (o *opsConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&o.logFormat, "log-format", "text", "text (key=value) or json (one object per line)")
	fs.DurationVar(&o.drainGrace, "drain-grace", 0, "on SIGTERM, how long roomd stays up unready (/readyz 503) and still accepting before it stops taking connections: a load balancer's time to notice")
	fs.DurationVar(&o.drainWindow, "drain-window", 5*time.Second, "then, the time over which clients are closed with 1001, evenly, so that they do not all reconnect at once (0: all at once); -shutdown-timeout more is given to their close handshakes")
}

func (o opsConfig) validate() error {
	switch {
	case o.logFormat != "text" && o.logFormat != "json":
		return fmt.Errorf("-log-format %q: want text or json", o.logFormat)
	case o.drainGrace < 0, o.drainWindow < 0:
		return fmt.Errorf("-drain-grace and -drain-window must not be negative")
	}
	return nil
}

// newLogger is the log roomd writes to w, in the configured format.
func (o opsConfig) newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// readiness is whether this node should be given new connections: not
// once it is draining, and not while its NATS connection is down (it could
// not publish a message nor carry a new room).
type readiness struct {
	draining atomic.Bool
	node     *cluster.Node // nil without NATS
}

// state is "ready", or why not.
func (r *readiness) state() (ready bool, why string) {
	switch {
	case r.draining.Load():
		return false, "draining"
	case r.node != nil && !r.node.Connected():
		return false, "NATS unreachable"
	}
	return true, "ready"
}

func (r *readiness) ready() bool { ok, _ := r.state(); return ok }

// ServeHTTP answers GET /readyz: 200 "ready", or 503 and why not. Load
// balancers probe it on the public listener, orchestrators on the admin
// one; neither needs a token.
func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ok, why := r.state()
	if !ok {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, why)
}

// healthInterval is how often the gRPC health service is brought in line
// with readiness (NATS coming and going).
const healthInterval = 250 * time.Millisecond

// reportHealth keeps the gRPC health service's status ("" and RoomService)
// what readiness says, until ctx ends.
func (r *readiness) reportHealth(ctx context.Context, hs *health.Server) {
	last := true
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		if now := r.ready(); now != last {
			status := healthpb.HealthCheckResponse_NOT_SERVING
			if now {
				status = healthpb.HealthCheckResponse_SERVING
			}
			hs.SetServingStatus("", status)
			hs.SetServingStatus(roomdv1.RoomService_ServiceDesc.ServiceName, status)
			last = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// withReadyz serves GET /readyz from r and everything else from next.
func withReadyz(r *readiness, next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", r)
	mux.Handle("/", next)
	return mux
}

// drainGrace is the first step of a drain (SIGTERM), once roomd has turned
// not ready: it goes on serving everything, new connections included, for
// grace, so that a load balancer probing readiness stops sending clients
// here before the listener closes. A listener failing meanwhile ends it
// early, with its error.
func drainGrace(grace time.Duration, failed <-chan error, log *slog.Logger, clients int) error {
	log.Info("draining: not ready; serving on until the grace period ends", "grace", grace, "clients", clients)
	if grace <= 0 {
		return nil
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-failed:
		log.Error("listener failed while draining; shutting down", "error", err)
		return err
	}
}
