//go:build unix

package wsedge

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestAdvanceCutsTheFrameItStopsIn(t *testing.T) {
	for _, tc := range []struct {
		n           int64
		wasPartial  bool
		want        string
		wantPartial bool
	}{
		{0, false, "aaaa|bbb|cc", false},
		{0, true, "aaaa|bbb|cc", true}, // nothing written: still the cut frame
		{2, false, "aa|bbb|cc", true},
		{4, true, "bbb|cc", false},
		{5, false, "bb|cc", true},
		{9, false, "", false},
	} {
		frames := [][]byte{[]byte("aaaa"), []byte("bbb"), []byte("cc")}
		rest, partial := advance(frames, tc.n, tc.wasPartial)
		if got := string(bytes.Join(rest, []byte("|"))); got != tc.want || partial != tc.wantPartial {
			t.Errorf("advance(%d, %v) = %q, %v; want %q, %v", tc.n, tc.wasPartial, got, partial, tc.want, tc.wantPartial)
		}
	}
}

// TestWriteNowStopsAtAFullSocket writes to a peer that does not read: the
// flusher's write must return what did not fit instead of blocking, and
// what went out plus what is left must be exactly the frames, in order.
func TestWriteNowStopsAtAFullSocket(t *testing.T) {
	c, peer := flusherConn(t)
	sock := c.sock

	// Frames of 100 KiB with distinct contents, bounded: 64 MiB in all is
	// far more than loopback socket buffers hold.
	var (
		want    bytes.Buffer
		rest    [][]byte
		partial bool
		err     error
	)
	w := &writeScratch{}
	for i := 0; i < 640 && len(rest) == 0; i++ {
		f := []byte(strings.Repeat(string(rune('a'+i%26)), 100<<10))
		want.Write(f)
		w.frames = append(w.frames[:0], f)
		rest, partial, err = c.writeNow(w)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(rest) == 0 {
		t.Fatal("64 MiB went into a socket nobody reads without the write stopping")
	}
	if !partial && len(rest[0]) != 100<<10 {
		t.Errorf("the rest starts with a cut frame of %d bytes but partial is false", len(rest[0]))
	}

	// Read everything that went out, then append the rest: the stream must
	// be whole.
	go func() {
		for _, f := range rest {
			if _, err := sock.Write(f); err != nil {
				return
			}
		}
		sock.Close()
	}()
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the peer got %d bytes, want the %d written, in order", len(got), want.Len())
	}
}

// TestWriteNowLeavesAClosingWriteToWriteLoop: Close cuts writes short by
// moving the write deadline to now. The flusher must then hand its frames
// on (writeLoop sends the close frame after them), not fail the connection
// as a slow consumer.
func TestWriteNowLeavesAClosingWriteToWriteLoop(t *testing.T) {
	c, _ := flusherConn(t)
	_ = c.sock.SetWriteDeadline(time.Now())
	w := &writeScratch{frames: [][]byte{[]byte("frame")}}
	rest, partial, err := c.writeNow(w)
	if err != nil || partial || len(rest) != 1 || string(rest[0]) != "frame" {
		t.Fatalf("writeNow past the deadline = %q, %v, %v; want the frame back, whole, no error", rest, partial, err)
	}
}

// flusherConn is the server end of a loopback TCP connection as the flusher
// sees it, and the peer; both are closed when the test ends.
func flusherConn(t *testing.T) (*conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	sock, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	raw := rawConnOf(sock)
	if raw == nil {
		t.Fatal("a TCP socket has no raw connection")
	}
	return &conn{sock: sock, raw: raw}, peer
}
