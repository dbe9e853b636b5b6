package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
)

// allocatedDuring reports the bytes the whole process allocated while f
// ran: the server runs in this process, so a server that reads and decodes
// what it was sent shows here, whatever the garbage collector does after.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// preEncoded is a gRPC codec that sends bytes encoded beforehand, so the
// test's own calls allocate nothing per request.
type preEncoded struct{}

func (preEncoded) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (preEncoded) Unmarshal(data []byte, v any) error { return nil }
func (preEncoded) Name() string                       { return "proto" }

// Callers without the token cost the server nothing of what they send: the
// token is checked from the headers, before a body is read or decoded.
func TestAdminRefusesWithoutTheTokenBeforeReadingTheRequest(t *testing.T) {
	s := startServer(t, "-admin-token", "secret-token")
	const callers = 20

	t.Run("REST", func(t *testing.T) {
		body := []byte(`{"roomId":"big","metadata":{"k":"` + strings.Repeat("x", 7<<20) + `"}}`)
		// Uploaders of big bodies ask before sending them (curl does past
		// 1 MiB); a server that refuses unread then never gets the body,
		// and the client reads the refusal instead of a broken pipe.
		client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
		defer client.CloseIdleConnections()
		var wg sync.WaitGroup
		statuses := make(chan int, callers)
		allocated := allocatedDuring(func() {
			for range callers {
				wg.Go(func() {
					req, _ := http.NewRequest("POST", s.adminURL+"/v1/rooms", bytes.NewReader(body))
					req.Header.Set("Expect", "100-continue")
					resp, err := client.Do(req)
					if err != nil {
						t.Errorf("POST without a token: %v; want a 401", err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					statuses <- resp.StatusCode
				})
			}
			wg.Wait()
		})
		close(statuses)
		for code := range statuses {
			if code != http.StatusUnauthorized {
				t.Errorf("POST of 7 MiB without a token: HTTP %d, want 401", code)
			}
		}
		if sent := uint64(callers * len(body)); allocated > sent/8 {
			t.Errorf("%d MiB allocated while refusing %d MiB of requests without a token; the bodies were read", allocated>>20, sent>>20)
		}
	})

	t.Run("gRPC", func(t *testing.T) {
		conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req, err := proto.Marshal(&roomdv1.PublishRequest{RoomId: "big", Payload: &roomdv1.PublishRequest_Text{Text: strings.Repeat("x", 3800<<10)}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		allocated := allocatedDuring(func() {
			for range callers {
				wg.Go(func() {
					var resp roomdv1.PublishResponse
					err := conn.Invoke(context.Background(), roomdv1.RoomService_Publish_FullMethodName, req, &resp, grpc.ForceCodec(preEncoded{}))
					if status.Code(err) != codes.Unauthenticated {
						t.Errorf("Publish of 3.8 MB without a token: %v, want UNAUTHENTICATED", err)
					}
				})
			}
			wg.Wait()
		})
		if sent := uint64(callers * len(req)); allocated > sent/8 {
			t.Errorf("%d MiB allocated while refusing %d MiB of requests without a token; the requests were read", allocated>>20, sent>>20)
		}
	})
}

// A REST request with a body holds one of -admin-max-calls slots from
// before its body is read until it is answered; one more is 429.
func TestAdminRESTCallsInProgressAreBounded(t *testing.T) {
	s := startServer(t, "-admin-max-calls", "2")
	// Two requests whose bodies have begun and wait, written on raw sockets
	// so that their headers are on the wire at once (an HTTP client may
	// hold them in its buffer with the first bytes of the body).
	const bodyBytes = 64
	begin := func() net.Conn {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.adminURL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /v1/rooms HTTP/1.1\r\nHost: roomd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"roomId\":", bodyBytes)
		return conn
	}
	slow := []net.Conn{begin(), begin()}
	var refusal map[string]any
	eventually(t, "a third request with a body is refused while two are in progress", func() bool {
		// A slow request that met the probe below holding a slot was
		// itself refused (its answer is waiting): begin it again.
		for i, conn := range slow {
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			if n, _ := conn.Read(make([]byte, 1)); n > 0 {
				conn.Close()
				slow[i] = begin()
			}
		}
		return s.rest(t, "POST", "/v1/rooms", `{"roomId":"third"}`, &refusal) == http.StatusTooManyRequests
	})
	if refusal["code"] != float64(codes.ResourceExhausted) || refusal["message"] != "2 admin calls are in progress, the most allowed at once; retry shortly" {
		t.Errorf("refusal %v, want RESOURCE_EXHAUSTED saying the limit", refusal)
	}
	if code := s.rest(t, "GET", "/v1/rooms", "", nil); code != http.StatusOK {
		t.Errorf("GET (no body) while the slots are taken: HTTP %d, want 200", code)
	}
	for i, conn := range slow {
		conn.SetReadDeadline(time.Time{})
		rest := fmt.Sprintf(`"slow-%c"}`, 'a'+i)
		rest += strings.Repeat(" ", bodyBytes-len(`{"roomId":`)-len(rest)) // JSON allows the padding
		if _, err := io.WriteString(conn, rest); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("slow POST %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("slow POST %d: HTTP %d, want 200", i, resp.StatusCode)
		}
	}
	if code := s.rest(t, "POST", "/v1/rooms", `{"roomId":"after"}`, nil); code != http.StatusOK {
		t.Errorf("POST once the slow ones finished: HTTP %d, want 200", code)
	}
}

// openWatchWhenFree retries WatchRoom until the server has a watch to
// spare, proving it with an event the new watch receives.
func openWatchWhenFree(t *testing.T, s *testServer, room string) {
	t.Helper()
	eventually(t, "a new watch is accepted once the stalled one is cut", func() bool {
		ctx, cancel := context.WithTimeout(adminContext(t), 2*time.Second)
		defer cancel()
		watch, err := s.admin.WatchRoom(ctx, &roomdv1.WatchRoomRequest{RoomId: room})
		if err != nil {
			return false
		}
		// The server sends headers once the watch is registered (or none,
		// then the refusal, when it is not).
		if md, err := watch.Header(); err != nil || md == nil {
			_, err = watch.Recv()
			if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "room watches are open") {
				t.Fatalf("a second watch: %v, want it accepted or refused for the limit", err)
			}
			return false
		}
		if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: room, Payload: &roomdv1.PublishRequest_Text{Text: "probe"}}); err != nil {
			t.Fatal(err)
		}
		for {
			e, err := watch.Recv()
			if err != nil {
				if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "room watches are open") {
					t.Fatalf("a second watch: %v, want it accepted or refused for the limit", err)
				}
				return false
			}
			if e.GetMessagePublished().GetText() == "probe" {
				return true
			}
		}
	})
}

