package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protojson"

	roomdv1 "roomd/gen/roomd/v1"
)

// watching is roomctl watch running in the background, as until Ctrl-C.
type watching struct {
	stdout, stderr syncBuffer
	interrupt      context.CancelFunc
	code           int
	done           chan struct{}
}

func (s *server) watch(t *testing.T, args ...string) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{interrupt: cancel, done: make(chan struct{})}
	env := s.with(invocation{})
	go func() {
		defer close(w.done)
		w.code = run(ctx, append([]string{"watch"}, args...), env.getenv, strings.NewReader(""), &w.stdout, &w.stderr)
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// exit waits for roomctl watch to end by itself, and returns its code.
func (w *watching) exit(t *testing.T) int {
	t.Helper()
	select {
	case <-w.done:
		return w.code
	case <-time.After(5 * time.Second):
		t.Fatalf("roomctl watch did not end; it printed\n%s", w.stdout.String())
		return 0
	}
}

// line waits until roomctl watch prints a line matching re, and returns it.
func (w *watching) line(t *testing.T, re string) string {
	t.Helper()
	pattern := regexp.MustCompile(`(?m)^` + re + `$`)
	var found string
	eventually(t, "roomctl watch prints "+re, func() bool {
		found = pattern.FindString(w.stdout.String())
		return found != ""
	})
	return found
}

// when is how a watch line starts: the time to the millisecond.
const when = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\S*  `

func TestWatch(t *testing.T) {
	s := startRoomd(t)
	s.ok(t, "rooms", "create", "lobby")

	t.Run("until interrupted", func(t *testing.T) {
		w := s.watch(t, "lobby")
		// A watch says nothing when it starts: publish until it prints one.
		eventually(t, "the watch prints a published message", func() bool {
			s.ok(t, "publish", "lobby", "are you there")
			return strings.Contains(w.stdout.String(), `text="are you there"`)
		})
		w.line(t, when+`message  seq=\d+ recipients=0 text="are you there"`)

		ws := s.join(t, "lobby", "user=ann")
		id := s.clientID(t, "lobby", "ann")
		w.line(t, when+`joined   client=`+id+` user="ann" node=local addr=127\.0\.0\.1:\d+`)
		if err := ws.WriteMessage(websocket.TextMessage, []byte("hi all")); err != nil {
			t.Fatal(err)
		}
		w.line(t, when+`message  seq=\d+ from=`+id+` recipients=1 text="hi all"`)
		file := filepath.Join(t.TempDir(), "blob")
		if err := os.WriteFile(file, []byte{1, 2, 3, 4}, 0o600); err != nil {
			t.Fatal(err)
		}
		s.ok(t, "publish", "lobby", "-file", file)
		w.line(t, when+`message  seq=\d+ recipients=1 binary=4 bytes`)
		s.ok(t, "kick", "client", id, "-reason", "bye")
		w.line(t, when+`left     client=`+id+` user="ann" node=local addr=127\.0\.0\.1:\d+ cause=kicked code=4000 reason="bye"`)

		w.interrupt()
		<-w.done
		if w.code != exitOK || w.stderr.String() != "" {
			t.Fatalf("roomctl watch, interrupted: exit %d, stderr %q", w.code, w.stderr.String())
		}
	})

	t.Run("from a position, -o json, until the room is deleted", func(t *testing.T) {
		var first, second roomdv1.PublishResponse
		s.okJSON(t, &first, "publish", "lobby", "one")
		s.okJSON(t, &second, "publish", "lobby", "two")
		w := s.watch(t, "lobby", "-since-seq", strconv.FormatUint(first.Seq, 10), "-epoch", first.Epoch, "-o", "json")
		w.line(t, `\{"time":.*"messagePublished":\{.*"text":"two".*\}\}`)
		s.ok(t, "rooms", "delete", "lobby")
		if code := w.exit(t); code != exitOK || w.stderr.String() != "" {
			t.Fatalf("roomctl watch, room deleted: exit %d, stderr %q", code, w.stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(w.stdout.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("roomctl watch -o json printed\n%s\nwant two lines", w.stdout.String())
		}
		var replayed, deleted roomdv1.WatchRoomResponse
		if err := protojson.Unmarshal([]byte(lines[0]), &replayed); err != nil {
			t.Fatal(err)
		}
		if m := replayed.GetMessagePublished(); m.GetText() != "two" || m.GetSeq() != second.Seq {
			t.Fatalf("first event %v, want the message after seq %d", &replayed, first.Seq)
		}
		if err := protojson.Unmarshal([]byte(lines[1]), &deleted); err != nil || deleted.GetRoomDeleted() == nil {
			t.Fatalf("last event %s (%v), want roomDeleted", lines[1], err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		want(t, s.roomctl(t, "watch", "nope"), exitNotFound, "roomctl: NotFound: ")
		s.ok(t, "rooms", "create", "again")
		want(t, s.roomctl(t, "watch", "again", "-since-seq", "99"), exitFailed, "roomctl: OutOfRange: ")
		want(t, s.roomctl(t, "watch", "again", "-since-seq", "0", "-epoch", "other"), exitFailed, "roomctl: OutOfRange: ")
	})
}
