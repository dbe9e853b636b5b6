package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms"
)

// fakeRooms is a Rooms that returns what a test sets. The embedded nil
// Rooms makes any method a test did not expect panic.
type fakeRooms struct {
	Rooms
	err   error    // what every call below returns
	cov   Coverage // what the calls that answer for every node return
	pub   rooms.Published
	watch Watch

	banned  string          // BanClient's client id
	banFor  time.Duration   // and its duration
	watched string          // Watch's room id
	since   *rooms.Position // and position
	ctx     context.Context // the last call's
}

func (f *fakeRooms) GetRoom(ctx context.Context, roomID string) (rooms.RoomInfo, Coverage, error) {
	f.ctx = ctx
	return rooms.RoomInfo{RoomID: roomID}, f.cov, f.err
}

func (f *fakeRooms) ListRooms(context.Context, string, int) ([]rooms.RoomInfo, bool, Coverage) {
	return []rooms.RoomInfo{{RoomID: "r"}}, false, f.cov
}

func (f *fakeRooms) DeleteRoom(context.Context, string) (rooms.DeleteResult, Coverage, error) {
	return rooms.DeleteResult{Removed: 1}, f.cov, f.err
}

func (f *fakeRooms) Clients(_ context.Context, roomID, _ string, _ int) ([]rooms.ClientInfo, bool, Coverage, error) {
	return []rooms.ClientInfo{{ClientID: "n1_0123456789abcdef", RoomID: roomID}}, false, f.cov, f.err
}

func (f *fakeRooms) KickUser(context.Context, string, string, string) (int, Coverage, error) {
	return 2, f.cov, f.err
}

func (f *fakeRooms) BanUser(_ context.Context, userID, roomID, _ string, _ time.Duration) (rooms.Ban, int, Coverage, error) {
	return rooms.Ban{UserID: userID, RoomID: roomID}, 2, f.cov, f.err
}

func (f *fakeRooms) Nodes(context.Context) ([]NodeInfo, Coverage, error) {
	return []NodeInfo{{Name: "n1"}}, f.cov, f.err
}

func (f *fakeRooms) BanClient(_ context.Context, clientID, _ string, d time.Duration) (rooms.ClientInfo, rooms.Ban, error) {
	f.banned, f.banFor = clientID, d
	return rooms.ClientInfo{}, rooms.Ban{}, f.err
}

func (f *fakeRooms) Publish(context.Context, *rooms.Message) (rooms.Published, error) {
	return f.pub, f.err
}

func (f *fakeRooms) SendToClient(context.Context, string, *rooms.Message) error { return f.err }

func (f *fakeRooms) Watch(_ context.Context, roomID string, since *rooms.Position) (Watch, error) {
	f.watched, f.since = roomID, since
	if f.err != nil {
		return nil, f.err
	}
	return f.watch, nil
}

