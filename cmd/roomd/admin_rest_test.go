package main

// The REST gateway refuses mistakes instead of guessing, and every error
// comes in one JSON shape: what a person typing curl commands sees.

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/admin"
)

// restRaw calls the admin HTTP listener with the harness's token (if any)
// and returns the response and its body.
func restRaw(t *testing.T, s *testServer, method, path, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.adminURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// checkErrorShape requires body to be the gateway's usual error object,
// {"code":...,"message":...,"details":[]}, with code, and returns its
// message.
func checkErrorShape(t *testing.T, what string, body []byte, code codes.Code) string {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("%s: body %q is not a JSON object: %v", what, body, err)
	}
	var got restErrorBody
	json.Unmarshal(body, &got)
	if len(fields) != 3 || fields["code"] == nil || fields["message"] == nil || string(fields["details"]) != "[]" || got.Code != code {
		t.Fatalf("%s: body %s, want {\"code\":%d,\"message\":...,\"details\":[]}", what, body, code)
	}
	return got.Message
}

func TestAdminRESTRefusesUnknownFields(t *testing.T) {
	s := startServer(t)

	checkRESTError(t, s, "POST", "/v1/rooms", `{"roomId":"typo","maxClient":5}`, http.StatusBadRequest, codes.InvalidArgument, `unknown field "maxClient"`)
	checkRESTError(t, s, "GET", "/v1/rooms/typo", "", http.StatusNotFound, codes.NotFound) // nothing was made
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	checkRESTError(t, s, "POST", "/v1/users/ann:kick", `{"roomId":"lobby","banSecond":60}`, http.StatusBadRequest, codes.InvalidArgument, `unknown field "banSecond"`)
	checkRESTError(t, s, "POST", "/v1/rooms/lobby/messages", `{"text":"hi","exclude":["x"]}`, http.StatusBadRequest, codes.InvalidArgument, `unknown field "exclude"`)

	// Both spellings of real fields still work.
	for body, id := range map[string]string{
		`{"roomId":"camel","maxClients":5}`:   "camel",
		`{"room_id":"snake","max_clients":5}`: "snake",
	} {
		var resp roomdv1.CreateRoomResponse
		restOK(t, s, "POST", "/v1/rooms", body, &resp)
		if resp.GetRoom().GetRoomId() != id || resp.GetRoom().GetMaxClients() != 5 {
			t.Errorf("POST /v1/rooms %s: made %v, want %q with maxClients 5", body, resp.GetRoom(), id)
		}
	}
}

func TestAdminRESTWrongMethod(t *testing.T) {
	s := startServer(t, "-admin-token", testAdminToken)
	for _, tc := range []struct {
		method, path, contentType, allow string
	}{
		{"PUT", "/v1/rooms", "application/json", "GET, POST"},
		{"PATCH", "/v1/rooms/lobby", "application/json", "DELETE, GET"},
		{"GET", "/v1/clients/c1:kick", "", "POST"},
		{"DELETE", "/v1/rooms/lobby/events", "", "GET"},
		// What curl -d sends: grpc-gateway would serve it as the GET.
		{"POST", "/v1/rooms/lobby/clients", "application/x-www-form-urlencoded", "GET"},
	} {
		resp, body := restRaw(t, s, tc.method, tc.path, tc.contentType, "x=1")
		what := tc.method + " " + tc.path
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s: HTTP %d with Allow %q, want 405 with Allow %q; body %s", what, resp.StatusCode, resp.Header.Get("Allow"), tc.allow, body)
			continue
		}
		if msg := checkErrorShape(t, what, body, codes.Unimplemented); !strings.Contains(msg, tc.method) || !strings.Contains(msg, tc.allow) {
			t.Errorf("%s: message %q does not name the method and the allowed ones", what, msg)
		}
	}
}

// A WatchRoom that fails before it starts answers like any other call:
// its status and the usual error object, not a stream line.
func TestAdminRESTWatchRoomErrorShape(t *testing.T) {
	s := startServer(t, "-admin-token", testAdminToken)
	resp, body := restRaw(t, s, "GET", "/v1/rooms/nowhere/events", "", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing room: HTTP %d, want 404; body %s", resp.StatusCode, body)
	}
	if msg := checkErrorShape(t, "missing room", body, codes.NotFound); !strings.Contains(msg, `"nowhere"`) {
		t.Errorf("missing room: message %q does not name the room", msg)
	}

	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	s.token = ""
	resp, body = restRaw(t, s, "GET", "/v1/rooms/lobby/events", "", "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("no token: HTTP %d, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	checkErrorShape(t, "no token", body, codes.Unauthenticated)
}

func TestAdminHTTPIndexAndUnknownPaths(t *testing.T) {
	s := startServer(t, "-admin-token", testAdminToken)
	s.token = "" // the index and 404s need none

	resp, body := restRaw(t, s, "GET", "/", "", "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /: HTTP %d %q, want 200 with HTML", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"roomd admin API", `href="/openapi.json"`, `href="/healthz"`, `href="/readyz"`, `href="/metrics"`, `href="/v1/rooms"`, admin.BuildVersion()} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /: index does not mention %q:\n%s", want, body)
		}
	}

	// Outside /v1/ an unknown path is a 404 for anyone; under it every
	// request needs the token first, then an unknown path is a 404.
	for _, path := range []string{"/nothing", "/v1", "/v1/nothing", "/openapi.yaml"} {
		under := strings.HasPrefix(path, "/v1")
		if under {
			resp, body := restRaw(t, s, "GET", path, "", "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without the token: HTTP %d, want 401", path, resp.StatusCode)
			}
			checkErrorShape(t, "GET "+path+" without the token", body, codes.Unauthenticated)
			s.token = testAdminToken
		}
		resp, body := restRaw(t, s, "GET", path, "", "")
		s.token = ""
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", path, resp.StatusCode)
		}
		if msg := checkErrorShape(t, "GET "+path, body, codes.NotFound); !strings.Contains(msg, path) && !(path == "/v1" && strings.Contains(msg, "/v1/")) {
			t.Errorf("GET %s: message %q does not name the path", path, msg)
		}
	}
}
