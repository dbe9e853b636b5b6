package admin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/admin/console"
)

// DefaultMaxRecvMsgBytes bounds one admin request when ServerConfig leaves
// MaxRecvMsgBytes 0.
const DefaultMaxRecvMsgBytes = 4 << 20

// Keepalive: the server pings a connection idle for keepaliveTime and drops
// it if the ping is not answered within keepaliveTimeout, so dead peers do
// not hold streams; a client may ping, idle or not, but not more often than
// every minClientPing (more often gets the connection closed).
const (
	keepaliveTime    = time.Minute
	keepaliveTimeout = 20 * time.Second
	minClientPing    = 10 * time.Second
)

// ServerConfig hardens and secures the admin gRPC server (ServerOptions).
// The zero value serves without authentication, with the defaults below.
type ServerConfig struct {
	// Token, when not empty, is required as "authorization: Bearer <Token>"
	// metadata on every call except those of the health and server
	// reflection services; a missing or wrong one is UNAUTHENTICATED.
	Token string
	// MaxRecvMsgBytes bounds one request message; 0 means
	// DefaultMaxRecvMsgBytes. Bigger is RESOURCE_EXHAUSTED.
	MaxRecvMsgBytes int
	// MaxConcurrentCalls bounds the unary RoomService calls in progress;
	// 0 means DefaultMaxConcurrentCalls. One more is RESOURCE_EXHAUSTED,
	// refused before its request is read.
	MaxConcurrentCalls int
	// Logger gets the panics recovered from handlers; nil means
	// slog.Default().
	Logger *slog.Logger
	// Refused, if set, is called with the code of each call turned away
	// before it started (a missing or wrong token, MaxConcurrentCalls):
	// such calls never reach the handlers, nor interceptors that count
	// calls.
	Refused func(codes.Code)
}

// ServerOptions returns the options that make a gRPC server what cfg says:
// the token check and a bound on calls in progress, both before a request
// is read (admission); a bound on requests, keepalive enforcement, and a
// panic in a handler turned into INTERNAL for that call only (and logged).
func ServerOptions(cfg ServerConfig) []grpc.ServerOption {
	if cfg.MaxRecvMsgBytes <= 0 {
		cfg.MaxRecvMsgBytes = DefaultMaxRecvMsgBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rec := recovery{log: cfg.Logger}
	return []grpc.ServerOption{
		grpc.InTapHandle(newAdmission(cfg.Token, cfg.MaxConcurrentCalls, cfg.Refused).tap),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minClientPing, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(rec.unary),
		grpc.StreamInterceptor(rec.stream),
	}
}

// NewGRPCServer returns a gRPC server with the RoomService, server
// reflection (so grpcurl needs no proto files) and the standard health
// service; give it ServerOptions to harden and secure it. The health server
// is returned so that shutdown can mark it NOT_SERVING first.
func NewGRPCServer(svc *Service, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	srv := grpc.NewServer(opts...)
	roomdv1.RegisterRoomServiceServer(srv, svc)
	hs := health.NewServer()
	hs.SetServingStatus(roomdv1.RoomService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs
}

// inProcessBufferBytes is what each direction of an in-process connection
// buffers before a write waits for the reader.
const inProcessBufferBytes = 1 << 20

// ListenInProcess returns a listener that only DialInProcess reaches. Serve
// the admin gRPC server on it too, for the gateway: it then needs neither a
// port nor TLS client settings, whatever the public listener uses.
func ListenInProcess() *bufconn.Listener { return bufconn.Listen(inProcessBufferBytes) }

// DialInProcess returns a client of the gRPC server serving ln, for
// NewGateway: a server stream that fails before it starts reports the
// failure from Header (see headerOnFailure).
func DialInProcess(ln *bufconn.Listener) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///roomd-in-process",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(headerOnFailure))
}

// GatewayConfig configures NewGateway. The zero value is usable.
type GatewayConfig struct {
	// MaxBodyBytes bounds a REST request body, which the gateway reads whole
	// before the gRPC server sees the call; a bigger one is 400. 0 means
	// twice DefaultMaxRecvMsgBytes, room for a maximal request in JSON with
	// its bytes in base64.
	MaxBodyBytes int64
	// Token, when not empty, is checked on every /v1/ request before its
	// body is read (the gRPC server checks it again); see ServerConfig.
	Token string
	// MaxConcurrentCalls bounds the /v1/ requests with a body in progress;
	// 0 means DefaultMaxConcurrentCalls. One more is 429, refused before
	// its body is read.
	MaxConcurrentCalls int
	// Version is the version /openapi.json and the index page show; empty
	// means BuildVersion().
	Version string
	// Refused, if set, is called with the code of each /v1/ request turned
	// away by the token check or MaxConcurrentCalls (see ServerConfig).
	Refused func(codes.Code)
	// WriteTimeout bounds every write of a response, each on its own, so
	// that a WatchRoom reader that stops reading is let go (with its
	// connection) instead of holding a stream forever; 0 means 10 s.
	WriteTimeout time.Duration
}

// NewGateway returns the admin HTTP handler: the REST gateway under /v1/,
// /healthz, /openapi.json, the admin console at /ui/ (package console) and
// a short index at /. It calls the gRPC server over conn (see
// DialInProcess), so that server streaming (WatchRoom) works, which
// grpc-gateway's in-process mode does not support. The gateway passes the
// Authorization header on as "authorization" metadata (its default), so the
// gRPC server checks REST calls' tokens too; /healthz, /openapi.json, the
// index and the console's files need none (the console's calls to /v1/
// carry the token its user types in).
//
// Mistakes are refused, never guessed at: an unknown field in a request
// body is 400 naming it, a method a path does not have is 405 with an
// Allow header, and a POST is never served by a GET route (grpc-gateway's
// path length fallback is off). Every error has the same JSON shape,
// {"code":...,"message":...,"details":[]}, unknown paths outside /v1/
// included; only an error after a WatchRoom stream has started comes as a
// line of its own, {"error":{...}}.
func NewGateway(ctx context.Context, conn *grpc.ClientConn, cfg GatewayConfig) (http.Handler, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 2 * DefaultMaxRecvMsgBytes
	}
	if cfg.Version == "" {
		cfg.Version = BuildVersion()
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	openAPI, err := openAPIDocument(cfg.Version)
	if err != nil {
		return nil, err
	}
	routes, err := newRoutes()
	if err != nil {
		return nil, err
	}
	gw := runtime.NewServeMux(
		runtime.WithForwardResponseOption(flushStreamStart),
		runtime.WithErrorHandler(gatewayError),
		runtime.WithRoutingErrorHandler(routes.routingError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, strictJSON),
		runtime.WithDisablePathLengthFallback(),
	)
	if err := roomdv1.RegisterRoomServiceHandler(ctx, gw, conn); err != nil {
		return nil, fmt.Errorf("register REST gateway: %w", err)
	}
	health := healthpb.NewHealthClient(conn)
	mux := http.NewServeMux()
	admit := newAdmission(cfg.Token, cfg.MaxConcurrentCalls, cfg.Refused)
	mux.Handle("/v1/", admitREST(admit, gw, http.MaxBytesHandler(gw, cfg.MaxBodyBytes)))
	mux.Handle("/", notFound(gw))
	ui := console.Handler(notFound(gw))
	mux.Handle("GET "+console.Path, ui)
	mux.Handle("GET "+strings.TrimSuffix(console.Path, "/"), ui) // redirected to console.Path
	index := indexPage(cfg.Version)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(index)
	})
	// Alive, not ready: the gRPC server answers, whether or not it is
	// serving new work (a draining node is alive; readiness is /readyz).
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := health.Check(r.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	return writeDeadlines(mux, cfg.WriteTimeout), nil
}

