package main

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"roomd/rooms/admin"
)

// -version prints one line and exits 0 without starting anything: given
// an address in use, a roomd that tried to listen would exit 2.
func TestVersionPrintsOneLineAndExits(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	want := "roomd " + admin.BuildVersion() + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, args := range [][]string{{"-version"}, {"--version"}} {
		args = append(args, "-listen", busy.Addr().String())
		code, stdout, stderr := runCommand(t, args...)
		if code != 0 || stdout != want || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0, %q, nothing on stderr", args, code, stdout, stderr, want)
		}
	}
	code, stdout, _ := runCommand(t, "-h")
	if code != 0 || !strings.Contains(stdout, "-version") {
		t.Errorf("-h: exit %d, and the usage does not list -version", code)
	}
}

// ROOMD_VERSION is not read: left in a service's environment it would
// otherwise stop roomd from serving.
func TestVersionHasNoEnvironmentVariable(t *testing.T) {
	for _, v := range []string{"true", "v1.2.3"} {
		_, err := parseConfig(nil, func(k string) string {
			if k == "ROOMD_VERSION" {
				return v
			}
			return ""
		}, nil)
		if err != nil {
			t.Errorf("ROOMD_VERSION=%s: %v; want it ignored", v, err)
		}
	}
}

// The release build sets the version with the linker, as the Dockerfile
// does; the binary built that way reports it.
func TestVersionSetByLinkerFlag(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH, so this test cannot build roomd with -ldflags -X: ", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "roomd")
	build := exec.CommandContext(ctx, goTool, "build", "-ldflags", "-X roomd/rooms/admin.version=v9.9.9-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	if err != nil {
		t.Fatalf("roomd -version: %v", err)
	}
	if want := regexp.MustCompile(`^roomd v9\.9\.9-test go1\.\S+ \S+/\S+\n$`); !want.Match(out) {
		t.Errorf("roomd -version printed %q, want roomd v9.9.9-test and the Go version", out)
	}
}
