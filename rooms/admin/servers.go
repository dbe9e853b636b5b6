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
	gw := runtime.NewServeMux()
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
