package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	roomdv1 "roomd/gen/roomd/v1"
)

func TestRooms(t *testing.T) {
	s := startRoomd(t)

	created := s.ok(t, "rooms", "create", "lobby", "-max-clients", "50", "-metadata", "topic=general", "-metadata", "lang=en")
	for _, line := range []string{"room          lobby", "max clients   50", "echo          true", "metadata      lang=en", "              topic=general"} {
		if !strings.Contains(created, line+"\n") {
			t.Fatalf("rooms create printed\n%s\nwant the line %q", created, line)
		}
	}

	t.Run("list", func(t *testing.T) {
		out := s.ok(t, "rooms", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "ROOM   CLIENTS  MAX  ECHO  PRESENCE  AUTO   CREATED") ||
			!regexp.MustCompile(`^lobby  0        50   true  true      false  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).MatchString(lines[1]) {
			t.Fatalf("rooms list printed\n%s", out)
		}
		var resp roomdv1.ListRoomsResponse
		s.okJSON(t, &resp, "rooms", "list")
		if len(resp.Rooms) != 1 || resp.Rooms[0].RoomId != "lobby" || resp.Rooms[0].MaxClients != 50 || resp.Rooms[0].Metadata["topic"] != "general" {
			t.Fatalf("rooms list -o json: %v", &resp)
		}
	})

	t.Run("get", func(t *testing.T) {
		want(t, s.roomctl(t, "rooms", "get", "lobby"), exitOK, "room          lobby\n", "clients       0\n", "auto created  false\n")
		var resp roomdv1.GetRoomResponse
		s.okJSON(t, &resp, "rooms", "get", "lobby")
		if resp.Room.GetRoomId() != "lobby" || resp.Room.Epoch == "" || resp.Partial {
			t.Fatalf("rooms get -o json: %v", &resp)
		}
		want(t, s.roomctl(t, "rooms", "get", "nope"), exitNotFound, "roomctl: NotFound: room \"nope\" not found\n")
	})

	t.Run("create's options", func(t *testing.T) {
		var resp roomdv1.CreateRoomResponse
		s.okJSON(t, &resp, "rooms", "create", "quiet", "-echo=false", "-presence=false", "-history-size", "5")
		if r := resp.Room; r.Echo || r.Presence || r.HistorySize != 5 || r.MaxClients != 0 {
			t.Fatalf("rooms create -echo=false -presence=false -history-size 5: %v", r)
		}
		want(t, s.roomctl(t, "rooms", "get", "quiet"), exitOK, "max clients   unlimited\n", "echo          false\n", "metadata      -\n")
		want(t, s.roomctl(t, "rooms", "create", "lobby"), exitFailed, "roomctl: AlreadyExists: ")
		want(t, s.roomctl(t, "rooms", "create", "no/slash"), exitFailed, "roomctl: InvalidArgument: ")
	})

	t.Run("pages", func(t *testing.T) {
		// lobby and quiet exist; three more make five.
		for _, id := range []string{"a1", "a2", "a3"} {
			s.ok(t, "rooms", "create", id)
		}
		r := s.roomctl(t, "rooms", "list", "-limit", "2")
		if r.code != exitOK || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stdout, "\na1 ") || !strings.Contains(r.stdout, "\na2 ") {
			t.Fatalf("rooms list -limit 2:\n%v", r)
		}
		token, ok := strings.CutPrefix(strings.TrimSpace(r.stderr), "roomctl: more rooms after these: -page-token ")
		if !ok {
			t.Fatalf("rooms list -limit 2 did not say how to go on:\n%v", r)
		}
		var rest roomdv1.ListRoomsResponse
		s.okJSON(t, &rest, "rooms", "list", "-page-token", token)
		var ids []string
		for _, room := range rest.Rooms {
			ids = append(ids, room.RoomId)
		}
		if !slices.Equal(ids, []string{"a3", "lobby", "quiet"}) || rest.NextPageToken != "" {
			t.Fatalf("rooms list -page-token: %v", &rest)
		}
		var first roomdv1.ListRoomsResponse
		s.okJSON(t, &first, "rooms", "list", "-limit", "2")
		if len(first.Rooms) != 2 || first.NextPageToken != token {
			t.Fatalf("rooms list -limit 2 -o json: %v, want nextPageToken %q", &first, token)
		}
	})

	t.Run("delete", func(t *testing.T) {
		ws := s.join(t, "lobby", "user=ann")
		eventually(t, "ann is in lobby", func() bool {
			return strings.Contains(s.ok(t, "rooms", "get", "lobby"), "clients       1\n")
		})
		want(t, s.roomctl(t, "rooms", "delete", "lobby"), exitOK, "deleted room lobby: 1 member removed, 1 disconnected with 4001\n")
		expectClose(t, ws, 4001, "room deleted")
		var resp roomdv1.DeleteRoomResponse
		s.okJSON(t, &resp, "rooms", "delete", "quiet")
		if resp.RemovedCount != 0 || resp.Partial {
			t.Fatalf("rooms delete quiet -o json: %v", &resp)
		}
		want(t, s.roomctl(t, "rooms", "delete", "quiet"), exitNotFound, "roomctl: NotFound: ")
	})
}