// Errors a Hub returns only in a race or at shutdown, or never, reach the
// caller with the code errcode gives their kind and the message as Rooms
// wrote it; the service passes its arguments through unchanged.
func TestServiceOverFakeRoomsMapsErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		call func(s *Service) error
		code codes.Code
	}{
		{"Publish while the server stops", rooms.ErrClosed, func(s *Service) error {
			_, err := s.Publish(ctx, &roomdv1.PublishRequest{RoomId: "r", Payload: &roomdv1.PublishRequest_Text{Text: "hi"}})
			return err
		}, codes.Unavailable},
		{"SendToClient to a client that left meanwhile", fmt.Errorf("client %q not found (it left): %w", "c", rooms.ErrClientNotFound), func(s *Service) error {
			_, err := s.SendToClient(ctx, &roomdv1.SendToClientRequest{ClientId: "c", Payload: &roomdv1.SendToClientRequest_Binary{Binary: []byte{1}}})
			return err
		}, codes.NotFound},
		{"KickClient with a ban of a client without a user", rooms.ErrNoUserID, func(s *Service) error {
			_, err := s.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: "c", BanSeconds: 30})
			return err
		}, codes.FailedPrecondition},
		{"GetRoom failing with no kind of rooms error", errors.New("node n2 did not answer"), func(s *Service) error {
			_, err := s.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "r"})
			return err
		}, codes.Internal},
		{"WatchRoom past the watch limit", fmt.Errorf("too many: %w", rooms.ErrLimit), func(s *Service) error {
			return s.WatchRoom(&roomdv1.WatchRoomRequest{RoomId: "r"}, newFakeStream(t))
		}, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRooms{err: tc.err}
			st, _ := status.FromError(tc.call(NewService(f)))
			if st.Code() != tc.code || st.Message() != tc.err.Error() {
				t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.err.Error())
			}
		})
	}

	f := &fakeRooms{err: rooms.ErrNoUserID}
	_, _ = NewService(f).KickClient(ctx, &roomdv1.KickClientRequest{ClientId: "c1", BanSeconds: 30})
	if f.banned != "c1" || f.banFor != 30*time.Second {
		t.Errorf("BanClient got %q for %v, want %q for 30s", f.banned, f.banFor, "c1")
	}
}

// Input the service refuses never reaches Rooms.
func TestServiceChecksBeforeRooms(t *testing.T) {
	f := &fakeRooms{} // any call but BanClient would panic
	long := strings.Repeat("c", rooms.MaxIDBytes+1)
	_, err := NewService(f).KickClient(context.Background(), &roomdv1.KickClientRequest{ClientId: long, BanSeconds: 30})
	if status.Code(err) != codes.InvalidArgument || f.banned != "" {
		t.Fatalf("KickClient with a %d-byte id = %v, reached Rooms: %v", len(long), err, f.banned != "")
	}
}

// fakeWatch is a Watch whose events and end a test controls.
type fakeWatch struct {
	events  chan rooms.Event
	ended   chan struct{}
	err     error // set before ended is closed
	stopped chan struct{}
}

func newFakeWatch() *fakeWatch {
	return &fakeWatch{events: make(chan rooms.Event, 1), ended: make(chan struct{}), stopped: make(chan struct{})}
}

func (w *fakeWatch) Next(ctx context.Context) (rooms.Event, bool, error) {
	select {
	case e := <-w.events:
		return e, true, nil
	case <-ctx.Done():
		return rooms.Event{}, false, ctx.Err()
	}
}

func (w *fakeWatch) Ended() <-chan struct{} { return w.ended }
func (w *fakeWatch) Err() error             { return w.err }
func (w *fakeWatch) Stop()                  { close(w.stopped) }

// fakeStream is a WatchRoom stream whose Send blocks, as gRPC flow control
// does when the reader stops reading, until the call's context ends.
type fakeStream struct {
	grpc.ServerStream // nil: only the methods below are called
	ctx               context.Context
	sending           chan struct{}
}

func newFakeStream(t *testing.T) *fakeStream {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // what gRPC does when the handler returns
	return &fakeStream{ctx: ctx, sending: make(chan struct{}, 1)}
}

func (s *fakeStream) Context() context.Context     { return s.ctx }
func (s *fakeStream) SendHeader(metadata.MD) error { return nil }
func (s *fakeStream) Send(*roomdv1.WatchRoomResponse) error {
	s.sending <- struct{}{}
	<-s.ctx.Done()
	return s.ctx.Err()
}

