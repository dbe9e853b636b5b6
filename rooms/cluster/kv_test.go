package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"roomd/rooms"
)

// testTimeout bounds each test's waits: NATS calls and polling.
const testTimeout = 30 * time.Second

// checkLeaks fails the test if goroutines it started outlive it (its
// cleanups included: it is registered first, so it runs last).
func checkLeaks(t *testing.T) {
	t.Helper()
	opts := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opts) })
}

// testLogger writes to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func jetStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// eventually polls cond until it holds, failing the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeTransport records how the Hub closed a connection.
type fakeTransport struct {
	mu     sync.Mutex
	closed bool
	code   rooms.CloseCode
	reason string
}

func (f *fakeTransport) Wake() {}

func (f *fakeTransport) Close(code rooms.CloseCode, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed, f.code, f.reason = true, code, reason
	}
}

func (f *fakeTransport) closedWith() (bool, rooms.CloseCode, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed, f.code, f.reason
}

// joinRaw joins a raw member of user to room on h, without making the room.
func joinRaw(h *rooms.Hub, room, user string) (*fakeTransport, error) {
	ft := &fakeTransport{}
	_, err := h.Join(room, rooms.ClientInfo{UserID: user}, ft, rooms.JoinOptions{})
	return ft, err
}

func TestKeyTokensAreOneValidKeyTokenEach(t *testing.T) {
	for _, id := range []string{"lobby", "a.b", "...", "x:y-z_1", ".a.", "::", strings.Repeat("z.", 64)} {
		if err := rooms.ValidateRoomID(id); err != nil {
			t.Fatalf("test room id %q: %v", id, err)
		}
		tok := keyToken(id)
		checkKeyToken(t, tok)
		if back := roomOfKeyToken(tok); back != id {
			t.Errorf("%q -> %q -> %q", id, tok, back)
		}
	}
	for _, id := range []string{"ann", "a.b", "*", ">", "ünï cödé", "a/b=c", strings.Repeat("x", rooms.MaxIDBytes)} {
		tok := userToken(id)
		checkKeyToken(t, tok)
		if back, err := userOfToken(tok); err != nil || back != id {
			t.Errorf("%q -> %q -> %q, %v", id, tok, back, err)
		}
	}
}

// checkKeyToken fails unless tok is one token of a KV key the KV API takes.
func checkKeyToken(t *testing.T, tok string) {
	t.Helper()
	for _, c := range tok {
		ok := c == '-' || c == '/' || c == '_' || c == '=' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !ok {
			t.Errorf("token %q holds %q", tok, c)
		}
	}
	if tok == "" {
		t.Error("empty token")
	}
}

func TestUnavailableKeepsTheCallersDeadline(t *testing.T) {
	err := unavailable("x", fmt.Errorf("wrapped: %w", nats.ErrTimeout))
	if !errors.Is(err, rooms.ErrUnavailable) || !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("%v: want ErrUnavailable and the cause", err)
	}
	err = unavailable("x", context.DeadlineExceeded)
	if errors.Is(err, rooms.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v: want the deadline only", err)
	}
}
