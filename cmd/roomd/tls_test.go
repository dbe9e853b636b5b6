package main

// TLS on every listener, end to end, with a certificate made by the test:
// a wss:// client, a gRPC client with TLS credentials, https REST (a stream
// included, which reaches gRPC through the in-process listener), and
// plaintext refused everywhere.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	roomdv1 "roomd/gen/roomd/v1"
)

// selfSignedCert writes a certificate for 127.0.0.1 and localhost and its
// key to PEM files, and returns them with a pool that trusts the
// certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	pair := newCertPair(t, 1)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pair.cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pair.key, 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(pair.parsed)
	return certFile, keyFile, roots
}

func TestTLSOnEveryListener(t *testing.T) {
	certFile, keyFile, roots := selfSignedCert(t)
	s := startServer(t, "-tls-cert", certFile, "-tls-key", keyFile, "-admin-token", testAdminToken)
	clientTLS := &tls.Config{RootCAs: roots}
	adminURL := "https://" + strings.TrimPrefix(s.adminURL, "http://")

	// gRPC with TLS credentials and the token.
	conn, err := grpc.NewClient(s.grpcAddr, append(tokenOptions(func() string { return testAdminToken }),
		grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := roomdv1.NewRoomServiceClient(conn)
	ctx := adminContext(t)
	if _, err := admin.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "lobby"}); err != nil {
		t.Fatalf("CreateRoom over TLS: %v", err)
	}

	// ListNodes gives the public listener's https:// URL.
	nodes, err := admin.ListNodes(ctx, &roomdv1.ListNodesRequest{})
	if err != nil || len(nodes.GetNodes()) != 1 || nodes.GetNodes()[0].GetPublicUrl() != "https://"+s.public {
		t.Errorf("ListNodes over TLS: %v %v, want public_url https://%s", nodes, err, s.public)
	}

	// A wss:// client relays through the room.
	dialer := websocket.Dialer{TLSClientConfig: clientTLS, HandshakeTimeout: 5 * time.Second}
	ws, _, err := dialer.Dial("wss://"+s.public+"/ws/lobby?user=ann", nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.Close()
	send(t, ws, websocket.TextMessage, "hello over wss")
	expectFrame(t, ws, websocket.TextMessage, "hello over wss")
	clients, err := admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "lobby"})
	if err != nil || len(clients.GetClients()) != 1 || clients.GetClients()[0].GetUserId() != "ann" {
		t.Fatalf("ListClients over TLS: %v %v, want ann", clients, err)
	}

	// https REST with the token, HTTP/2 included.
	transport := &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	do := func(ctx context.Context, method, path, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, adminURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s over https: %v", method, path, err)
		}
		return resp
	}
	resp := do(ctx, "POST", "/v1/rooms/lobby/messages", `{"text":"over https"}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Errorf("POST over https: HTTP %d %s, TLS %v; want 200 over HTTP/2 and TLS", resp.StatusCode, resp.Proto, resp.TLS != nil)
	}
	expectFrame(t, ws, websocket.TextMessage, "over https")

	// A REST stream over https: the gateway reaches gRPC in process.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch := do(watchCtx, "GET", "/v1/rooms/lobby/events", "")
	defer watch.Body.Close()
	if watch.StatusCode != http.StatusOK {
		t.Fatalf("GET events over https: HTTP %d", watch.StatusCode)
	}
	bob, _, err := dialer.Dial("wss://"+s.public+"/ws/lobby?user=bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	lines := bufio.NewScanner(watch.Body)
	if !lines.Scan() {
		t.Fatalf("event stream over https ended: %v", lines.Err())
	}
	var line struct {
		Result json.RawMessage `json:"result"`
	}
	var ev roomdv1.WatchRoomResponse
	if err := json.Unmarshal(lines.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(line.Result, &ev); err != nil || ev.GetClientJoined().GetClient().GetUserId() != "bob" {
		t.Errorf("first event over https: %s (%v), want bob joining", lines.Bytes(), err)
	}

	// /healthz stays open, over https.
	health, err := client.Get(adminURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	health.Body.Close()
	if health.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz over https: HTTP %d", health.StatusCode)
	}

	// Plaintext gets nowhere on any listener.
	if plain, _, err := websocket.DefaultDialer.Dial("ws://"+s.public+"/ws/lobby?user=eve", nil); err == nil {
		plain.Close()
		t.Error("a ws:// dial to the TLS listener succeeded")
	}
	if resp, err := http.Get(s.adminURL + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain http to the admin listener got 200")
		}
	}
	plainConn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plainConn.Close()
	shortCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := roomdv1.NewRoomServiceClient(plainConn).ListRooms(shortCtx, &roomdv1.ListRoomsRequest{}); err == nil {
		t.Error("a plaintext gRPC call to the TLS listener succeeded")
	}
	if clients, _ := admin.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "lobby"}); len(clients.GetClients()) != 2 {
		t.Errorf("lobby has %v, want only ann and bob", clients.GetClients())
	}
}

func TestTLSBadKeyPairRefusesToStart(t *testing.T) {
	certFile, _, _ := selfSignedCert(t)
	_, otherKey, _ := selfSignedCert(t)
	runFails(t, "-tls-cert/-tls-key", "-tls-cert", certFile, "-tls-key", otherKey)
	runFails(t, "-tls-cert/-tls-key", "-tls-cert", certFile, "-tls-key", filepath.Join(t.TempDir(), "missing.pem"))
}
