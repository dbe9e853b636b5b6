package admin

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	roomdv1 "roomd/gen/roomd/v1"
)

// blockingRooms is a RoomService whose CreateRoom holds its call until the
// test lets it go, so calls can be kept in progress.
type blockingRooms struct {
	roomdv1.UnimplementedRoomServiceServer
	entered chan struct{}
	release chan struct{}
}

func (b *blockingRooms) CreateRoom(ctx context.Context, _ *roomdv1.CreateRoomRequest) (*roomdv1.CreateRoomResponse, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return &roomdv1.CreateRoomResponse{}, nil
}

func TestConcurrentCallsAreBoundedBeforeTheRequestIsRead(t *testing.T) {
	svc := &blockingRooms{entered: make(chan struct{}), release: make(chan struct{})}
	srv := grpc.NewServer(ServerOptions(ServerConfig{MaxConcurrentCalls: 2})...)
	roomdv1.RegisterRoomServiceServer(srv, svc)
	// Over TCP: calls over the in-process listener come from the REST
	// gateway, which has admitted them already.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := roomdv1.NewRoomServiceClient(conn)
	ctx := callContext(t)

	held := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := client.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "a"})
			held <- err
		}()
		<-svc.entered
	}
	// Both slots are taken: the third call is refused, and WatchRoom (a
	// stream) does not take a slot, so it reaches its handler.
	_, err = client.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "b"})
	if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != "2 admin calls are in progress, the most allowed at once; retry shortly" {
		t.Fatalf("third call: %v, want RESOURCE_EXHAUSTED saying the limit", err)
	}
	watch, err := client.WatchRoom(ctx, &roomdv1.WatchRoomRequest{RoomId: "a"})
	if err == nil {
		_, err = watch.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("WatchRoom with every slot taken: %v, want the handler's UNIMPLEMENTED", err)
	}

	// A finished call gives its slot back: the server frees it as the call
	// ends there, which may be a moment after the client has its answer.
	svc.release <- struct{}{}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		go func() {
			_, err := client.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: "c"})
			done <- err
		}()
		var err error
		select {
		case <-svc.entered:
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a call after one finished did not run")
		}
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("a call after one finished: %v, want it to run", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(svc.release)
	for _, ch := range []chan error{held, done} {
		if err := <-ch; err != nil {
			t.Error(err)
		}
	}
}

func TestTokenIsCheckedFromHeadersAlone(t *testing.T) {
	a := newAdmission("tok", 1, nil)
	for _, tc := range []struct {
		values []string
		want   string
	}{
		{nil, "missing bearer token"},
		{[]string{"Bearer tok", "Bearer tok"}, "more than one authorization value"},
		{[]string{"Basic dG9r"}, "missing bearer token"},
		{[]string{"Bearer nope"}, "invalid bearer token"},
	} {
		err := a.checkToken(tc.values)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), tc.want) {
			t.Errorf("%q: %v, want UNAUTHENTICATED %q", tc.values, err, tc.want)
		}
	}
	if err := a.checkToken([]string{"bearer tok"}); err != nil {
		t.Errorf("a good token: %v", err)
	}
	if err := newAdmission("", 1, nil).checkToken(nil); err != nil {
		t.Errorf("no token configured: %v", err)
	}
}
