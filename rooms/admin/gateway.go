package admin

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	roomdv1 "roomd/gen/roomd/v1"
)

// strictJSON is the gateway's JSON marshaler, as grpc-gateway's default but
// refusing unknown fields in a request body: {"maxClient":5} is a 400 that
// names the field, not a room with no limit. Both lowerCamelCase and
// snake_case names are accepted.
var strictJSON = &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
	UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
}}

// routes knows which HTTP methods the REST API has for a path, for the
// Allow header of a 405. It asks a ServeMux of its own that holds the
// RoomService's routes, read from the google.api.http options of the proto,
// so it matches paths exactly as the gateway does.
type routes struct {
	mux     *runtime.ServeMux
	methods []string // every method some route has, sorted
}

type matchedKey struct{}

func newRoutes() (*routes, error) {
	rs := &routes{mux: runtime.NewServeMux(
		runtime.WithDisablePathLengthFallback(),
		runtime.WithRoutingErrorHandler(func(context.Context, *runtime.ServeMux, runtime.Marshaler, http.ResponseWriter, *http.Request, int) {}),
	)}
	matched := func(_ http.ResponseWriter, r *http.Request, _ map[string]string) {
		*r.Context().Value(matchedKey{}).(*bool) = true
	}
	methods := roomdv1.File_roomd_v1_room_service_proto.Services().ByName("RoomService").Methods()
	for i := range methods.Len() {
		rule, _ := proto.GetExtension(methods.Get(i).Options(), annotations.E_Http).(*annotations.HttpRule)
		method, path := httpRoute(rule)
		if method == "" {
			continue
		}
		if err := rs.mux.HandlePath(method, path, matched); err != nil {
			return nil, fmt.Errorf("route %s %s: %w", method, path, err)
		}
		if !slices.Contains(rs.methods, method) {
			rs.methods = append(rs.methods, method)
		}
	}
	slices.Sort(rs.methods)
	return rs, nil
}

// httpRoute returns the method and path template of a google.api.http
// rule; "" if it has none.
func httpRoute(rule *annotations.HttpRule) (method, path string) {
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	}
	return "", ""
}

// allowed returns the methods that have a route for r's path.
func (rs *routes) allowed(r *http.Request) []string {
	var out []string
	for _, method := range rs.methods {
		var matched bool
		probe := (&http.Request{Method: method, URL: r.URL, Header: http.Header{}}).
			WithContext(context.WithValue(context.Background(), matchedKey{}, &matched))
		rs.mux.ServeHTTP(discardResponse{}, probe)
		if matched {
			out = append(out, method)
		}
	}
	return out
}

// discardResponse is where the probes of routes write nothing.
type discardResponse struct{}

func (discardResponse) Header() http.Header         { return http.Header{} }
func (discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (discardResponse) WriteHeader(int)             {}

// routingError answers a request no route takes, in the gateway's usual
// JSON error shape: 405 with an Allow header for a path that exists with
// other methods (grpc-gateway says 501 Unimplemented), 404 for a path that
// does not.
func (rs *routes) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		allow := strings.Join(rs.allowed(r), ", ")
		w.Header().Set("Allow", allow)
		runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{
			HTTPStatus: http.StatusMethodNotAllowed,
			Err:        status.Errorf(codes.Unimplemented, "method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow),
		})
	case http.StatusNotFound:
		runtime.HTTPError(ctx, mux, m, w, r, errNoSuchPath(r))
	default:
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
	}
}

func errNoSuchPath(r *http.Request) error {
	return status.Errorf(codes.NotFound, "no such path: %s %s; the API is described at /openapi.json", r.Method, r.URL.Path)
}

// notFound answers paths outside the API with the gateway's JSON 404.
func notFound(gw *runtime.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, m := runtime.MarshalerForRequest(gw, r)
		runtime.HTTPError(r.Context(), gw, m, w, r, errNoSuchPath(r))
	}
}

// headerOnFailure makes Header of a client stream that failed before the
// server sent its headers return that failure; grpc-go returns no error
// there and keeps the failure for Recv. The gateway reads Header before it
// starts a streamed response, so a WatchRoom that fails at once (a missing
// room, a missing token) is answered like any other failed call: its HTTP
// status and the usual {"code":...,"message":...} body, instead of a body
// in the stream's {"error":{...}} line shape.
func headerOnFailure(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return headerErrorStream{cs}, nil
}

type headerErrorStream struct{ grpc.ClientStream }

func (s headerErrorStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if md != nil || err != nil {
		return md, err
	}
	// No headers: the stream has ended (a server always sends headers
	// before a message), and receiving returns how.
	if err := s.ClientStream.RecvMsg(new(emptypb.Empty)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return nil, nil
}

// indexPage is what GET / on the admin HTTP listener answers: what this is
// and where to go.
func indexPage(version string) []byte {
	return fmt.Appendf(nil, `<!doctype html>
<title>%[1]s</title>
<h1>%[1]s</h1>
<p>roomd %[2]s. REST and gRPC (roomd.v1.RoomService) admin API of roomd's rooms.</p>
<ul>
<li><a href="/ui/">/ui/</a>: the admin console, in a browser (it asks for the admin token if the server has one)</li>
<li><a href="/v1/rooms">/v1/rooms</a>: the REST API's base (JSON; with an admin token, send it as "Authorization: Bearer &lt;token&gt;")</li>
<li><a href="/openapi.json">/openapi.json</a>: the API's OpenAPI (Swagger 2.0) description</li>
<li><a href="/healthz">/healthz</a>: liveness ("ok" while the process serves, draining or not)</li>
<li><a href="/readyz">/readyz</a>: readiness ("ready", or 503 and why not: draining, NATS unreachable)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
</ul>
`, apiTitle, html.EscapeString(version))
}
