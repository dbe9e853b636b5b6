package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	roomdv1 "roomd/gen/roomd/v1"
)

// DefaultMaxConcurrentCalls bounds the admin calls whose requests are held
// at once when a config leaves it 0: a unary RoomService call over gRPC, a
// REST request with a body. Each may hold a request of up to the size
// limit, so this is what bounds the admin API's memory; calls are short, so
// a caller that is refused (RESOURCE_EXHAUSTED, HTTP 429) can retry.
const DefaultMaxConcurrentCalls = 32

// admission is what an admin call must pass before the server reads its
// request: the token (when one is set), then a free slot. Both are checked
// from headers alone, so a caller without the token, or one over the limit,
// costs no request body and no decoding, whatever it sends.
type admission struct {
	digest   [sha256.Size]byte // of the token; unused when !hasToken
	hasToken bool
	slots    chan struct{} // one per call in progress
	// refused, if set, hears of each call turned away, by its code
	// (Unauthenticated, ResourceExhausted): for metrics.
	refused func(codes.Code)
}

func newAdmission(token string, maxCalls int, refused func(codes.Code)) *admission {
	if maxCalls <= 0 {
		maxCalls = DefaultMaxConcurrentCalls
	}
	a := &admission{slots: make(chan struct{}, maxCalls), hasToken: token != "", refused: refused}
	if a.hasToken {
		a.digest = sha256.Sum256([]byte(token))
	}
	return a
}

// checkToken checks the authorization values of a call (gRPC metadata or
// the HTTP Authorization header): exactly one, "Bearer <token>".
func (a *admission) checkToken(values []string) error {
	if !a.hasToken {
		return nil
	}
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

// acquire takes a slot without waiting; release gives it back.
func (a *admission) acquire() error {
	select {
	case a.slots <- struct{}{}:
		return nil
	default:
		return status.Error(codes.ResourceExhausted, fmt.Sprintf("%d admin calls are in progress, the most allowed at once; retry shortly", cap(a.slots)))
	}
}

func (a *admission) release() { <-a.slots }

// refuse reports a call turned away with err, and returns err.
func (a *admission) refuse(err error) error {
	if a.refused != nil {
		a.refused(status.Code(err))
	}
	return err
}

// unaryMethods are the RoomService calls that take a slot. WatchRoom, the
// one stream, holds no request beyond its room id and may last for hours.
var unaryMethods = func() map[string]bool {
	m := make(map[string]bool)
	for _, md := range roomdv1.RoomService_ServiceDesc.Methods {
		m["/"+roomdv1.RoomService_ServiceDesc.ServiceName+"/"+md.MethodName] = true
	}
	return m
}()

// fromGateway reports whether a call came from the REST gateway over the
// in-process listener (ListenInProcess): the gateway admitted it already,
// taking a slot of its own if it carried a body, so it takes no second one.
func fromGateway(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	return ok && p.Addr != nil && p.Addr.Network() == "bufconn"
}

// tap runs as a gRPC stream arrives, before its request is read: every call
// but health and reflection needs the token (so a service registered later
// is closed too), and a unary RoomService call a slot, held until its
// stream ends, however it ends.
func (a *admission) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if isOpen(info.FullMethodName) {
		return ctx, nil
	}
	if err := a.checkToken(info.Header.Get("authorization")); err != nil {
		return nil, a.refuse(err)
	}
	if !unaryMethods[info.FullMethodName] || fromGateway(ctx) {
		return ctx, nil
	}
	if err := a.acquire(); err != nil {
		return nil, a.refuse(err)
	}
	// grpc cancels a stream's context when the stream ends, whether the
	// handler ran or the request failed to arrive or decode.
	context.AfterFunc(ctx, a.release)
	return ctx, nil
}
