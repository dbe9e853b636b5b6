package main

import (
	"strings"
	"testing"
)

// TestHelp asks every command for -h: its usage on stdout, exit 0, and
// nothing asked of a server (there is none).
func TestHelp(t *testing.T) {
	r := offline(t, "-h")
	want(t, r, exitOK, "Usage: roomctl [global flags] <command>", "Exit codes:\n", "ROOMCTL_ADDR", "ROOMCTL_JWT_SECRET", "-tls-ca string")
	for _, c := range commands {
		if !strings.Contains(r.stdout, "\n  "+strings.TrimSpace(c.path+" "+c.args)+"  ") {
			t.Errorf("roomctl -h does not list %q", c.path)
		}
	}
	if r := offline(t); r.code != exitUsage || !strings.HasPrefix(r.stderr, "Usage: roomctl") || r.stdout != "" {
		t.Fatalf("roomctl alone:\n%v", r)
	}

	for _, c := range commands {
		t.Run(c.path, func(t *testing.T) {
			args := append(strings.Fields(c.path), "-h")
			want(t, offline(t, args...), exitOK, "Usage: "+c.synopsis()+"\n\n"+upperFirst(c.summary)+".\n", "roomctl -h describes them")
			// -help, and -h after arguments and global flags, too.
			args = append(strings.Fields(c.path), "x", "-o", "json", "-help")
			want(t, offline(t, args...), exitOK, "Usage: "+c.synopsis())
		})
	}
	want(t, offline(t, "kick", "user", "-h"), exitOK, "\nFlags:\n  -ban duration\n", "  -room string\n")
	for _, group := range []string{"rooms", "clients", "kick", "bans"} {
		want(t, offline(t, group, "-h"), exitOK, "Usage: roomctl "+group+" <command>", "  "+group+" ")
	}
}

// TestUsageErrors: each mistake exits 2 with one line that says what is
// wrong, before anything is asked of a server.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"room", "list"}, nil, `roomctl: unknown command "room" (roomctl -h lists the commands)`},
		{[]string{"rooms", "lst"}, nil, `roomctl: unknown command "rooms lst"`},
		{[]string{"rooms"}, nil, "roomctl: rooms needs a command, before its flags: list, get, create, delete (roomctl rooms -h)"},
		{[]string{"bans", "-o", "json", "list"}, nil, "roomctl: bans needs a command, before its flags: list, lift (roomctl bans -h)"},
		{[]string{"rooms", "get"}, nil, `roomctl: rooms get: got 0 arguments []; usage: roomctl rooms get <room> [flags] (-h for more)`},
		{[]string{"rooms", "get", "a", "b"}, nil, `got 2 arguments ["a" "b"]`},
		{[]string{"rooms", "list", "extra"}, nil, "usage: roomctl rooms list [flags]"},
		{[]string{"rooms", "create", "x", "-echo", "false"}, nil, `boolean flags take their value after "=": -echo=false`},
		{[]string{"rooms", "create", "x", "-metadata", "novalue"}, nil, `invalid value "novalue" for flag -metadata: want key=value`},
		{[]string{"rooms", "list", "-bogus"}, nil, "roomctl: flag provided but not defined: -bogus (roomctl rooms list -h lists the flags)"},
		{[]string{"-bogus", "nodes"}, nil, "roomctl: flag provided but not defined: -bogus (roomctl -h lists the flags)"},
		{[]string{"nodes", "-o", "yaml"}, nil, `roomctl: -o "yaml": want table or json`},
		{[]string{"nodes", "-timeout", "0s"}, nil, "roomctl: -timeout must be positive"},
		{[]string{"nodes"}, map[string]string{"ROOMCTL_TIMEOUT": "soon"}, `roomctl: ROOMCTL_TIMEOUT="soon": `},
		{[]string{"nodes", "-token-file", "/nonexistent/token"}, nil, "roomctl: -token-file: open /nonexistent/token"},
		{[]string{"rooms", "list", "-limit", "-1"}, nil, "roomctl: -limit must not be negative"},
		{[]string{"kick", "client", "c", "-ban", "1500ms"}, nil, "roomctl: -ban 1.5s: bans last whole seconds"},
		{[]string{"kick", "user", "u", "-ban", "-1h"}, nil, "roomctl: -ban must not be negative"},
		{[]string{"publish", "lobby"}, nil, "roomctl: no message: give text, - for text from stdin, or -file"},
		{[]string{"publish", "lobby", "hi", "-file", "f"}, nil, "roomctl: give the message as text or as -file, not both"},
		{[]string{"send", "c", "a", "b"}, nil, "usage: roomctl send <client-id> [text | -] [flags]"},
		{[]string{"watch", "lobby", "-epoch", "e"}, nil, "roomctl: -epoch is only for -since-seq"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := invocation{env: c.env}.run(t, c.args...)
			want(t, r, exitUsage, c.want)
			if strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Fatalf("want one line on stderr and nothing on stdout:\n%v", r)
			}
		})
	}
}

// TestGlobalFlagsAnywhere: global flags before the command, after it and
// after its arguments; a later one wins, and a flag wins over its variable.
func TestGlobalFlagsAnywhere(t *testing.T) {
	s := startRoomd(t)
	s.ok(t, "rooms", "create", "lobby")
	wrong := map[string]string{"ROOMCTL_ADDR": "127.0.0.1:1"}
	for _, args := range [][]string{
		{"-addr", s.grpcAddr, "-o", "json", "rooms", "get", "lobby"},
		{"rooms", "get", "-addr", s.grpcAddr, "-o", "json", "lobby"},
		{"rooms", "get", "lobby", "-addr", s.grpcAddr, "-o", "json"},
		{"-o", "table", "-addr", "127.0.0.1:1", "rooms", "get", "lobby", "-o", "json", "-addr", s.grpcAddr},
	} {
		want(t, invocation{env: wrong}.run(t, args...), exitOK, `"roomId": "lobby"`)
	}
}
