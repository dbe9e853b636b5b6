package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gorilla/websocket"

	roomdv1 "roomd/gen/roomd/v1"
)

func TestPublishAndSend(t *testing.T) {
	s := startRoomd(t)
	ann := s.join(t, "lobby", "user=ann")
	bob := s.join(t, "lobby", "user=bob")
	annID := s.clientID(t, "lobby", "ann")
	bobID := s.clientID(t, "lobby", "bob")
	both := func(want frame) {
		t.Helper()
		for _, ws := range []*websocket.Conn{ann, bob} {
			if got := read(t, ws); got != want {
				t.Fatalf("a member received %+v, want %+v", got, want)
			}
		}
	}

	t.Run("text", func(t *testing.T) {
		want(t, s.roomctl(t, "publish", "lobby", "hello"), exitOK, "published to room lobby: seq 1, epoch ", ", handed to 2 members\n")
		both(frame{websocket.TextMessage, "hello"})
		// After "--", text that looks like a flag.
		s.ok(t, "publish", "lobby", "--", "-not a flag")
		both(frame{websocket.TextMessage, "-not a flag"})
	})

	t.Run("stdin", func(t *testing.T) {
		want(t, s.with(invocation{stdin: "from a pipe\n"}).run(t, "publish", "lobby", "-"), exitOK, "seq 3")
		both(frame{websocket.TextMessage, "from a pipe"})
		want(t, s.with(invocation{stdin: "\x00\x01\n"}).run(t, "publish", "lobby", "-file", "-"), exitOK, "seq 4")
		both(frame{websocket.BinaryMessage, "\x00\x01\n"})
	})

	t.Run("binary file, -o json", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "blob")
		if err := os.WriteFile(file, []byte{0, 1, 2, 0xff}, 0o600); err != nil {
			t.Fatal(err)
		}
		var resp roomdv1.PublishResponse
		s.okJSON(t, &resp, "publish", "lobby", "-file", file)
		if resp.Seq != 5 || resp.RecipientCount != 2 || resp.Epoch == "" {
			t.Fatalf("publish -o json: %v", &resp)
		}
		both(frame{websocket.BinaryMessage, "\x00\x01\x02\xff"})
	})

	t.Run("exclude", func(t *testing.T) {
		want(t, s.roomctl(t, "publish", "lobby", "not for bob", "-exclude", bobID), exitOK, "handed to 1 member\n")
		if got := read(t, ann); got.data != "not for bob" {
			t.Fatalf("ann received %+v", got)
		}
	})

	t.Run("send", func(t *testing.T) {
		want(t, s.roomctl(t, "send", annID, "just you"), exitOK, "sent to client "+annID+"\n")
		if got := read(t, ann); got != (frame{websocket.TextMessage, "just you"}) {
			t.Fatalf("ann received %+v", got)
		}
		if out := s.ok(t, "send", bobID, "-file", "-", "-o", "json"); out != "{}\n" {
			t.Fatalf("send -o json printed %q", out)
		}
		// What bob receives next is the send, not anything published above.
		if got := read(t, bob); got != (frame{websocket.BinaryMessage, ""}) {
			t.Fatalf("bob received %+v", got)
		}
		want(t, s.roomctl(t, "send", "local_nobody", "hi"), exitNotFound, "roomctl: NotFound: ")
	})

	t.Run("refused", func(t *testing.T) {
		want(t, s.roomctl(t, "publish", "nope", "hi"), exitNotFound, "roomctl: NotFound: ")
		want(t, s.with(invocation{stdin: "\xff\xfe"}).run(t, "publish", "lobby", "-"), exitUsage, "roomctl: the text is not valid UTF-8; send bytes as binary with -file\n")
		want(t, s.roomctl(t, "publish", "lobby", "-file", filepath.Join(t.TempDir(), "missing")), exitUsage, "roomctl: -file: open ")
	})
}
