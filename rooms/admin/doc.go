// Package admin is roomd's admin API: the gRPC RoomService (proto/roomd/v1)
// mapped onto Rooms, the operations it declares it needs (one node's
// rooms.Hub through HubRooms today; a cluster-wide implementation later),
// and its REST face through grpc-gateway. It holds no state of its own;
// every call is one Rooms call plus translation between proto messages and
// rooms types, and between rooms errors and gRPC codes (which the gateway
// maps to HTTP statuses). Input is checked against the limits in limits.go
// before Rooms sees it.
//
// ServerOptions secures and hardens the gRPC server: the admin token check
// (every service but health and reflection), panic recovery, a request size bound and
// keepalive enforcement. The gateway forwards the HTTP Authorization header
// as metadata, so REST calls are checked by the same interceptor; it reaches
// the server in process (ListenInProcess, DialInProcess), never over TLS.
package admin
