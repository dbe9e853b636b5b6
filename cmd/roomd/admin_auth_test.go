package main

// The admin token, end to end: what an operator sees over gRPC and REST
// with no token, a wrong one and the right one, and what stays open.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	roomdv1 "roomd/gen/roomd/v1"
)

const testAdminToken = "s3cret-Admin_token.42"

// rawAdminConn is a gRPC connection to s that sends no token of its own.
func rawAdminConn(t *testing.T, s *testServer) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// withAuthorization adds an authorization metadata value to ctx.
func withAuthorization(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

// restWithAuthorization calls the REST gateway with the Authorization header
// set to value (none if empty) and returns the response and its body.
func restWithAuthorization(t *testing.T, s *testServer, method, path, value string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.adminURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.Header.Set("Authorization", value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestAdminTokenOverGRPC(t *testing.T) {
	s := startServer(t, "-admin-token", testAdminToken)
	rooms := roomdv1.NewRoomServiceClient(rawAdminConn(t, s))
	req := &roomdv1.ListRoomsRequest{}

	_, err := rooms.ListRooms(adminContext(t), req)
	checkGRPCError(t, "ListRooms without a token", err, codes.Unauthenticated, "missing bearer token", "authorization: Bearer")
	_, err = rooms.ListRooms(withAuthorization(adminContext(t), "Bearer wrong"), req)
	checkGRPCError(t, "ListRooms with a wrong token", err, codes.Unauthenticated, "invalid bearer token")
	_, err = rooms.ListRooms(withAuthorization(adminContext(t), "Bearer "+testAdminToken+"x"), req)
	checkGRPCError(t, "ListRooms with a longer token", err, codes.Unauthenticated, "invalid bearer token")
	_, err = rooms.ListRooms(withAuthorization(adminContext(t), testAdminToken), req)
	checkGRPCError(t, "ListRooms with the token but no scheme", err, codes.Unauthenticated, "missing bearer token", "Bearer <token>")
	_, err = rooms.ListRooms(withAuthorization(adminContext(t), "Basic "+testAdminToken), req)
	checkGRPCError(t, "ListRooms with Basic", err, codes.Unauthenticated, "missing bearer token")
	_, err = rooms.ListRooms(withAuthorization(withAuthorization(adminContext(t), "Bearer "+testAdminToken), "Bearer other"), req)
	checkGRPCError(t, "ListRooms with two tokens", err, codes.Unauthenticated, "more than one")

	// A refused call changed nothing.
	_, err = rooms.CreateRoom(adminContext(t), &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	checkGRPCError(t, "CreateRoom without a token", err, codes.Unauthenticated)
	if _, err := s.admin.GetRoom(adminContext(t), &roomdv1.GetRoomRequest{RoomId: "lobby"}); err == nil {
		t.Error("a refused CreateRoom made the room")
	}

	// The right token, with the scheme in any case.
	for _, value := range []string{"Bearer " + testAdminToken, "bearer " + testAdminToken} {
		if _, err := rooms.CreateRoom(withAuthorization(adminContext(t), value), &roomdv1.CreateRoomRequest{RoomId: "lobby-" + value[:1]}); err != nil {
			t.Errorf("CreateRoom with %q: %v", value, err)
		}
	}

	// Streams are checked too.
	stream, err := rooms.WatchRoom(adminContext(t), &roomdv1.WatchRoomRequest{RoomId: "lobby-B"})
	if err == nil {
		_, err = stream.Recv()
	}
	checkGRPCError(t, "WatchRoom without a token", err, codes.Unauthenticated, "missing bearer token")
	watch, err := s.admin.WatchRoom(adminContext(t), &roomdv1.WatchRoomRequest{RoomId: "lobby-B"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatalf("WatchRoom with the token: %v", err)
	}
	ws := s.dial(t, "lobby-B", "user=ann")
	if ev := recvEvent(t, watch); ev.GetClientJoined().GetClient().GetUserId() != "ann" {
		t.Errorf("WatchRoom with the token: first event %v, want ann joining", ev)
	}
	ws.Close()
}

// Health and server reflection answer without the token: grpcurl asks
// reflection before any call, a health check included, and the schema it
// gives is public anyway (/openapi.json). The RoomService itself stays
// closed.
func TestAdminTokenLeavesHealthAndReflectionOpen(t *testing.T) {
	s := startServer(t, "-admin-token", testAdminToken)
	conn := rawAdminConn(t, s)

	resp, err := healthpb.NewHealthClient(conn).Check(adminContext(t), &healthpb.HealthCheckRequest{Service: "roomd.v1.RoomService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check without a token: %v %v, want SERVING", resp, err)
	}

	// What grpcurl does for "list" and before calling a method: list the
	// services, then fetch the file that defines one.
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(adminContext(t))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("reflection without a token: send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("reflection without a token: %v", err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			t.Fatalf("reflection without a token: error response %v", e)
		}
		return resp
	}
	var names []string
	for _, svc := range ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	for _, want := range []string{"roomd.v1.RoomService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection without a token lists %q, want %q among them", names, want)
		}
	}
	files := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "roomd.v1.RoomService"}}).
		GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(files) == 0 {
		t.Error("reflection without a token: no file defines roomd.v1.RoomService")
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}

	// The service reflection describes still needs the token.
	_, err = roomdv1.NewRoomServiceClient(conn).ListRooms(adminContext(t), &roomdv1.ListRoomsRequest{})
	checkGRPCError(t, "ListRooms without a token", err, codes.Unauthenticated, "missing bearer token")
}

