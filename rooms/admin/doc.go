// Package admin is roomd's admin API: the gRPC RoomService (proto/roomd/v1)
// mapped onto a rooms.Hub, and its REST face through grpc-gateway. It holds
// no state of its own; every call is one Hub call plus translation between
// proto messages and rooms types, and between rooms errors and gRPC codes
// (which the gateway maps to HTTP statuses).
package admin
