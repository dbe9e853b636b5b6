package admin

import (
	"context"
	"log/slog"
	"net"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// audit logs one admin action that changed something (a room made or
// deleted, a kick, a ban or its lifting) at info, with who asked: the
// caller's address and the API it came through. Payloads and tokens are
// never logged.
func (s *Service) audit(ctx context.Context, msg string, attrs ...slog.Attr) {
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	addr, api := caller(ctx)
	attrs = append(attrs, slog.String("caller", addr), slog.String("api", api))
	s.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}

// caller is the address of whoever made the call, and "grpc" or "rest".
// A REST call reaches the gRPC server in process, so its peer is the
// gateway; the gateway passes the HTTP client's address on as
// x-forwarded-for (grpc-gateway does so by default), the last entry being
// the one it saw itself.
func caller(ctx context.Context) (addr, api string) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown", "grpc"
	}
	if _, isTCP := p.Addr.(*net.TCPAddr); isTCP {
		return p.Addr.String(), "grpc"
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if fwd := md.Get("x-forwarded-for"); len(fwd) > 0 {
		hops := strings.Split(fwd[len(fwd)-1], ",")
		return strings.TrimSpace(hops[len(hops)-1]), "rest"
	}
	return p.Addr.String(), "rest"
}
