package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms"
	"roomd/rooms/errcode"
)

// Page sizes: what page_size 0 means, and the most one page holds.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Service implements roomdv1.RoomServiceServer on Rooms.
type Service struct {
	roomdv1.UnimplementedRoomServiceServer
	rooms           Rooms
	maxPayloadBytes int
	log             *slog.Logger
}

// Options configures a Service. The zero value is usable.
type Options struct {
	// MaxPayloadBytes bounds the text or binary payload of Publish and
	// SendToClient; give it the WebSocket edge's read limit, so that no
	// member receives more than a member may send. 0 means
	// rooms.DefaultMaxMessageBytes, the edge's default too.
	MaxPayloadBytes int
	// Logger gets a line for each change made through the API (rooms
	// created and deleted, kicks, bans, unbans), with the caller's address;
	// nil means slog.Default().
	Logger *slog.Logger
}

// NewService returns the admin service for r with the default Options;
// HubRooms(hub) serves one Hub.
func NewService(r Rooms) *Service { return NewServiceWithOptions(r, Options{}) }

// NewServiceWithOptions returns the admin service for r.
func NewServiceWithOptions(r Rooms, opts Options) *Service {
	s := &Service{rooms: r, maxPayloadBytes: opts.MaxPayloadBytes, log: cmp.Or(opts.Logger, slog.Default())}
	if s.maxPayloadBytes <= 0 {
		s.maxPayloadBytes = rooms.DefaultMaxMessageBytes
	}
	return s
}

// statusOf turns a rooms error into a gRPC status with the same message.
func statusOf(err error) error {
	return status.Error(errcode.Of(err).GRPC, err.Error())
}

func roomProto(r rooms.RoomInfo) *roomdv1.Room {
	return &roomdv1.Room{
		RoomId:      r.RoomID,
		MaxClients:  uint32(r.Options.MaxClients),
		Echo:        r.Options.Echo,
		Metadata:    r.Options.Metadata,
		CreateTime:  timestamppb.New(r.CreatedAt),
		ClientCount: uint32(r.ClientCount),
		AutoCreated: r.AutoCreated,
		HistorySize: uint32(r.Options.HistorySize),
		LastSeq:     r.Seq,
		Epoch:       r.Epoch,
		Presence:    !r.Options.NoPresence,
	}
}

func clientProto(c rooms.ClientInfo) *roomdv1.Client {
	node, _ := rooms.NodeOfClientID(c.ClientID) // every id a Hub makes names one
	return &roomdv1.Client{
		ClientId:    c.ClientID,
		UserId:      c.UserID,
		RoomId:      c.RoomID,
		RemoteAddr:  c.RemoteAddr,
		ConnectTime: timestamppb.New(c.ConnectedAt),
		Node:        node,
	}
}

// pageRequest checks page_size and page_token and returns the page size and
// the id the page starts after.
func pageRequest(size int32, token string) (int, string, error) {
	n, err := pageSize(size)
	if err != nil {
		return 0, "", err
	}
	// A token this server hands out holds a room or client id, which is
	// never longer than rooms.MaxIDBytes.
	after, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(after) > rooms.MaxIDBytes {
		return 0, "", status.Errorf(codes.InvalidArgument, "page_token %q is not one this server handed out", truncate(token, 64))
	}
	return n, string(after), nil
}

// pageSize checks page_size and returns the number of items a page holds.
func pageSize(size int32) (int, error) {
	switch {
	case size < 0:
		return 0, status.Errorf(codes.InvalidArgument, "page_size must not be negative, got %d", size)
	case size == 0:
		return DefaultPageSize, nil
	case size > MaxPageSize:
		return 0, status.Errorf(codes.InvalidArgument, "page_size %d is over the limit of %d", size, MaxPageSize)
	}
	return int(size), nil
}

