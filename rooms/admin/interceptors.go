package admin

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// openServices are callable without a token; none tells anything about
// rooms or clients. Load balancers and orchestrators probe health without
// credentials. Server reflection only describes the API, which is public
// anyway (/openapi.json), and grpcurl asks it before any call, health
// checks included.
var openServices = []string{
	healthpb.Health_ServiceDesc.ServiceName,
	reflectionv1.ServerReflection_ServiceDesc.ServiceName,
	// reflection.Register serves the deprecated v1alpha too, which older
	// clients still ask (its package is deprecated, hence the literal).
	"grpc.reflection.v1alpha.ServerReflection",
}

// isOpen reports whether fullMethod ("/service/method") belongs to one of
// openServices.
func isOpen(fullMethod string) bool {
	for _, svc := range openServices {
		if strings.HasPrefix(fullMethod, "/"+svc+"/") {
			return true
		}
	}
	return false
}

// recovery turns a panic in a handler into INTERNAL for that call and logs
// it with its stack; the server and every other call carry on.
type recovery struct {
	log *slog.Logger
}

func (r recovery) recovered(method string, p any) error {
	r.log.Error("admin call panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error; the server logged it")
}

func (r recovery) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, r.recovered(info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

func (r recovery) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.recovered(info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}
