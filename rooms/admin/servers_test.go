package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// panicky is a service whose every method panics, registered by hand so
// that the test reaches the server's interceptors the way a buggy handler
// of the RoomService would.
var panicky = grpc.ServiceDesc{
	ServiceName: "test.Panicky",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(healthpb.HealthCheckRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			handler := func(context.Context, any) (any, error) { panic("unary boom") }
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Panicky/Unary"}, handler)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler:       func(any, grpc.ServerStream) error { panic("stream boom") },
	}},
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPanicky serves the panicking service and health with
// ServerOptions(cfg) in process and returns a client connection.
func startPanicky(t *testing.T, cfg ServerConfig) *grpc.ClientConn {
	t.Helper()
	srv := grpc.NewServer(ServerOptions(cfg)...)
	srv.RegisterService(&panicky, struct{}{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln := ListenInProcess()
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	conn, err := DialInProcess(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		<-served
	})
	return conn
}

func callContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func callUnary(ctx context.Context, conn *grpc.ClientConn) error {
	return conn.Invoke(ctx, "/test.Panicky/Unary", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
}

func callStream(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/test.Panicky/Stream")
	if err != nil {
		return err
	}
	if err := stream.SendMsg(&healthpb.HealthCheckRequest{}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(&healthpb.HealthCheckResponse{})
}

func TestPanicInHandlerIsInternalAndLogged(t *testing.T) {
	logs := &syncBuffer{}
	conn := startPanicky(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := callContext(t)

	for name, call := range map[string]func(context.Context, *grpc.ClientConn) error{"unary": callUnary, "stream": callStream} {
		err := call(ctx, conn)
		if st, _ := status.FromError(err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "internal error") {
			t.Errorf("%s call that panicked: %v, want INTERNAL", name, err)
		}
		if strings.Contains(status.Convert(err).Message(), "boom") {
			t.Errorf("%s: the panic value reached the client: %v", name, err)
		}
	}
	got := logs.String()
	for _, want := range []string{"admin call panicked", "/test.Panicky/Unary", "unary boom", "/test.Panicky/Stream", "stream boom", "servers_test.go"} {
		if !strings.Contains(got, want) {
			t.Errorf("log does not mention %q:\n%s", want, got)
		}
	}

	// The server carries on.
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after the panics: %v %v", resp, err)
	}
}

func TestTokenIsCheckedBeforeHandlers(t *testing.T) {
	logs := &syncBuffer{}
	conn := startPanicky(t, ServerConfig{Token: "tok", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := callContext(t)

	// Any registered service but health is closed, and nothing runs.
	for name, call := range map[string]func(context.Context, *grpc.ClientConn) error{"unary": callUnary, "stream": callStream} {
		if err := call(ctx, conn); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s without a token: %v, want UNAUTHENTICATED", name, err)
		}
	}
	if logs.String() != "" {
		t.Errorf("a handler ran without a token:\n%s", logs)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: %v", err)
	}
	authorized := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer tok")
	if err := callUnary(authorized, conn); status.Code(err) != codes.Internal {
		t.Errorf("with the token the handler runs (and panics): %v, want INTERNAL", err)
	}
}