// A watch that ends too slow while its reader is stalled ends the call at
// once with RESOURCE_EXHAUSTED, without waiting for the stalled send, and
// stops the watch: with a real Hub that takes a stalled gRPC reader and a
// MiB of events.
func TestWatchRoomEndsAtOnceWhenTheWatchIsTooSlow(t *testing.T) {
	w := newFakeWatch()
	f := &fakeRooms{watch: w}
	stream := newFakeStream(t)
	done := make(chan error, 1)
	go func() { done <- NewService(f).WatchRoom(&roomdv1.WatchRoomRequest{RoomId: "r"}, stream) }()

	w.events <- rooms.Event{Kind: rooms.EventRoomDeleted, Time: time.Now()}
	<-stream.sending // the send that never completes
	w.err = fmt.Errorf("watch of room %q: %w", "r", rooms.ErrWatcherTooSlow)
	close(w.ended)

	select {
	case err := <-done:
		if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted || st.Message() != w.err.Error() {
			t.Errorf("WatchRoom = %v %q, want %v %q", st.Code(), st.Message(), codes.ResourceExhausted, w.err.Error())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchRoom still waits for its stalled send")
	}
	select {
	case <-w.stopped:
	default:
		t.Error("the watch was not stopped")
	}
	if f.watched != "r" {
		t.Errorf("Watch got room %q, want %q", f.watched, "r")
	}
}

// serveFake serves the service over f with gRPC and the REST gateway, as
// roomd does but in process, and returns a gRPC client and the gateway's
// base URL.
func serveFake(t *testing.T, f Rooms) (roomdv1.RoomServiceClient, string) {
	t.Helper()
	srv, _ := NewGRPCServer(NewService(f))
	ln := ListenInProcess()
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	conn, err := DialInProcess(ln)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := NewGateway(ctx, conn, GatewayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(gw)
	t.Cleanup(func() {
		web.Close()
		cancel()
		conn.Close()
		srv.Stop()
		<-served
	})
	return roomdv1.NewRoomServiceClient(conn), web.URL
}

// restJSON calls the gateway and decodes its JSON answer, requiring 200.
func restJSON(t *testing.T, method, url, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &out) != nil {
		t.Fatalf("%s %s: HTTP %d %s", method, url, resp.StatusCode, data)
	}
	return out
}

// An answer that leaves out nodes says so, over gRPC and REST, in every
// response that can be partial; a complete one says partial false and
// names none.
func TestPartialAnswersNameTheUnreachableNodes(t *testing.T) {
	type answer interface {
		GetPartial() bool
		GetUnreachableNodes() []string
	}
	for _, unreachable := range [][]string{{"n2", "n3"}, nil} {
		f := &fakeRooms{cov: Coverage{Unreachable: unreachable}}
		client, base := serveFake(t, f)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, call := range []struct {
			name         string
			grpc         func() (answer, error)
			method, path string
			body         string
		}{
			{"GetRoom", func() (answer, error) {
				return client.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "r"})
			}, "GET", "/v1/rooms/r", ""},
			{"ListRooms", func() (answer, error) {
				return client.ListRooms(ctx, &roomdv1.ListRoomsRequest{})
			}, "GET", "/v1/rooms", ""},
			{"DeleteRoom", func() (answer, error) {
				return client.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: "r"})
			}, "DELETE", "/v1/rooms/r", ""},
			{"ListClients", func() (answer, error) {
				return client.ListClients(ctx, &roomdv1.ListClientsRequest{RoomId: "r"})
			}, "GET", "/v1/rooms/r/clients", ""},
			{"KickUser", func() (answer, error) {
				return client.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann"})
			}, "POST", "/v1/users/ann:kick", `{}`},
			{"KickUser with a ban", func() (answer, error) {
				return client.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", BanSeconds: 60})
			}, "POST", "/v1/users/ann:kick", `{"banSeconds":60}`},
			{"ListNodes", func() (answer, error) {
				return client.ListNodes(ctx, &roomdv1.ListNodesRequest{})
			}, "GET", "/v1/nodes", ""},
		} {
			resp, err := call.grpc()
			if err != nil {
				t.Fatalf("%s: %v", call.name, err)
			}
			if resp.GetPartial() != (unreachable != nil) || !slices.Equal(resp.GetUnreachableNodes(), unreachable) {
				t.Errorf("%s over gRPC: partial %v, unreachable %q; want %v, %q", call.name, resp.GetPartial(), resp.GetUnreachableNodes(), unreachable != nil, unreachable)
			}
			got := restJSON(t, call.method, base+call.path, call.body)
			var names []string
			for _, n := range got["unreachableNodes"].([]any) {
				names = append(names, n.(string))
			}
			if got["partial"] != (unreachable != nil) || !slices.Equal(names, unreachable) {
				t.Errorf("%s over REST: partial %v, unreachableNodes %q; want %v, %q", call.name, got["partial"], got["unreachableNodes"], unreachable != nil, unreachable)
			}
		}
	}
}