// publishBig publishes n messages of 60 KiB to room.
func publishBig(t *testing.T, s *testServer, room string, n int) {
	t.Helper()
	text := strings.Repeat("x", 60<<10)
	for range n {
		if _, err := s.admin.Publish(adminContext(t), &roomdv1.PublishRequest{RoomId: room, Payload: &roomdv1.PublishRequest_Text{Text: text}}); err != nil {
			t.Fatal(err)
		}
	}
}

// A WatchRoom reader that stops reading is cut as soon as it falls 1 MiB
// behind: its watch is freed at once, and when it reads again it finds
// RESOURCE_EXHAUSTED after the events it had been sent.
func TestAdminStalledGRPCWatchIsCutPromptly(t *testing.T) {
	s := startServer(t, "-max-watchers", "1")
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "hot"})
	// A client with small fixed windows, so that not reading stalls the
	// stream soon instead of buffering megabytes on the client's side.
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stalled, err := roomdv1.NewRoomServiceClient(conn).WatchRoom(adminContext(t), &roomdv1.WatchRoomRequest{RoomId: "hot"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stalled.Header(); err != nil {
		t.Fatal(err)
	}
	publishBig(t, s, "hot", 40) // 2.4 MB of events nobody reads
	openWatchWhenFree(t, s, "hot")

	got := 0
	for {
		_, err := stalled.Recv()
		if err == nil {
			got++
			continue
		}
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "fell too far behind") {
			t.Fatalf("the stalled watch, reading again after %d events: %v, want RESOURCE_EXHAUSTED", got, err)
		}
		break
	}
	if got == 0 || got >= 40 {
		t.Errorf("the stalled watch received %d of 40 events before its end, want some but not all", got)
	}
}

// Over REST the same: a reader that stops has its watch freed, and its
// response ends instead of hanging when it reads again. (That the admin
// listener's write timeout lets the connection go is
// TestWriteDeadlinesLetAStalledReaderGo in rooms/admin.)
func TestAdminStalledRESTWatchIsLetGo(t *testing.T) {
	s := startServer(t, "-max-watchers", "1", "-write-timeout", "1s")
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "hot"})
	resp := (<-startRESTWatch(t, s, "hot")).resp
	publishBig(t, s, "hot", 300) // 18 MB of events, 24 MB of JSON: more than the sockets hold
	openWatchWhenFree(t, s, "hot")

	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled REST watch is still streaming 30 s later")
	}
}

// Errors quote what was sent only in part: a 3 MB page token is not sent
// back whole.
func TestAdminErrorsQuoteInputsShort(t *testing.T) {
	s := startServer(t)
	token := strings.Repeat("A", 3<<20) // base64 that decodes to no id this server hands out
	garbled := strings.Repeat("A", 100) + strings.Repeat("!", 3<<20)
	_, rooms := s.admin.ListRooms(adminContext(t), &roomdv1.ListRoomsRequest{PageToken: token})
	_, clients := s.admin.ListClients(adminContext(t), &roomdv1.ListClientsRequest{RoomId: "r", PageToken: garbled})
	_, bans := s.admin.ListBans(adminContext(t), &roomdv1.ListBansRequest{PageToken: garbled})
	for name, err := range map[string]error{"ListRooms": rooms, "ListClients": clients, "ListBans": bans} {
		msg := status.Convert(err).Message()
		if status.Code(err) != codes.InvalidArgument || len(msg) > 200 || !strings.Contains(msg, `page_token "AAAA`) {
			t.Errorf("%s with a 3 MB page token: %v, %d bytes of message; want INVALID_ARGUMENT quoting its start only", name, status.Code(err), len(msg))
		}
	}
}
