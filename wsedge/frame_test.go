package wsedge

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"roomd/rooms"
)

// Frames are checked by decoding them with gorilla's client-side reader, the
// same code a Go client would use.
func TestFramesDecodeWithGorilla(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 200000} {
		payload := bytes.Repeat([]byte{'a'}, n)
		for _, kind := range []rooms.Kind{rooms.Text, rooms.Binary} {
			m := &rooms.Message{Kind: kind, Payload: payload}
			frame := m.Frame(rawFormat, messageFrame).([]byte)
			gotKind, got := decode(t, frame)
			wantKind := websocket.TextMessage
			if kind == rooms.Binary {
				wantKind = websocket.BinaryMessage
			}
			if gotKind != wantKind || !bytes.Equal(got, payload) {
				t.Errorf("%d-byte kind %d: decoded kind %d, %d bytes", n, kind, gotKind, len(got))
			}
		}
	}
}

func TestMessageIsEncodedOnce(t *testing.T) {
	m := &rooms.Message{Kind: rooms.Text, Payload: []byte("x")}
	calls := 0
	enc := func(m *rooms.Message) any { calls++; return messageFrame(m) }
	a := m.Frame(rawFormat, enc).([]byte)
	b := m.Frame(rawFormat, enc).([]byte)
	if calls != 1 || &a[0] != &b[0] {
		t.Fatalf("encoded %d times, want once with shared bytes", calls)
	}
}

func TestCloseFrameFitsAControlFrame(t *testing.T) {
	reason := strings.Repeat("é", 100) // 200 bytes: must be cut at a rune boundary
	f := closeFrame(rooms.CloseKicked, reason)
	if f[0] != 0x88 || int(f[1]) != len(f)-2 || len(f)-2 > 125 {
		t.Fatalf("bad close frame header % x (len %d)", f[:2], len(f))
	}
	if code := binary.BigEndian.Uint16(f[2:]); code != 4000 {
		t.Errorf("code %d", code)
	}
	if body := f[4:]; !utf8.Valid(body) || !strings.HasPrefix(reason, string(body)) {
		t.Errorf("reason %q is not a valid prefix of the original", body)
	}
	if f := closeFrame(1005, "ignored"); !bytes.Equal(f, []byte{0x88, 0}) {
		t.Errorf("no-status close frame = % x", f)
	}
}

func TestUnfinishedFindsTheInterruptedFrame(t *testing.T) {
	frames := [][]byte{[]byte("aaaa"), []byte("bbb"), []byte("cc")}
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, ""}, {2, "aa"}, {4, ""}, {5, "bb"}, {7, ""}, {8, "c"}, {9, ""}} {
		if got := string(unfinished(frames, tc.n)); got != tc.want {
			t.Errorf("unfinished after %d bytes = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// decode writes frame from a real upgraded server socket and reads it with
// gorilla's client.
func decode(t *testing.T, frame []byte) (int, []byte) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ws.NetConn().Write(frame)
		ws.NetConn().Close()
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	kind, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return kind, data
}
