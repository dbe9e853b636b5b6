package main

import (
	"context"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runCommand runs the roomd command with args and no environment until it
// returns, bounded by a minute.
func runCommand(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	code = roomd(ctx, args, func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		code, stdout, stderr := runCommand(t, arg)
		if code != 0 || !strings.HasPrefix(stdout, "Usage: roomd") || stderr != "" {
			t.Errorf("%s: exit %d, stdout %.40q, stderr %q; want 0, the usage on stdout, nothing on stderr", arg, code, stdout, stderr)
		}
		if !strings.Contains(stdout, "Exit codes: 0") || !strings.Contains(stdout, "always may") {
			t.Errorf("%s: the usage does not list the exit codes or say that roomd's own pages may always connect", arg)
		}
	}
}

// Every refusal to start is one line, "roomd: ...", and exit code 2.
func TestCannotStartIsOneLineAndExitCode2(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-auto-create", "false"}, `roomd: unexpected arguments ["false"]: boolean flags take their value after "=": -auto-create=false`},
		{[]string{"extra"}, `roomd: unexpected arguments ["extra"]: roomd takes flags only (-h lists them)`},
		{[]string{"-bogus"}, `roomd: flag provided but not defined: -bogus (roomd -h lists the flags)`},
		{[]string{"-max-conns-per-ip", "abc"}, `roomd: invalid value "abc" for flag -max-conns-per-ip: parse error (roomd -h lists the flags)`},
		{[]string{"-allowed-origins", "localhost:8000"}, `roomd: -allowed-origins "localhost:8000": an origin is scheme://host[:port]`},
		{[]string{"-allowed-origins", "https://app.example.com/chat"}, `roomd: -allowed-origins "https://app.example.com/chat": an origin has no path`},
		{[]string{"-max-message-bytes", "0"}, "roomd: -max-message-bytes must be positive"},
		{[]string{"-jwt-public-key", "/nonexistent/issuer.pem"}, "roomd: -jwt-public-key: open /nonexistent/issuer.pem"},
		{[]string{"-listen", busy.Addr().String()}, "roomd: -listen: listen tcp " + busy.Addr().String()},
	} {
		code, stdout, stderr := runCommand(t, append([]string{"-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		// Log lines may come first (development mode's warning, when roomd
		// got as far as running); the error itself is one line.
		errLines := slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, "time=") })
		if code != 2 || stdout != "" || !strings.HasPrefix(last, tc.want) || len(errLines) != 1 || strings.Contains(stderr, "level=ERROR") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and a last line starting %q", tc.args, code, stderr, tc.want)
		}
	}
}

// The start line names addresses a person can open: localhost for a
// wildcard listener, the demo page, both WebSocket endpoints, the REST base.
func TestStartLineHasClickableAddresses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- roomd(ctx, []string{"-listen", ":0", "-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0"}, func(string) string { return "" }, &syncBuffer{}, &stderr)
	}()
	line := regexp.MustCompile(`msg="roomd serving" demo=http://localhost:(\d+)/ websocket=ws://localhost:(\d+)/ws/\{room_id\} client_protocol=ws://localhost:(\d+)/ws admin_grpc=127\.0\.0\.1:\d+ admin_rest=http://127\.0\.0\.1:\d+/v1/rooms `)
	eventually(t, "a start line with clickable addresses", func() bool { return line.MatchString(stderr.String()) })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after the context ended, want 0:\n%s", code, stderr.String())
	}
}
