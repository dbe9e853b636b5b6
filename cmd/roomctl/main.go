// Command roomctl drives a roomd server from a terminal or a script,
// through its admin gRPC API: rooms, clients, kicks and bans, messages,
// a room's events as they happen, the nodes; and gentoken mints client
// tokens for development. Run with -h for the commands; the README has a
// tour ("roomctl").
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, and returns its exit code; main only wires it
// to the process so that tests run it in process. Every failure is printed
// the same way, one line "roomctl: ..." on stderr. ctx ending stops a
// watch (Ctrl-C), and any call under way.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	var g globals
	top := flag.NewFlagSet("roomctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	switch err := top.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, top)
		return exitOK
	case err != nil:
		return fail(stderr, usageErrorf("%v (roomctl -h lists the flags)", err))
	}
	if top.NArg() == 0 {
		printUsage(stderr, top)
		return exitUsage
	}
	cmd, rest, err := lookup(top.Args())
	if errors.Is(err, flag.ErrHelp) {
		printGroupUsage(stdout, top.Arg(0))
		return exitOK
	}
	if err != nil {
		return fail(stderr, err)
	}

	fs := flag.NewFlagSet("roomctl "+cmd.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	action := cmd.setup(fs)
	own := flagNames(fs)
	// The global flags may come after the command too: the same values,
	// so a flag given in both places takes its later value.
	top.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	positional, err := parseInterspersed(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printCommandUsage(stdout, cmd, fs, own)
		return exitOK
	case err != nil:
		return fail(stderr, usageErrorf("%v (roomctl %s -h lists the flags)", err, cmd.path))
	}
	if err := cmd.checkArgs(positional); err != nil {
		return fail(stderr, err)
	}
	if err := g.fromEnv(getenv, top, fs); err != nil {
		return fail(stderr, err)
	}

	s := &session{globals: &g, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	defer s.close()
	callCtx := ctx
	if !cmd.stream {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	err = action(callCtx, s, positional)
	if cmd.stream && ctx.Err() != nil {
		return exitOK // interrupted: how a watch is meant to end
	}
	return fail(stderr, err)
}
