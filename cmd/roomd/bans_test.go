package main

// Kick as a ban, end to end: KickUser and KickClient with ban_seconds,
// ListBans, Unban, and a banned user's dial that never makes them a member.
// How the WebSocket edge words the refusal (4403) is the edge's to test.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc/codes"

	roomdv1 "roomd/gen/roomd/v1"
)

// userIDs lists the users with a connection in room.
func userIDs(t *testing.T, s *testServer, room string) []string {
	t.Helper()
	var users []string
	for _, c := range mustListClients(t, s, room) {
		users = append(users, c.GetUserId())
	}
	slices.Sort(users)
	return users
}

// expectDialRefused dials room as user and requires that the connection does
// not become a member: either the dial fails, or the server ends it.
func expectDialRefused(t *testing.T, s *testServer, room, user string) {
	t.Helper()
	// A browser cannot read an upgrade's HTTP status, so a ban upgrades
	// and closes at once with 4403 and a reason that says so.
	dialRefused(t, s, room, "user="+url.QueryEscape(user), 4403, fmt.Sprintf("user %q is banned from", user))
	if users, err := s.admin.ListClients(adminContext(t), &roomdv1.ListClientsRequest{RoomId: room}); err == nil {
		for _, c := range users.GetClients() {
			if c.GetUserId() == user {
				t.Errorf("banned user %s is a member of %s: %v", user, room, c)
			}
		}
	}
}

// checkBan requires a ban's fields and a lifetime of d from its creation.
func checkBan(t *testing.T, what string, b *roomdv1.Ban, user, room, reason string, d time.Duration) {
	t.Helper()
	if b.GetUserId() != user || b.GetRoomId() != room || b.GetReason() != reason {
		t.Errorf("%s: ban %v, want user %q room %q reason %q", what, b, user, room, reason)
	}
	created, expires := b.GetCreateTime().AsTime(), b.GetExpireTime().AsTime()
	if since := time.Since(created); since < 0 || since > time.Minute {
		t.Errorf("%s: create_time %v is not about now", what, created)
	}
	if got := expires.Sub(created); got != d {
		t.Errorf("%s: ban lasts %v, want %v", what, got, d)
	}
}

func TestKickUserWithBan(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "garden"})
	annLobby := s.dial(t, "lobby", "user=ann")
	annGarden := s.dial(t, "garden", "user=ann")
	bob := s.dial(t, "lobby", "user=bob")

	resp, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", RoomId: "lobby", Reason: "spam", BanSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetKickedCount() != 1 {
		t.Errorf("kicked_count %d, want 1", resp.GetKickedCount())
	}
	checkBan(t, "KickUser response", resp.GetBan(), "ann", "lobby", "spam", time.Hour)
	expectClose(t, annLobby, 4000, "spam")

	// ann cannot come back to lobby, but garden and bob are untouched.
	expectDialRefused(t, s, "lobby", "ann")
	if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "garden", Payload: &roomdv1.PublishRequest_Text{Text: "still in garden"}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, annGarden, websocket.TextMessage, "still in garden")
	s.dial(t, "garden", "user=ann")
	s.dial(t, "lobby", "user=cid")
	if got := userIDs(t, s, "lobby"); !slices.Equal(got, []string{"bob", "cid"}) {
		t.Errorf("lobby has %q, want bob and cid", got)
	}
	if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: "bob stays"}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, bob, websocket.TextMessage, "bob stays")

	// Without room_id the ban covers every room, and a missing room too
	// (auto-create does not make it for a banned user).
	resp, err = s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "dan", BanSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetKickedCount() != 0 || resp.GetBan().GetRoomId() != "" {
		t.Errorf("KickUser of dan everywhere: %v, want nobody kicked and a ban from every room", resp)
	}
	expectDialRefused(t, s, "garden", "dan")
	expectDialRefused(t, s, "new-room", "dan")
	if _, err := s.admin.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: "new-room"}); err == nil {
		t.Error("a banned user's dial created new-room")
	}

	// A kick without ban_seconds bans nobody.
	s.dial(t, "garden", "user=eve")
	if _, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "eve", Reason: "just a kick"}); err != nil {
		t.Fatal(err)
	}
	s.dial(t, "garden", "user=eve")
}