func TestAdminTokenOverREST(t *testing.T) {
	s := startServer(t, "-admin-token", testAdminToken)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"}) // the harness sends the token

	for _, tc := range []struct {
		name, authorization, mention string
	}{
		{"no header", "", "missing bearer token"},
		{"wrong token", "Bearer nope", "invalid bearer token"},
		{"not a bearer token", "Basic " + testAdminToken, "missing bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/rooms", "/v1/rooms/lobby", "/v1/bans"} {
				resp, body := restWithAuthorization(t, s, "GET", path, tc.authorization)
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, tc.mention) || !strings.Contains(body, `"code":16`) {
					t.Errorf("GET %s: HTTP %d %s, want 401 with code 16 and %q", path, resp.StatusCode, body, tc.mention)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="roomd admin"`) ||
					strings.Contains(got, "invalid_token") != (tc.authorization != "") {
					t.Errorf("GET %s: WWW-Authenticate %q, want a Bearer challenge, with error=invalid_token when a token was sent", path, got)
				}
			}
			// A stream is refused before it starts.
			resp, body := restWithAuthorization(t, s, "GET", "/v1/rooms/lobby/events", tc.authorization)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, tc.mention) {
				t.Errorf("GET /v1/rooms/lobby/events: HTTP %d %s, want 401 with %q", resp.StatusCode, body, tc.mention)
			}
		})
	}

	// With the header, the gateway passes the token through.
	resp, body := restWithAuthorization(t, s, "GET", "/v1/rooms/lobby", "Bearer "+testAdminToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"lobby"`) {
		t.Errorf("GET /v1/rooms/lobby with the token: HTTP %d %s", resp.StatusCode, body)
	}
	// A stream too: the harness's token travels in the header.
	w := <-startRESTWatch(t, s, "lobby")
	if w == nil || w.resp.StatusCode != http.StatusOK {
		t.Fatalf("REST WatchRoom with the token: %+v", w)
	}
	s.dial(t, "lobby", "user=ann")
	if ev := w.next(t); ev.GetClientJoined().GetClient().GetUserId() != "ann" {
		t.Errorf("REST WatchRoom with the token: first event %v, want ann joining", ev)
	}

	// Health, the API document and the index stay open.
	for _, path := range []string{"/healthz", "/openapi.json", "/"} {
		if resp, body := restWithAuthorization(t, s, "GET", path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: HTTP %d %s, want 200", path, resp.StatusCode, body)
		}
	}
}

func TestAdminTokenFromFileAndEnvironment(t *testing.T) {
	t.Run("file, trimmed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, []byte("  from-a-file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s := startServer(t, "-admin-token-file", path)
		_, err := roomdv1.NewRoomServiceClient(rawAdminConn(t, s)).ListRooms(adminContext(t), &roomdv1.ListRoomsRequest{})
		checkGRPCError(t, "ListRooms without a token", err, codes.Unauthenticated)
		s.token = "from-a-file"
		if _, err := s.admin.ListRooms(adminContext(t), &roomdv1.ListRoomsRequest{}); err != nil {
			t.Errorf("ListRooms with the file's token: %v", err)
		}
	})

	t.Run("environment", func(t *testing.T) {
		cfg, err := parseConfig(nil, func(k string) string {
			return map[string]string{"ROOMD_ADMIN_TOKEN": "from-env", "ROOMD_ADMIN_GRPC": "0.0.0.0:9090"}[k]
		}, io.Discard)
		if err != nil {
			t.Fatalf("a token from ROOMD_ADMIN_TOKEN should allow a public admin address: %v", err)
		}
		if cfg.adminToken != "from-env" {
			t.Errorf("admin token %q, want the environment's", cfg.adminToken)
		}
	})
}

