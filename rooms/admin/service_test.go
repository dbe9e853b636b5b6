package admin

import (
	"context"
	"errors"
	"fmt"
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
	err   error // what every call below returns
	watch Watch

	banned  string        // BanClient's client id
	banFor  time.Duration // and its duration
	watched string        // Watch's room id
}

func (f *fakeRooms) GetRoom(string) (rooms.RoomInfo, error) {
	return rooms.RoomInfo{}, f.err
}

func (f *fakeRooms) BanClient(clientID, _ string, d time.Duration) (rooms.ClientInfo, rooms.Ban, error) {
	f.banned, f.banFor = clientID, d
	return rooms.ClientInfo{}, rooms.Ban{}, f.err
}

func (f *fakeRooms) Publish(*rooms.Message) (rooms.Published, error) { return rooms.Published{}, f.err }

func (f *fakeRooms) SendToClient(string, *rooms.Message) error { return f.err }

func (f *fakeRooms) Watch(roomID string) (Watch, error) {
	f.watched = roomID
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
