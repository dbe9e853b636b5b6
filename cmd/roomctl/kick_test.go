package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	roomdv1 "roomd/gen/roomd/v1"
)

// clientID waits until a connection of user is listed in room, and
// returns its id as clients list -o json shows it.
func (s *server) clientID(t *testing.T, room, user string) string {
	t.Helper()
	var id string
	eventually(t, user+" is listed in "+room, func() bool {
		var resp roomdv1.ListClientsResponse
		s.okJSON(t, &resp, "clients", "list", room)
		for _, c := range resp.Clients {
			if c.UserId == user {
				id = c.ClientId
			}
		}
		return id != ""
	})
	return id
}

func TestClientsList(t *testing.T) {
	s := startRoomd(t)
	s.join(t, "lobby", "user=ann")
	id := s.clientID(t, "lobby", "ann")

	out := s.ok(t, "clients", "list", "lobby")
	row := regexp.MustCompile(`^CLIENT +USER +NODE +ADDRESS +CONNECTED\n` + regexp.QuoteMeta(id) + ` +ann +local +127\.0\.0\.1:\d+ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	if !row.MatchString(out) {
		t.Fatalf("clients list printed\n%s\nwant %s's row", out, id)
	}
	var resp roomdv1.ListClientsResponse
	s.okJSON(t, &resp, "clients", "list", "lobby")
	if len(resp.Clients) != 1 || resp.Clients[0].RoomId != "lobby" || resp.Clients[0].Node != "local" || resp.Clients[0].ConnectTime == nil {
		t.Fatalf("clients list -o json: %v", &resp)
	}
	want(t, s.roomctl(t, "clients", "list", "nope"), exitNotFound, "roomctl: NotFound: ")
}

func TestKickAndBans(t *testing.T) {
	s := startRoomd(t)

	t.Run("kick client", func(t *testing.T) {
		ws := s.join(t, "lobby", "user=ann")
		id := s.clientID(t, "lobby", "ann")
		want(t, s.roomctl(t, "kick", "client", id, "-reason", "be nice"), exitOK, "kicked client "+id+" of user ann from room lobby\n")
		expectClose(t, ws, 4000, "be nice")
		want(t, s.roomctl(t, "kick", "client", id), exitNotFound, "roomctl: NotFound: ")
	})

	t.Run("kick client -o json, with a ban", func(t *testing.T) {
		ws := s.join(t, "lobby", "user=cid")
		id := s.clientID(t, "lobby", "cid")
		var resp roomdv1.KickClientResponse
		s.okJSON(t, &resp, "kick", "client", id, "-ban", "30m", "-reason", "flood")
		if resp.Client.GetClientId() != id || resp.Ban.GetUserId() != "cid" || resp.Ban.GetRoomId() != "lobby" || resp.Ban.GetReason() != "flood" {
			t.Fatalf("kick client -o json: %v", &resp)
		}
		if d := resp.Ban.ExpireTime.AsTime().Sub(resp.Ban.CreateTime.AsTime()); d != 30*time.Minute {
			t.Fatalf("kick client -ban 30m banned for %v", d)
		}
		expectClose(t, ws, 4000, "flood")
	})

	t.Run("kick user with a ban", func(t *testing.T) {
		ws := s.join(t, "lobby", "user=bob")
		s.clientID(t, "lobby", "bob")
		r := s.roomctl(t, "kick", "user", "bob", "-room", "lobby", "-ban", "1h", "-reason", "spam")
		want(t, r, exitOK, "kicked 1 connection of user bob from room lobby\n", "banned user bob from room lobby until ")
		if !strings.HasSuffix(r.stdout, ": spam\n") {
			t.Fatalf("kick user printed\n%s", r.stdout)
		}
		expectClose(t, ws, 4000, "spam")

		var resp roomdv1.KickUserResponse
		s.okJSON(t, &resp, "kick", "user", "nobody", "-ban", "1h")
		if resp.KickedCount != 0 || resp.Ban.GetUserId() != "nobody" || resp.Ban.GetRoomId() != "" {
			t.Fatalf("kick user nobody -ban 1h -o json: %v", &resp)
		}
		want(t, s.roomctl(t, "kick", "user", "dan"), exitOK, "kicked 0 connections of user dan from every room\n")
	})

	t.Run("bans list", func(t *testing.T) {
		out := s.ok(t, "bans", "list")
		table := regexp.MustCompile(`^USER +ROOM +EXPIRES +REASON\n` +
			`bob +lobby +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* \(in (59m5\d|1h0m0)s\) +spam\n` +
			`cid +lobby +\S+ \S+ \(in \d+m\d+s\) +flood\n` +
			`nobody +\* +\S+ \S+ \(in \S+\) +-\n$`)
		if !table.MatchString(out) {
			t.Fatalf("bans list printed\n%s", out)
		}
		var resp roomdv1.ListBansResponse
		s.okJSON(t, &resp, "bans", "list")
		if len(resp.Bans) != 3 || resp.Bans[0].UserId != "bob" || resp.Bans[0].Reason != "spam" || resp.Bans[2].RoomId != "" {
			t.Fatalf("bans list -o json: %v", &resp)
		}
		r := s.roomctl(t, "bans", "list", "-limit", "1")
		if r.code != exitOK || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stderr, "roomctl: more bans after these: -page-token ") {
			t.Fatalf("bans list -limit 1:\n%v", r)
		}
	})

	t.Run("bans lift", func(t *testing.T) {
		// One ban: bob has none from every room, and one from the lobby.
		want(t, s.roomctl(t, "bans", "lift", "bob", "-room", "*"), exitNotFound, `roomctl: NotFound: user "bob" has no ban from every room in force`)
		want(t, s.roomctl(t, "bans", "lift", "bob", "-room", "lobby"), exitOK, "lifted the ban of user bob from room lobby (until ")
		want(t, s.roomctl(t, "kick", "user", "bob", "-room", "lobby", "-ban", "1h", "-reason", "spam"), exitOK, "banned user bob from room lobby")
		// All of them.
		want(t, s.roomctl(t, "bans", "lift", "bob"), exitOK, "lifted the ban of user bob from room lobby (until ")
		if out := s.ok(t, "bans", "list"); strings.Contains(out, "bob") {
			t.Fatalf("bans list after lifting bob's:\n%s", out)
		}
		want(t, s.roomctl(t, "bans", "lift", "bob"), exitNotFound, "roomctl: NotFound: ")
		var resp roomdv1.UnbanResponse
		s.okJSON(t, &resp, "bans", "lift", "nobody")
		if len(resp.Bans) != 1 || resp.Bans[0].UserId != "nobody" {
			t.Fatalf("bans lift nobody -o json: %v", &resp)
		}
		// Lifted, bob joins again.
		s.join(t, "lobby", "user=bob")
		s.clientID(t, "lobby", "bob")
	})

	t.Run("a client without a user cannot be banned", func(t *testing.T) {
		s.join(t, "lobby", "")
		var anonymous string
		eventually(t, "the anonymous member is listed", func() bool {
			var resp roomdv1.ListClientsResponse
			s.okJSON(t, &resp, "clients", "list", "lobby")
			for _, c := range resp.Clients {
				if c.UserId == "" {
					anonymous = c.ClientId
				}
			}
			return anonymous != ""
		})
		want(t, s.roomctl(t, "kick", "client", anonymous, "-ban", "1h"), exitFailed, "roomctl: FailedPrecondition: ")
	})
}
