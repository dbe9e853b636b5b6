package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
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

// tokenAuth requires "authorization: Bearer <token>" on every call but
// health and reflection. Everything else is closed by default, so a service
// registered later is closed too.
type tokenAuth struct {
	digest [sha256.Size]byte
}

func newTokenAuth(token string) *tokenAuth {
	return &tokenAuth{digest: sha256.Sum256([]byte(token))}
}

func (a *tokenAuth) check(ctx context.Context, fullMethod string) error {
	if isOpen(fullMethod) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	switch {
	case len(values) == 0:
		return status.Error(codes.Unauthenticated, `missing bearer token: send "authorization: Bearer <token>" as gRPC metadata (over REST, the Authorization header)`)
	case len(values) > 1:
		return status.Error(codes.Unauthenticated, "more than one authorization value; send one bearer token")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return status.Error(codes.Unauthenticated, `missing bearer token: the authorization value is not "Bearer <token>"`)
	}
	// Comparing digests keeps the time independent of where the tokens
	// differ and of the configured token's length.
	got := sha256.Sum256([]byte(strings.TrimLeft(token, " ")))
	if subtle.ConstantTimeCompare(got[:], a.digest[:]) != 1 {
		return status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return nil
}

func (a *tokenAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *tokenAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
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
