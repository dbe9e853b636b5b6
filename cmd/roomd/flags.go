package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"roomd/rooms"
	"roomd/wsedge"
)

// config is everything roomd can be told at start.
type config struct {
	listen          string
	adminGRPC       string
	adminHTTP       string
	autoCreate      bool
	maxMessageBytes int64
	maxQueueBytes   int
	pingInterval    time.Duration
	pongTimeout     time.Duration
	writeTimeout    time.Duration
	shutdownTimeout time.Duration
	logLevel        string
}

// envPrefix names each flag's environment variable: -max-queue-bytes is
// ROOMD_MAX_QUEUE_BYTES. A flag on the command line wins over the variable.
const envPrefix = "ROOMD_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags from args and, for flags not given there, from
// the environment through getenv.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("roomd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", ":8080", "public HTTP/WebSocket address (GET /ws/{room_id})")
	fs.StringVar(&cfg.adminGRPC, "admin-grpc", "127.0.0.1:9090", "admin gRPC address")
	fs.StringVar(&cfg.adminHTTP, "admin-http", "127.0.0.1:9091", "admin REST gateway address (also /healthz and /openapi.json)")
	fs.BoolVar(&cfg.autoCreate, "auto-create", true, "a client joining a missing room creates it; when false the upgrade is refused with 404")
	fs.Int64Var(&cfg.maxMessageBytes, "max-message-bytes", wsedge.DefaultMaxMessageBytes, "largest message a client may send; a bigger one closes it with 1009")
	fs.IntVar(&cfg.maxQueueBytes, "max-queue-bytes", rooms.DefaultMaxQueueBytes, "bound of each client's send queue; a client over it is closed with 4002")
	fs.DurationVar(&cfg.pingInterval, "ping-interval", wsedge.DefaultPingInterval, "how often the server pings each client")
	fs.DurationVar(&cfg.pongTimeout, "pong-timeout", wsedge.DefaultPongTimeout, "a client silent for ping-interval+pong-timeout is dropped")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", wsedge.DefaultWriteTimeout, "bound on every socket write; a client slower than that is closed with 4002")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long clients get to finish their close handshake")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: roomd [flags]\n\nEvery flag can also be set by an environment variable: -max-queue-bytes is %s.\n\n", envName("max-queue-bytes"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if given[f.Name] || v == "" || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	return cfg, cfg.validate()
}

func (cfg config) validate() error {
	switch {
	case cfg.maxMessageBytes <= 0:
		return fmt.Errorf("-max-message-bytes must be positive, got %d", cfg.maxMessageBytes)
	case cfg.maxQueueBytes <= 0:
		return fmt.Errorf("-max-queue-bytes must be positive, got %d", cfg.maxQueueBytes)
	case cfg.pingInterval <= 0, cfg.pongTimeout <= 0, cfg.writeTimeout <= 0, cfg.shutdownTimeout <= 0:
		return fmt.Errorf("-ping-interval, -pong-timeout, -write-timeout and -shutdown-timeout must be positive")
	}
	if _, err := parseLogLevel(cfg.logLevel); err != nil {
		return err
	}
	return nil
}