func TestKickClientWithBan(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "lobby"})
	ann1 := s.dial(t, "lobby", "user=ann")
	ann1ID := clientIDOfUser(t, s, "lobby", "ann")
	ann2 := s.dial(t, "lobby", "user=ann")
	s.dial(t, "garden", "user=ann")

	var rest roomdv1.KickClientResponse
	restOK(t, s, "POST", "/v1/clients/"+ann1ID+":kick", `{"reason":"rude","banSeconds":600}`, &rest)
	if rest.GetClient().GetClientId() != ann1ID {
		t.Errorf("KickClient returned client %v, want %s", rest.GetClient(), ann1ID)
	}
	checkBan(t, "KickClient response", rest.GetBan(), "ann", "lobby", "rude", 10*time.Minute)
	// The ban is the user's: her other connection in lobby goes too.
	expectClose(t, ann1, 4000, "rude")
	expectClose(t, ann2, 4000, "rude")
	expectDialRefused(t, s, "lobby", "ann")
	if got := userIDs(t, s, "garden"); !slices.Equal(got, []string{"ann"}) {
		t.Errorf("garden has %q, want ann's connection there untouched", got)
	}

	// A client without a user id cannot be banned, and is not kicked.
	anon := s.dial(t, "lobby", "")
	var anonID string
	for _, c := range mustListClients(t, s, "lobby") {
		if c.GetUserId() == "" {
			anonID = c.GetClientId()
		}
	}
	_, err := s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: anonID, BanSeconds: 60})
	checkGRPCError(t, "KickClient with a ban of a client without user", err, codes.FailedPrecondition, anonID, "no user id")
	checkRESTError(t, s, "POST", "/v1/clients/"+anonID+":kick", `{"banSeconds":60}`, http.StatusBadRequest, codes.FailedPrecondition, "no user id")
	if _, err := s.admin.Publish(ctx, &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: "anon stays"}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, anon, websocket.TextMessage, "anon stays")
}

func TestBanSecondsLimit(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	ws := s.dial(t, "lobby", "user=ann")
	annID := clientIDOfUser(t, s, "lobby", "ann")
	const tooLong = 365*24*3600 + 1

	_, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", BanSeconds: tooLong})
	checkGRPCError(t, "KickUser with too long a ban", err, codes.InvalidArgument, "ban_seconds", fmt.Sprint(tooLong))
	_, err = s.admin.KickClient(ctx, &roomdv1.KickClientRequest{ClientId: annID, BanSeconds: tooLong})
	checkGRPCError(t, "KickClient with too long a ban", err, codes.InvalidArgument, "ban_seconds")
	checkRESTError(t, s, "POST", "/v1/users/ann:kick", fmt.Sprintf(`{"banSeconds":%d}`, tooLong), http.StatusBadRequest, codes.InvalidArgument, "ban_seconds")

	// Nothing happened to ann.
	if _, err := s.admin.SendToClient(ctx, &roomdv1.SendToClientRequest{ClientId: annID, Payload: &roomdv1.SendToClientRequest_Text{Text: "still here"}}); err != nil {
		t.Fatal(err)
	}
	expectReceived(t, ws, websocket.TextMessage, "still here")
	if resp, err := s.admin.ListBans(ctx, &roomdv1.ListBansRequest{}); err != nil || len(resp.GetBans()) != 0 {
		t.Errorf("ListBans after refused bans: %v %v, want none", resp, err)
	}

	// Exactly a year is fine.
	if _, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: "ann", BanSeconds: tooLong - 1}); err != nil {
		t.Errorf("KickUser with a one-year ban: %v", err)
	}
}