// nextPageToken is opaque to clients: the id of the last item, encoded.
func nextPageToken(lastID string, more bool) string {
	if !more {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

func (s *Service) CreateRoom(ctx context.Context, req *roomdv1.CreateRoomRequest) (*roomdv1.CreateRoomResponse, error) {
	if err := checkMetadata(req.GetMetadata()); err != nil {
		return nil, err
	}
	echo := true
	if req.Echo != nil {
		echo = *req.Echo
	}
	history := -1 // the server's default
	if req.HistorySize != nil {
		history = int(*req.HistorySize)
	}
	info, err := s.rooms.CreateRoom(ctx, req.GetRoomId(), rooms.RoomOptions{
		MaxClients:  int(req.GetMaxClients()),
		Echo:        echo,
		Metadata:    req.GetMetadata(),
		HistorySize: history,
		NoPresence:  req.Presence != nil && !*req.Presence,
	})
	if err != nil {
		return nil, statusOf(err)
	}
	s.audit(ctx, "room created", slog.String("room", info.RoomID))
	return &roomdv1.CreateRoomResponse{Room: roomProto(info)}, nil
}

func (s *Service) GetRoom(ctx context.Context, req *roomdv1.GetRoomRequest) (*roomdv1.GetRoomResponse, error) {
	info, cov, err := s.rooms.GetRoom(ctx, req.GetRoomId())
	if err != nil {
		return nil, statusOf(err)
	}
	return &roomdv1.GetRoomResponse{Room: roomProto(info), Partial: cov.Partial(), UnreachableNodes: cov.Unreachable}, nil
}

func (s *Service) ListRooms(ctx context.Context, req *roomdv1.ListRoomsRequest) (*roomdv1.ListRoomsResponse, error) {
	size, after, err := pageRequest(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	page, more, cov := s.rooms.ListRooms(ctx, after, size)
	resp := &roomdv1.ListRoomsResponse{Rooms: make([]*roomdv1.Room, len(page)), Partial: cov.Partial(), UnreachableNodes: cov.Unreachable}
	for i, r := range page {
		resp.Rooms[i] = roomProto(r)
	}
	if len(page) > 0 {
		resp.NextPageToken = nextPageToken(page[len(page)-1].RoomID, more)
	}
	return resp, nil
}

func (s *Service) DeleteRoom(ctx context.Context, req *roomdv1.DeleteRoomRequest) (*roomdv1.DeleteRoomResponse, error) {
	res, cov, err := s.rooms.DeleteRoom(ctx, req.GetRoomId())
	if err != nil {
		return nil, statusOf(err)
	}
	s.audit(ctx, "room deleted", slog.String("room", req.GetRoomId()), slog.Int("members_removed", res.Removed))
	return &roomdv1.DeleteRoomResponse{
		DisconnectedCount: uint32(res.Disconnected), RemovedCount: uint32(res.Removed),
		Partial: cov.Partial(), UnreachableNodes: cov.Unreachable,
	}, nil
}

func (s *Service) ListClients(ctx context.Context, req *roomdv1.ListClientsRequest) (*roomdv1.ListClientsResponse, error) {
	size, after, err := pageRequest(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	page, more, cov, err := s.rooms.Clients(ctx, req.GetRoomId(), after, size)
	if err != nil {
		return nil, statusOf(err)
	}
	resp := &roomdv1.ListClientsResponse{Clients: make([]*roomdv1.Client, len(page)), Partial: cov.Partial(), UnreachableNodes: cov.Unreachable}
	for i, c := range page {
		resp.Clients[i] = clientProto(c)
	}
	if len(page) > 0 {
		resp.NextPageToken = nextPageToken(page[len(page)-1].ClientID, more)
	}
	return resp, nil
}

func (s *Service) KickClient(ctx context.Context, req *roomdv1.KickClientRequest) (*roomdv1.KickClientResponse, error) {
	if err := firstError(checkID("client_id", req.GetClientId()), checkReason(req.GetReason()), checkBanSeconds(req.GetBanSeconds())); err != nil {
		return nil, err
	}
	if req.GetBanSeconds() == 0 {
		info, err := s.rooms.KickClient(ctx, req.GetClientId(), req.GetReason())
		if err != nil {
			return nil, statusOf(err)
		}
		s.audit(ctx, "client kicked", slog.String("client", info.ClientID), slog.String("user", info.UserID), slog.String("reason", req.GetReason()))
		return &roomdv1.KickClientResponse{Client: clientProto(info)}, nil
	}
	info, ban, err := s.rooms.BanClient(ctx, req.GetClientId(), req.GetReason(), seconds(req.GetBanSeconds()))
	if err != nil {
		return nil, statusOf(err)
	}
	s.audit(ctx, "client kicked and user banned", slog.String("client", info.ClientID), slog.String("user", info.UserID),
		slog.String("room", ban.RoomID), slog.Time("until", ban.ExpiresAt), slog.String("reason", req.GetReason()))
	return &roomdv1.KickClientResponse{Client: clientProto(info), Ban: banProto(ban)}, nil
}

func (s *Service) KickUser(ctx context.Context, req *roomdv1.KickUserRequest) (*roomdv1.KickUserResponse, error) {
	if err := firstError(checkID("user_id", req.GetUserId()), checkReason(req.GetReason()), checkBanSeconds(req.GetBanSeconds())); err != nil {
		return nil, err
	}
	if req.GetBanSeconds() == 0 {
		n, cov, err := s.rooms.KickUser(ctx, req.GetUserId(), req.GetRoomId(), req.GetReason())
		if err != nil {
			return nil, statusOf(err)
		}
		s.audit(ctx, "user kicked", slog.String("user", req.GetUserId()), slog.String("room", req.GetRoomId()),
			slog.Int("kicked", n), slog.String("reason", req.GetReason()))
		return &roomdv1.KickUserResponse{KickedCount: uint32(n), Partial: cov.Partial(), UnreachableNodes: cov.Unreachable}, nil
	}
	ban, n, cov, err := s.rooms.BanUser(ctx, req.GetUserId(), req.GetRoomId(), req.GetReason(), seconds(req.GetBanSeconds()))
	if err != nil {
		return nil, statusOf(err)
	}
	s.audit(ctx, "user kicked and banned", slog.String("user", req.GetUserId()), slog.String("room", req.GetRoomId()),
		slog.Int("kicked", n), slog.Time("until", ban.ExpiresAt), slog.String("reason", req.GetReason()))
	return &roomdv1.KickUserResponse{KickedCount: uint32(n), Ban: banProto(ban), Partial: cov.Partial(), UnreachableNodes: cov.Unreachable}, nil
}

func seconds(n uint32) time.Duration { return time.Duration(n) * time.Second }

// messageOf turns the text/binary oneof of Publish and SendToClient into a
// message of the matching kind.
func messageOf(payload any) (*rooms.Message, error) {
	switch p := payload.(type) {
	case *roomdv1.PublishRequest_Text:
		return &rooms.Message{Kind: rooms.Text, Payload: []byte(p.Text)}, nil
	case *roomdv1.SendToClientRequest_Text:
		return &rooms.Message{Kind: rooms.Text, Payload: []byte(p.Text)}, nil
	case *roomdv1.PublishRequest_Binary:
		return &rooms.Message{Kind: rooms.Binary, Payload: p.Binary}, nil
	case *roomdv1.SendToClientRequest_Binary:
		return &rooms.Message{Kind: rooms.Binary, Payload: p.Binary}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "set either text or binary")
}

func (s *Service) Publish(ctx context.Context, req *roomdv1.PublishRequest) (*roomdv1.PublishResponse, error) {
	m, err := messageOf(req.GetPayload())
	if err != nil {
		return nil, err
	}
	if err := s.checkPayload(m); err != nil {
		return nil, err
	}
	for i, id := range req.GetExcludeClientIds() {
		if err := checkID(fmt.Sprintf("exclude_client_ids[%d]", i), id); err != nil {
			return nil, err
		}
	}
	m.RoomID = req.GetRoomId()
	m.ExcludeClientIDs = req.GetExcludeClientIds()
	pub, err := s.rooms.Publish(ctx, m)
	if err != nil {
		return nil, statusOf(err)
	}
	// Recipients is -1 when delivery is asynchronous (a cluster's broker).
	return &roomdv1.PublishResponse{RecipientCount: uint32(max(pub.Recipients, 0)), Seq: pub.Seq, Epoch: pub.Epoch}, nil
}

func (s *Service) SendToClient(ctx context.Context, req *roomdv1.SendToClientRequest) (*roomdv1.SendToClientResponse, error) {
	if err := checkID("client_id", req.GetClientId()); err != nil {
		return nil, err
	}
	m, err := messageOf(req.GetPayload())
	if err != nil {
		return nil, err
	}
	if err := s.checkPayload(m); err != nil {
		return nil, err
	}
	if err := s.rooms.SendToClient(ctx, req.GetClientId(), m); err != nil {
		return nil, statusOf(err)
	}
	return &roomdv1.SendToClientResponse{}, nil
}

// watchDrainTimeout bounds how long a watch whose room was deleted (or
// whose server is stopping) waits for its reader to take the last events.
const watchDrainTimeout = 10 * time.Second

// WatchRoom streams a room's events, after those of its history it asks
// for. They are sent from a goroutine of their own: a reader that stops
// reading blocks that goroutine (gRPC flow control), and the call still
// ends as soon as its watch falls more than rooms.WatcherBytes behind,
// with RESOURCE_EXHAUSTED, instead of holding its events until the reader
// wakes up.
func (s *Service) WatchRoom(req *roomdv1.WatchRoomRequest, stream grpc.ServerStreamingServer[roomdv1.WatchRoomResponse]) error {
	if err := checkID("epoch", req.GetEpoch()); err != nil {
		return err
	}
	var since *rooms.Position
	switch {
	case req.SinceSeq != nil:
		since = &rooms.Position{Seq: req.GetSinceSeq(), Epoch: req.GetEpoch()}
	case req.GetEpoch() != "":
		return invalid("epoch is the epoch of since_seq, which is not set")
	}
	w, err := s.rooms.Watch(stream.Context(), req.GetRoomId(), since)
	if err != nil {
		return statusOf(err)
	}
	defer w.Stop()
	// Headers go out now, so a REST client sees 200 before the first event.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	sent := make(chan error, 1)
	go func() { sent <- sendEvents(stream, w) }()
	select {
	case err := <-sent:
		return err
	case <-w.Ended():
	}
	if errors.Is(w.Err(), rooms.ErrWatcherTooSlow) {
		return statusOf(w.Err())
	}
	select {
	case err := <-sent:
		return err
	case <-time.After(watchDrainTimeout):
		return status.Errorf(codes.ResourceExhausted, "the watch has ended (%v) and its reader did not take the last events within %v", w.Err(), watchDrainTimeout)
	}
}

// sendEvents sends w's events on stream until the watch or the stream ends.
func sendEvents(stream grpc.ServerStreamingServer[roomdv1.WatchRoomResponse], w Watch) error {
	for {
		e, ok, err := w.Next(stream.Context())
		if !ok {
			if err != nil {
				return statusOf(err)
			}
			return nil
		}
		if err := stream.Send(eventProto(e)); err != nil {
			return err
		}
	}
}

func eventProto(e rooms.Event) *roomdv1.WatchRoomResponse {
	resp := &roomdv1.WatchRoomResponse{Time: timestamppb.New(e.Time)}
	switch e.Kind {
	case rooms.EventClientJoined:
		resp.Event = &roomdv1.WatchRoomResponse_ClientJoined{ClientJoined: &roomdv1.ClientJoined{Client: clientProto(e.Client)}}
	case rooms.EventClientLeft:
		resp.Event = &roomdv1.WatchRoomResponse_ClientLeft{ClientLeft: &roomdv1.ClientLeft{
			Client: clientProto(e.Client), CloseCode: uint32(e.CloseCode), Reason: e.Reason, Cause: causeProto(e.Cause),
		}}
	case rooms.EventMessagePublished:
		mp := &roomdv1.MessagePublished{FromClientId: e.Message.FromClientID, RecipientCount: uint32(e.Recipients), Seq: e.Message.Seq}
		if e.Message.Kind == rooms.Text {
			mp.Payload = &roomdv1.MessagePublished_Text{Text: string(e.Message.Payload)}
		} else {
			mp.Payload = &roomdv1.MessagePublished_Binary{Binary: e.Message.Payload}
		}
		resp.Event = &roomdv1.WatchRoomResponse_MessagePublished{MessagePublished: mp}
	case rooms.EventRoomDeleted:
		resp.Event = &roomdv1.WatchRoomResponse_RoomDeleted{RoomDeleted: &roomdv1.RoomDeleted{}}
	}
	return resp
}

func (s *Service) ListNodes(ctx context.Context, _ *roomdv1.ListNodesRequest) (*roomdv1.ListNodesResponse, error) {
	nodes, cov, err := s.rooms.Nodes(ctx)
	if err != nil {
		return nil, statusOf(err)
	}
	resp := &roomdv1.ListNodesResponse{Nodes: make([]*roomdv1.Node, len(nodes)), Partial: cov.Partial(), UnreachableNodes: cov.Unreachable}
	for i, n := range nodes {
		resp.Nodes[i] = &roomdv1.Node{
			Name:          n.Name,
			PublicUrl:     n.PublicURL,
			AdminGrpcAddr: n.AdminGRPC,
			AdminHttpAddr: n.AdminHTTP,
			StartTime:     timestamppb.New(n.StartedAt),
			ClientCount:   uint32(n.Clients),
			LastHeartbeat: timestamppb.New(n.Heartbeat),
			Version:       n.Version,
		}
	}
	return resp, nil
}

func causeProto(c rooms.LeaveCause) roomdv1.LeaveCause {
	switch c {
	case rooms.CauseLeft:
		return roomdv1.LeaveCause_LEAVE_CAUSE_LEFT
	case rooms.CauseClosedByClient:
		return roomdv1.LeaveCause_LEAVE_CAUSE_CLOSED_BY_CLIENT
	case rooms.CauseDropped:
		return roomdv1.LeaveCause_LEAVE_CAUSE_DROPPED
	case rooms.CauseKicked:
		return roomdv1.LeaveCause_LEAVE_CAUSE_KICKED
	case rooms.CauseRoomDeleted:
		return roomdv1.LeaveCause_LEAVE_CAUSE_ROOM_DELETED
	case rooms.CauseShutdown:
		return roomdv1.LeaveCause_LEAVE_CAUSE_SHUTDOWN
	}
	return roomdv1.LeaveCause_LEAVE_CAUSE_UNSPECIFIED
}
