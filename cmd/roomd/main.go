// Command roomd is the room service: a WebSocket edge where browsers join
// rooms, and an admin API over gRPC and REST. Run with -h for its flags; the
// README has a tour.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes (listed in -h and the README).
const (
	exitOK          = 0 // stopped by a signal after a clean shutdown
	exitFailed      = 1 // a listener failed while serving
	exitCannotStart = 2 // bad configuration, or a listener could not be opened

	exitStoppedAtOnce = 3 // a second SIGINT or SIGTERM cut the drain short
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel() // drain: see run
		<-signals
		fmt.Fprintln(os.Stderr, "roomd: a second signal: stopping at once, without draining")
		os.Exit(exitStoppedAtOnce)
	}()
	os.Exit(roomd(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// roomd is the whole command: it parses the configuration, serves until ctx
// ends, and returns the exit code. Every error that stops it is printed the
// same way, "roomd: ..." on stderr.
func roomd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errVersion) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "roomd:", err)
		return exitCannotStart
	}
	level, _ := parseLogLevel(cfg.logLevel) // checked by parseConfig
	log := cfg.ops.newLogger(stderr, level)
	err = run(ctx, cfg, log, nil)
	var se *startError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se):
		fmt.Fprintln(stderr, "roomd:", se.err)
		return exitCannotStart
	}
	fmt.Fprintln(stderr, "roomd:", err)
	return exitFailed
}

// startError is a failure before roomd served anything: the configuration
// or the machine (an address in use) is at fault, not a running server.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("-log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}
