package wsedge

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicCounter is a slog handler that counts logged panics, so the fuzzer
// notices a panic even though the edge recovers from it.
type panicCounter struct{ n atomic.Int64 }

func (p *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.n.Add(1)
	}
	return nil
}
func (p *panicCounter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicCounter) WithGroup(string) slog.Handler      { return p }

// FuzzClientFrames sends arbitrary bytes after a valid upgrade. Whatever
// arrives, the server must not panic and must end or keep the connection
// cleanly; the test reads until the server closes or goes quiet.
func FuzzClientFrames(f *testing.F) {
	f.Add(clientFrame(true, 0, opText, true, []byte("hello")))
	f.Add(clientFrame(true, 0, opBinary, true, []byte{0, 1, 2}))
	f.Add(clientFrame(true, 0, opPing, true, []byte("p")))
	f.Add(clientFrame(true, 0, opClose, true, []byte{0x03, 0xe8}))
	f.Add(clientFrame(false, 0, opText, true, []byte("frag")))
	f.Add(clientFrame(true, 0, opText, false, []byte("unmasked")))
	f.Add([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	panics := &panicCounter{}
	_, addr := startEdge(f, Config{MaxMessageBytes: 4096, MessageRate: 1000, MessageBurst: 1000, CloseTimeout: 200 * time.Millisecond, Logger: slog.New(panics)})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := dialRaw(t, addr, "fuzz")
		c.conn.Write(data)
		c.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var buf [4096]byte
		for {
			// Either the server closes (fine) or it goes quiet with the
			// connection open (fine too): both end the read.
			if _, err := c.conn.Read(buf[:]); err != nil {
				break
			}
		}
		c.conn.Close()
		if n := panics.n.Load(); n > 0 {
			t.Fatalf("the server logged %d panics", n)
		}
	})
}
