package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// action runs a command once its flags are parsed, with its positional
// arguments (already counted). ctx carries -timeout, except for a stream.
type action func(ctx context.Context, s *session, args []string) error

// command is one thing roomctl does: "rooms list", "kick user", "nodes".
type command struct {
	path             string // the words after roomctl
	args             string // the positional arguments, for usage lines
	minArgs, maxArgs int
	summary          string // one line, for roomctl -h
	help             string // more, for roomctl <path> -h; may be empty
	stream           bool   // runs until interrupted, so -timeout does not bound it
	// setup registers the command's own flags and returns what runs once
	// they are parsed.
	setup func(fs *flag.FlagSet) action
}

// commands in the order roomctl -h lists them.
var commands = []*command{
	roomsList, roomsGet, roomsCreate, roomsDelete,
	clientsList,
	kickClient, kickUser,
	bansList, bansLift,
	publishCmd, sendCmd,
	watchCmd,
	nodesCmd,
	gentokenCmd,
}

func (c *command) synopsis() string {
	return strings.TrimSpace("roomctl "+c.path+" "+c.args) + " [flags]"
}

// group is the first word of a two-word command ("rooms"), or "".
func (c *command) group() string {
	g, _, ok := strings.Cut(c.path, " ")
	if !ok {
		return ""
	}
	return g
}

func isGroup(name string) bool {
	return slices.ContainsFunc(commands, func(c *command) bool { return c.group() == name })
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}

// lookup finds the command args start with and returns the arguments
// after its name. flag.ErrHelp means a group's usage was asked for
// (roomctl rooms -h).
func lookup(args []string) (*command, []string, error) {
	path, rest := args[0], args[1:]
	if isGroup(path) {
		if len(rest) > 0 && isHelp(rest[0]) {
			return nil, nil, flag.ErrHelp
		}
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return nil, nil, usageErrorf("%s needs a command, before its flags: %s (roomctl %s -h)", path, strings.Join(groupCommands(path), ", "), path)
		}
		path, rest = path+" "+rest[0], rest[1:]
	}
	for _, c := range commands {
		if c.path == path {
			return c, rest, nil
		}
	}
	return nil, nil, usageErrorf("unknown command %q (roomctl -h lists the commands)", path)
}

// groupCommands are the second words of a group's commands (list, get, ...).
func groupCommands(group string) []string {
	var names []string
	for _, c := range commands {
		if c.group() == group {
			names = append(names, strings.TrimPrefix(c.path, group+" "))
		}
	}
	return names
}

// checkArgs counts the positional arguments.
func (c *command) checkArgs(args []string) error {
	if len(args) >= c.minArgs && len(args) <= c.maxArgs {
		return nil
	}
	msg := fmt.Sprintf("%s: got %d arguments %q; usage: %s (-h for more)", c.path, len(args), args, c.synopsis())
	// The usual cause of one too many: a boolean given its value after a
	// space (-echo false), which the flag package takes as the flag alone.
	if len(args) > c.maxArgs && (slices.Contains(args, "false") || slices.Contains(args, "true")) {
		msg += `; boolean flags take their value after "=": -echo=false`
	}
	return usageErrorf("%s", msg)
}

// printUsage is roomctl -h: the commands, the global flags, the variables
// and the exit codes.
func printUsage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprint(w, `Usage: roomctl [global flags] <command> [arguments] [flags]

roomctl drives roomd through its admin gRPC API.

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.path+" "+c.args), c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
"roomctl <command> -h" tells more of a command and lists its flags. Flags
may come before or after the arguments; "--" ends them.

Global flags, before or after the command:
`)
	top.SetOutput(w)
	top.PrintDefaults()
	var vars []string
	top.VisitAll(func(f *flag.Flag) {
		if f.Name != noEnv {
			vars = append(vars, envName(f.Name))
		}
	})
	fmt.Fprintf(w, `
Environment variables (a flag given on the command line wins):
  %s
      the global flags of the same names
  %s
      gentoken's -secret

%s`, strings.Join(vars, ", "), secretEnv, exitCodesHelp)
}

// printGroupUsage is roomctl rooms -h.
func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: roomctl %s <command> [arguments] [flags]\n\nCommands:\n", group)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		if c.group() == group {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.path+" "+c.args), c.summary)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n\"roomctl %s <command> -h\" tells more; roomctl -h lists the global flags.\n", group)
}

// printCommandUsage is roomctl <command> -h: the command's own flags; the
// global ones are in roomctl -h.
func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet, own map[string]bool) {
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", c.synopsis(), upperFirst(c.summary))
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	ownFlags := flag.NewFlagSet(c.path, flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if own[f.Name] {
			ownFlags.Var(f.Value, f.Name, f.Usage)
			ownFlags.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	if len(own) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		ownFlags.SetOutput(w)
		ownFlags.PrintDefaults()
	}
	fmt.Fprint(w, "\nThe global flags (-addr, -token, -token-file, -tls-ca, -timeout, -o) may come\nhere too; roomctl -h describes them, and the exit codes.\n")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
