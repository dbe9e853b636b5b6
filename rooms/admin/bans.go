package admin

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms"
)

func banProto(b rooms.Ban) *roomdv1.Ban {
	return &roomdv1.Ban{
		UserId:     b.UserID,
		RoomId:     b.RoomID,
		Reason:     b.Reason,
		CreateTime: timestamppb.New(b.CreatedAt),
		ExpireTime: timestamppb.New(b.ExpiresAt),
	}
}

// Bans are listed by (user id, room id), so their page token holds both:
// each base64url-encoded, joined by a dot, which base64url never contains.
func banPageToken(last rooms.Ban, more bool) string {
	if !more {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(last.UserID)) + "." + base64.RawURLEncoding.EncodeToString([]byte(last.RoomID))
}

func banPageStart(token string) (afterUser, afterRoom string, err error) {
	if token == "" {
		return "", "", nil
	}
	user, room, ok := strings.Cut(token, ".")
	u, uErr := base64.RawURLEncoding.DecodeString(user)
	r, rErr := base64.RawURLEncoding.DecodeString(room)
	if !ok || uErr != nil || rErr != nil {
		return "", "", status.Errorf(codes.InvalidArgument, "page_token %q is not one this server handed out", truncate(token, 64))
	}
	return string(u), string(r), nil
}

func (s *Service) ListBans(ctx context.Context, req *roomdv1.ListBansRequest) (*roomdv1.ListBansResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	afterUser, afterRoom, err := banPageStart(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	page, more := s.rooms.Bans(ctx, afterUser, afterRoom, size)
	resp := &roomdv1.ListBansResponse{Bans: make([]*roomdv1.Ban, len(page))}
	for i, b := range page {
		resp.Bans[i] = banProto(b)
	}
	if len(page) > 0 {
		resp.NextPageToken = banPageToken(page[len(page)-1], more)
	}
	return resp, nil
}

func (s *Service) Unban(ctx context.Context, req *roomdv1.UnbanRequest) (*roomdv1.UnbanResponse, error) {
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	var only []string // every ban
	switch room := req.GetRoomId(); room {
	case "":
	case "*":
		only = []string{""} // the ban from every room
	default:
		if err := rooms.ValidateRoomID(room); err != nil {
			return nil, status.Error(codes.InvalidArgument, "room_id: "+err.Error()+` (or "*" for the ban from every room)`)
		}
		only = []string{room}
	}
	lifted, err := s.rooms.Unban(ctx, req.GetUserId(), only...)
	if err != nil {
		return nil, statusOf(err)
	}
	s.audit(ctx, "user unbanned", slog.String("user", req.GetUserId()), slog.String("room", req.GetRoomId()), slog.Int("bans_lifted", len(lifted)))
	resp := &roomdv1.UnbanResponse{Bans: make([]*roomdv1.Ban, len(lifted))}
	for i, b := range lifted {
		resp.Bans[i] = banProto(b)
	}
	return resp, nil
}