// writeDeadlines gives every write of a response, and every flush, d to
// finish. http.Server's WriteTimeout cannot do that for streams: it bounds
// the whole response.
func writeDeadlines(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Set at once too: net/http writes a 100 Continue itself, on a
		// connection that may carry an earlier response's deadline.
		_ = rc.SetWriteDeadline(time.Now().Add(d))
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, d: d}, r)
	})
}

type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// Flush is what the gateway calls after each streamed event.
func (w *deadlineWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// admitREST lets a REST request reach next only with the token and, if it
// has a body, a free slot; a refusal is the gateway's usual JSON error
// (401 with its challenge, or 429), sent without reading the body.
func admitREST(a *admission, gw *runtime.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.checkToken(r.Header.Values("Authorization")); err != nil {
			gatewayError(r.Context(), gw, strictJSON, w, r, a.refuse(err))
			return
		}
		if r.ContentLength != 0 {
			if err := a.acquire(); err != nil {
				gatewayError(r.Context(), gw, strictJSON, w, r, a.refuse(err))
				return
			}
			defer a.release()
		}
		next.ServeHTTP(w, r)
	})
}

// gatewayError is the gateway's error handler, and admitREST's: the usual
// JSON error with the HTTP status of its code, where UNAUTHENTICATED's 401
// carries a proper RFC 6750 challenge in WWW-Authenticate (grpc-gateway
// would put the bare status message there).
func gatewayError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if status.Code(err) == codes.Unauthenticated {
		challenge := `Bearer realm="roomd admin"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w = challengeWriter{ResponseWriter: w, challenge: challenge}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// challengeWriter sets WWW-Authenticate last thing before the status goes out.
type challengeWriter struct {
	http.ResponseWriter
	challenge string
}

func (w challengeWriter) WriteHeader(code int) {
	w.Header().Set("WWW-Authenticate", w.challenge)
	w.ResponseWriter.WriteHeader(code)
}

func (w challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// flushStreamStart sends a server stream's 200 and headers as soon as the
// gRPC stream sends its headers (WatchRoom does once the watch is in place),
// instead of with the first event: a REST watcher of a quiet room would
// otherwise hang without knowing it is being served. The gateway calls
// response options with a nil message once before a stream's first message.
// (A stream that failed before sending headers never gets here: see
// headerOnFailure.)
func flushStreamStart(ctx context.Context, w http.ResponseWriter, m proto.Message) error {
	md, _ := runtime.ServerMetadataFromContext(ctx)
	if m != nil || md.HeaderMD.Len() == 0 {
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}