// Rooms gets the call's own context: what a cluster bounds its waits by.
func TestRoomsGetsTheCallsContext(t *testing.T) {
	f := &fakeRooms{}
	client, _ := serveFake(t, f)
	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if _, err := client.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "r"}); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.ctx.Deadline(); !ok || got.Sub(deadline).Abs() > 5*time.Second {
		t.Errorf("GetRoom's context has deadline %v (%v), want about %v", got, ok, deadline)
	}
}

// A client's node is the one its id names; an id of no node's form names
// none.
func TestClientNodeIsTheOneItsIDNames(t *testing.T) {
	for id, node := range map[string]string{
		"n1_0123456789abcdef":    "n1",
		"local_0123456789abcdef": "local",
		"0123456789abcdef":       "",
	} {
		if got := clientProto(rooms.ClientInfo{ClientID: id}).GetNode(); got != node {
			t.Errorf("client %q: node %q, want %q", id, got, node)
		}
	}
}

// Publish answers the position the message got; a broker that delivers
// asynchronously knows of no recipients, which is 0.
func TestPublishAnswersThePosition(t *testing.T) {
	f := &fakeRooms{pub: rooms.Published{Position: rooms.Position{Seq: 7, Epoch: "ep"}, Recipients: -1}}
	resp, err := NewService(f).Publish(context.Background(), &roomdv1.PublishRequest{RoomId: "r", Payload: &roomdv1.PublishRequest_Text{Text: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSeq() != 7 || resp.GetEpoch() != "ep" || resp.GetRecipientCount() != 0 {
		t.Errorf("Publish = %v, want seq 7, epoch ep and recipient_count 0", resp)
	}
}

// WatchRoom hands since_seq and epoch on as a position; an epoch without
// since_seq never reaches Rooms. A gap is OUT_OF_RANGE.
func TestWatchRoomSinceSeq(t *testing.T) {
	gap := fmt.Errorf("room %q keeps history back to message 9 only: %w", "r", rooms.ErrGap)
	f := &fakeRooms{err: gap}
	since := uint64(5)
	err := NewService(f).WatchRoom(&roomdv1.WatchRoomRequest{RoomId: "r", SinceSeq: &since, Epoch: "ep"}, newFakeStream(t))
	if st, _ := status.FromError(err); st.Code() != codes.OutOfRange || st.Message() != gap.Error() {
		t.Errorf("WatchRoom from a trimmed position: %v, want OUT_OF_RANGE %q", err, gap.Error())
	}
	if f.since == nil || *f.since != (rooms.Position{Seq: 5, Epoch: "ep"}) {
		t.Errorf("Watch got position %v, want seq 5 of epoch ep", f.since)
	}

	f = &fakeRooms{err: gap}
	if err := NewService(f).WatchRoom(&roomdv1.WatchRoomRequest{RoomId: "r"}, newFakeStream(t)); f.since != nil || status.Code(err) != codes.OutOfRange {
		t.Errorf("WatchRoom without since_seq: Watch got position %v (%v), want none", f.since, err)
	}

	f = &fakeRooms{} // Watch would return a nil Watch
	err = NewService(f).WatchRoom(&roomdv1.WatchRoomRequest{RoomId: "r", Epoch: "ep"}, newFakeStream(t))
	if status.Code(err) != codes.InvalidArgument || f.watched != "" {
		t.Errorf("WatchRoom with an epoch and no since_seq: %v, reached Rooms: %v; want INVALID_ARGUMENT first", err, f.watched != "")
	}
}
