package admin

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"

	"roomd/gen/openapiv2"
	roomdv1 "roomd/gen/roomd/v1"
)

// NewGRPCServer returns a gRPC server with the RoomService, server
// reflection (so grpcurl needs no proto files) and the standard health
// service. The health server is returned so that shutdown can mark it
// NOT_SERVING first.
func NewGRPCServer(svc *Service, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	srv := grpc.NewServer(opts...)
	roomdv1.RegisterRoomServiceServer(srv, svc)
	hs := health.NewServer()
	hs.SetServingStatus(roomdv1.RoomService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs
}

// NewGateway returns the admin HTTP handler: the REST gateway under /v1/,
// /healthz and /openapi.json. It calls the gRPC server over conn, so that
// server streaming (WatchRoom) works, which grpc-gateway's in-process mode
// does not support.
func NewGateway(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	gw := runtime.NewServeMux(runtime.WithForwardResponseOption(flushStreamStart))
	if err := roomdv1.RegisterRoomServiceHandler(ctx, gw, conn); err != nil {
		return nil, fmt.Errorf("register REST gateway: %w", err)
	}
	health := healthpb.NewHealthClient(conn)
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := health.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiv2.RoomServiceJSON)
	})
	return mux, nil
}

// flushStreamStart sends a server stream's 200 and headers as soon as the
// gRPC stream sends its headers (WatchRoom does once the watch is in place),
// instead of with the first event: a REST watcher of a quiet room would
// otherwise hang without knowing it is being served. The gateway calls
// response options with a nil message once before a stream's first message;
// a stream that failed before sending headers has none and keeps its error
// status (404 for a missing room).
func flushStreamStart(ctx context.Context, w http.ResponseWriter, m proto.Message) error {
	md, _ := runtime.ServerMetadataFromContext(ctx)
	if m != nil || md.HeaderMD.Len() == 0 {
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}
