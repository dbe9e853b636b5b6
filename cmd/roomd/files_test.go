//go:build linux

package main

// The open-file limit, for real: these tests lower this process's limit,
// start roomd in it, and fill its public listener with silent sockets held
// by a child process (this test binary again), so that only roomd's own
// descriptors count against the limit.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const holdSocketsEnv = "ROOMD_TEST_HOLD_SOCKETS" // "host:port n" for the child

// TestHelperHoldSilentSockets is the child: it opens n sockets that never
// send a byte, says so, and holds them until its stdin closes.
func TestHelperHoldSilentSockets(t *testing.T) {
	spec := os.Getenv(holdSocketsEnv)
	if spec == "" {
		t.Skip("run by holdSilentSockets in a child process")
	}
	addr, count, _ := strings.Cut(spec, " ")
	n, _ := strconv.Atoi(count)
	var conns []net.Conn
	for range n {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			fmt.Printf("failed: %v\n", err)
			return
		}
		conns = append(conns, conn)
	}
	fmt.Printf("holding %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// holdSilentSockets has a child process open n silent sockets to addr and
// returns once they are open; the child closes them when the test ends, or
// when release is called.
func holdSilentSockets(t *testing.T, addr string, n int) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldSilentSockets$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", holdSocketsEnv, addr, n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
	}
	t.Cleanup(release)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if want := fmt.Sprintf("holding %d\n", n); line != want {
		t.Fatalf("child: %q %v, want %q", line, err, want)
	}
	return release
}

// lowerFileLimit sets this process's open-file limit to n until the test
// ends, and fails if the process already holds too many files for the test
// to mean anything.
func lowerFileLimit(t *testing.T, n uint64, mostOpenNow int) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	if len(fds) > mostOpenNow {
		t.Fatalf("the test process holds %d files before the test; at most %d leave the test meaningful", len(fds), mostOpenNow)
	}
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max < n+1024 {
		t.Skipf("the hard open-file limit %d is too low for the silent sockets' child", orig.Max)
	}
	lowered := orig
	lowered.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restoring the open-file limit: %v", err)
		}
	})
}

// With the default -max-conns (the open-file limit less 256), a public
// listener full of sockets that never send anything leaves the admin API
// answering, however many there are: new /healthz connections, 50 admin connections at once (each
// takes two files here, the test's end and roomd's) and a new gRPC health
// check; a WebSocket client is refused with 503, not left hanging.
func TestAdminAnswersWhileThePublicListenerIsFull(t *testing.T) {
	const fileLimit, publicLimit = 320, 320 - 256
	lowerFileLimit(t, fileLimit, 100)
	s := startServer(t, "-read-header-timeout", "1m")
	release := holdSilentSockets(t, s.public, fileLimit+16) // more than roomd has files

	eventually(t, "the public listener is full", func() bool {
		code, body := upgradeStatus(t, s, "r", nil)
		return code == 503 && body == fmt.Sprintf("server at its limit of %d connections\n", publicLimit)
	})
	for i := range 20 {
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(s.adminURL + "/healthz")
		if err != nil {
			t.Fatalf("/healthz #%d while the public listener is full: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz #%d: %d %q", i, resp.StatusCode, body)
		}
	}

	held := &http.Transport{MaxIdleConnsPerHost: 50}
	defer held.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second, Transport: held}
			resp, err := client.Get(s.adminURL + "/v1/rooms")
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("one of 50 admin connections at once: %v", err)
	}

	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health while the public listener is full: %v %v", resp, err)
	}
	if strings.Contains(s.logs.String(), "out of open files") {
		t.Errorf("roomd ran out of files:\n%s", s.logs.String())
	}

	release()
	eventually(t, "the public listener takes clients again", func() bool {
		code, _ := upgradeStatus(t, s, "r", nil)
		return code == 101
	})
}

// Running out of files is a warning, logged once for a burst of failed
// accepts, naming the listener: the public one when -max-conns is above
// what the file limit allows, an admin one when admin connections eat the
// reserve.
func TestRunningOutOfFilesIsAWarning(t *testing.T) {
	const fileLimit = 320
	const warning = `level=WARN msg="out of open files: accept failed, and no listener can take a connection until some close; lower -max-conns or raise the file limit"`
	for _, tc := range []struct {
		name     string
		args     []string
		listener string
	}{
		{"public", []string{"-max-conns", "100000"}, "listen"},
		{"admin", nil, "admin-http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lowerFileLimit(t, fileLimit, 100)
			s := startServer(t, append([]string{"-read-header-timeout", "1m"}, tc.args...)...)
			addr, maxConns := s.public, "100000"
			if tc.listener == "admin-http" {
				holdSilentSockets(t, s.public, fileLimit+16)
				eventually(t, "the public listener is full", func() bool {
					code, _ := upgradeStatus(t, s, "r", nil)
					return code == 503
				})
				addr, maxConns = strings.TrimPrefix(s.adminURL, "http://"), strconv.Itoa(fileLimit-256)
			}
			release := holdSilentSockets(t, addr, fileLimit)
			eventually(t, "running out of files is logged", func() bool { return strings.Contains(s.logs.String(), warning) })
			eventually(t, "accept has failed again", func() bool {
				return strings.Count(s.logs.String(), "Accept error") >= 3 // at debug, from the server
			})
			if got := strings.Count(s.logs.String(), warning); got != 1 {
				t.Errorf("the warning was logged %d times, want once per 10 s:\n%s", got, s.logs.String())
			}
			want := fmt.Sprintf(`%s listener=%s error="accept tcp %s: accept4: too many open files" failures=1 max_conns=%s`, warning, tc.listener, addr, maxConns)
			if !strings.Contains(s.logs.String(), want) {
				t.Errorf("the warning does not say what failed; want\n%s\nin\n%s", want, s.logs.String())
			}
			release()
			eventually(t, "the listener takes connections again", func() bool {
				// Dialing fails while this process is out of files too.
				if tc.listener == "admin-http" {
					client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
					resp, err := client.Get(s.adminURL + "/healthz")
					if err == nil {
						resp.Body.Close()
					}
					return err == nil && resp.StatusCode == 200
				}
				ws, _, err := s.tryDial("r", "")
				if err == nil {
					ws.Close()
				}
				return err == nil
			})
		})
	}
}