func TestListBansAndUnban(t *testing.T) {
	s := startServer(t)
	ctx := adminContext(t)
	// Bans made in an order other than the listing's.
	for _, b := range []struct{ user, room string }{{"cid", "b"}, {"ann", "z"}, {"bob", ""}, {"ann", ""}, {"cid", "a"}} {
		if _, err := s.admin.KickUser(ctx, &roomdv1.KickUserRequest{UserId: b.user, RoomId: b.room, Reason: "r", BanSeconds: 600}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"ann/", "ann/z", "bob/", "cid/a", "cid/b"}

	walk := func(t *testing.T, list func(token string) ([]*roomdv1.Ban, string)) {
		t.Helper()
		var got []string
		token := ""
		for page := 1; ; page++ {
			bans, next := list(token)
			if len(bans) > 2 {
				t.Fatalf("page %d has %d bans, want at most 2", page, len(bans))
			}
			for _, b := range bans {
				got = append(got, b.GetUserId()+"/"+b.GetRoomId())
			}
			if next == "" {
				break
			}
			if page > len(want) {
				t.Fatal("more pages than bans")
			}
			token = next
		}
		if !slices.Equal(got, want) {
			t.Errorf("listed %q, want %q", got, want)
		}
	}
	t.Run("gRPC", func(t *testing.T) {
		walk(t, func(token string) ([]*roomdv1.Ban, string) {
			resp, err := s.admin.ListBans(ctx, &roomdv1.ListBansRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatalf("ListBans token %q: %v", token, err)
			}
			return resp.GetBans(), resp.GetNextPageToken()
		})
	})
	t.Run("REST", func(t *testing.T) {
		walk(t, func(token string) ([]*roomdv1.Ban, string) {
			var resp roomdv1.ListBansResponse
			restOK(t, s, "GET", "/v1/bans?pageSize=2&pageToken="+url.QueryEscape(token), "", &resp)
			return resp.GetBans(), resp.GetNextPageToken()
		})
	})

	_, err := s.admin.ListBans(ctx, &roomdv1.ListBansRequest{PageToken: "!!"})
	checkGRPCError(t, "ListBans with a bad token", err, codes.InvalidArgument, "page_token")

	// Unban lifts every ban of the user, and the user can join again.
	expectDialRefused(t, s, "z", "ann")
	resp, err := s.admin.Unban(ctx, &roomdv1.UnbanRequest{UserId: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetBans()) != 2 || resp.GetBans()[0].GetRoomId() != "" || resp.GetBans()[1].GetRoomId() != "z" {
		t.Errorf("Unban returned %v, want ann's two bans", resp.GetBans())
	}
	s.dial(t, "z", "user=ann")
	if got := userIDs(t, s, "z"); !slices.Equal(got, []string{"ann"}) {
		t.Errorf("z has %q after the unban, want ann", got)
	}
	_, err = s.admin.Unban(ctx, &roomdv1.UnbanRequest{UserId: "ann"})
	checkGRPCError(t, "second Unban", err, codes.NotFound, `"ann"`)

	// Over REST, one room's ban first (?roomId=), then the rest.
	var one roomdv1.UnbanResponse
	restOK(t, s, "DELETE", "/v1/bans/cid?roomId=a", "", &one)
	if len(one.GetBans()) != 1 || one.GetBans()[0].GetRoomId() != "a" {
		t.Errorf("REST Unban of cid in a: %v, want the ban from a", one.GetBans())
	}
	checkRESTError(t, s, "DELETE", "/v1/bans/cid?roomId=a", "", http.StatusNotFound, codes.NotFound, `room "a"`)
	checkRESTError(t, s, "DELETE", "/v1/bans/cid?roomId=%20bad", "", http.StatusBadRequest, codes.InvalidArgument, "room_id")
	var unban roomdv1.UnbanResponse
	restOK(t, s, "DELETE", "/v1/bans/cid", "", &unban)
	if len(unban.GetBans()) != 1 || unban.GetBans()[0].GetRoomId() != "b" {
		t.Errorf("REST Unban of cid: %v, want the ban from b left", unban.GetBans())
	}
	checkRESTError(t, s, "DELETE", "/v1/bans/cid", "", http.StatusNotFound, codes.NotFound, `"cid"`)
	var left roomdv1.ListBansResponse
	restOK(t, s, "GET", "/v1/bans", "", &left)
	if len(left.GetBans()) != 1 || left.GetBans()[0].GetUserId() != "bob" {
		t.Errorf("bans left: %v, want bob's", left.GetBans())
	}
}

func TestBanExpires(t *testing.T) {
	s := startServer(t)
	if _, err := s.admin.KickUser(adminContext(t), &roomdv1.KickUserRequest{UserId: "ann", RoomId: "lobby", BanSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	expectDialRefused(t, s, "lobby", "ann")
	// Within a second or so the ban is gone from the list, then the user
	// can join again.
	eventually(t, "the one-second ban expires", func() bool {
		resp, err := s.admin.ListBans(adminContext(t), &roomdv1.ListBansRequest{})
		return err == nil && len(resp.GetBans()) == 0
	})
	s.dial(t, "lobby", "user=ann")
	if got := userIDs(t, s, "lobby"); !slices.Equal(got, []string{"ann"}) {
		t.Errorf("lobby has %q after the ban expired, want ann", got)
	}
	_, err := s.admin.Unban(adminContext(t), &roomdv1.UnbanRequest{UserId: "ann"})
	checkGRPCError(t, "Unban of an expired ban", err, codes.NotFound)
}
