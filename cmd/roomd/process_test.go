package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	roomdv1 "roomd/gen/roomd/v1"
)

// asRoomd, set in the environment, makes the test binary run roomd's main
// instead of the tests: a test starts it as a separate process, which it
// can freeze (SIGSTOP) or kill (SIGKILL) as an operator's machine would.
const asRoomd = "ROOMD_TEST_RUN_AS_ROOMD"

// roomdProcess is roomd running in a process of its own.
type roomdProcess struct {
	cmd      *exec.Cmd
	public   string // host:port
	grpcAddr string
	adminURL string
	admin    roomdv1.RoomServiceClient
	logs     *syncBuffer
	exited   chan struct{}
}

var serving = regexp.MustCompile(`msg="roomd serving".* websocket=wss?://([^/ ]+)/.* admin_grpc=(\S+) admin_rest=(https?://[^/ ]+)/`)

// startProcess runs roomd with test-friendly flags plus args in a new
// process, waits until it serves, and kills it when the test ends.
func startProcess(t *testing.T, args ...string) *roomdProcess {
	t.Helper()
	base := []string{"-listen", "127.0.0.1:0", "-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0", "-shutdown-timeout", "5s", "-drain-window", "0s", "-log-level", "debug"}
	cmd := exec.Command(os.Args[0], append(base, args...)...)
	cmd.Env = append(os.Environ(), asRoomd+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &roomdProcess{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			if m := serving.FindStringSubmatch(line); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("roomd process log:\n%s", p.logs.String())
		}
	})
	select {
	case m := <-found:
		p.public, p.grpcAddr, p.adminURL = m[1], m[2], m[3]
	case <-p.exited:
		t.Fatalf("roomd exited before serving:\n%s", p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("roomd did not serve within 60s:\n%s", p.logs.String())
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.admin = roomdv1.NewRoomServiceClient(conn)
	return p
}

func (p *roomdProcess) signal(sig syscall.Signal) {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit, at most d.
func (p *roomdProcess) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("roomd did not exit within %v", d)
	}
}

// server is p as the tests' helpers take a server (dial, dialSession).
func (p *roomdProcess) server(node string) *testServer {
	return &testServer{public: p.public, adminURL: p.adminURL, grpcAddr: p.grpcAddr, node: node, admin: p.admin, logs: p.logs}
}