// runFails runs roomd with args and requires it to refuse to start with an
// error containing want.
func runFails(t *testing.T, want string, args ...string) {
	t.Helper()
	base := []string{"-listen", "127.0.0.1:0", "-admin-grpc", "127.0.0.1:0", "-admin-http", "127.0.0.1:0"}
	cfg, err := parseConfig(append(base, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(listeners) { cancel() })
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("roomd %q: run returned %v, want a refusal mentioning %q", args, err, want)
	}
}

func TestAdminTokenFileProblemsRefuseToStart(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	spaced := filepath.Join(dir, "spaced")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	os.WriteFile(spaced, []byte("two words\n"), 0o600)
	runFails(t, "-admin-token-file", "-admin-token-file", filepath.Join(dir, "missing"))
	runFails(t, "is empty", "-admin-token-file", empty)
	runFails(t, "visible ASCII", "-admin-token-file", spaced)
}

func TestAdminSecurityFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" means accepted
	}{
		{args: []string{"-admin-token", "a", "-admin-token-file", "/dev/null"}, want: "-admin-token and -admin-token-file"},
		{args: []string{"-admin-token", "has space"}, want: "-admin-token: the token must be visible ASCII"},
		{args: []string{"-tls-cert", "c.pem"}, want: "-tls-cert and -tls-key"},
		{args: []string{"-tls-key", "k.pem"}, want: "-tls-cert and -tls-key"},
		{args: []string{"-admin-grpc", ":9090"}, want: `-admin-grpc ":9090" is not a loopback address`},
		{args: []string{"-admin-grpc", "0.0.0.0:9090"}, want: "-admin-grpc"},
		{args: []string{"-admin-grpc", "[::]:9090"}, want: "-admin-grpc"},
		{args: []string{"-admin-http", "10.1.2.3:9091"}, want: `-admin-http "10.1.2.3:9091"`},
		{args: []string{"-admin-http", "admin.example.com:9091"}, want: "-admin-http"},
		{args: []string{"-admin-http", ":9091"}, want: "-admin-insecure"},
		{args: []string{"-admin-http", ":9091", "-admin-insecure"}},
		{args: []string{"-admin-grpc", ":9090", "-admin-token", "t"}},
		{args: []string{"-admin-grpc", ":9090", "-admin-token-file", "/some/file"}},
		{args: []string{"-admin-grpc", "localhost:9090", "-admin-http", "[::1]:9091"}},
		{args: []string{"-tls-cert", "c.pem", "-tls-key", "k.pem"}},
	} {
		_, err := parseConfig(tc.args, func(string) string { return "" }, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: refused with %v, want accepted", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090":         true,
		"127.1.2.3:9090":         true,
		"localhost:9090":         true,
		"LOCALHOST:0":            true,
		"[::1]:9090":             true,
		"[::ffff:127.0.0.1]:909": true,
		"[::1%lo]:9090":          true,
		":9090":                  false,
		"0.0.0.0:9090":           false,
		"[::]:9090":              false,
		"10.0.0.1:9090":          false,
		"[2001:db8::1]:9090":     false,
		"example.com:9090":       false,
		"localhost.evil.com:1":   false,
		"127.0.0.1":              false, // no port: not a listen address at all
		"":                       false,
	} {
		if got := isLoopbackAddr(addr); got != want {
			t.Errorf("isLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
