package main

// -reader epoll: the receivers' sockets are read by a few pollers (see
// poller_linux.go) instead of a goroutine each. This file is the part that
// does not depend on Linux: what a polled receiver does with its frames,
// which is what fleet.read and fleet.readCentrifugo do with theirs.

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// How receivers read: -reader.
const (
	readerEpoll      = "epoll"
	readerGoroutines = "goroutines"
)

// defaultReader is epoll where there is one.
func defaultReader() string {
	if epollSupported {
		return readerEpoll
	}
	return readerGoroutines
}

// readerWhat is how the log and the report name a reader.
func readerWhat(reader string, pollers int) string {
	if reader == readerEpoll {
		return fmt.Sprintf("epoll (%d pollers)", pollers)
	}
	return "goroutines (one per client)"
}

// controlWait bounds the write of a pong or of a close frame's echo, as
// gorilla's own handlers do (its writeWait).
const controlWait = time.Second

// polled is a receiver read by a poller. Only its poller touches it once
// registered (the dial worker that registers it before).
type polled struct {
	f     *fleet
	r     *receiver
	rc    syscall.RawConn
	cs    *counterShard
	shard int
	wr    wsReader
	now   time.Time // when the current read returned
	owner int       // index of its poller
	ended bool      // removed from its poller; done is closed
}

// newPolled prepares r, whose handshake ended on conn, for a poller: it
// handles first the bytes the handshake read past its end (counted in
// f.carried). It returns an error when r cannot be polled or its stream
// already ended; the caller then ends r.
func (f *fleet) newPolled(r *receiver, conn net.Conn, carried []byte) (*polled, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("epoll reader: the connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	pr := &polled{f: f, r: r, rc: rc, shard: r.index % histShards}
	pr.cs = &f.counts.shards[pr.shard]
	if len(carried) > 0 {
		f.carried.Add(uint64(len(carried)))
		pr.now = time.Now()
		if err := pr.wr.feed(carried, false, pr); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

// end records why pr's stream ended (unless at teardown) and lets
// fleet.close know; its poller has already forgotten it.
func (pr *polled) end(err error) {
	pr.ended = true
	pr.f.ended(err)
	close(pr.r.done)
}

func (pr *polled) onData(payload []byte) {
	f, r, cs := pr.f, pr.r, pr.cs
	if f.cfg.isCentrifugo() {
		f.centrifugoPings(r, cs, f.centrifugoFrame(r, cs, pr.shard, payload, pr.now))
		return
	}
	cs.received.Add(1)
	if len(payload) < headerSize {
		cs.malformed.Add(1)
		return
	}
	f.account(r, cs, pr.shard, (*[headerSize]byte)(payload), pr.now)
}

func (pr *polled) onFragment() {
	pr.cs.received.Add(1)
	pr.cs.malformed.Add(1)
}

// onPing answers as gorilla's default ping handler does; a failed write
// shows up as the next read's error.
func (pr *polled) onPing(payload []byte) {
	_ = pr.r.ws.WriteControl(websocket.PongMessage, payload, time.Now().Add(controlWait))
}

// onClose echoes the close as gorilla's default close handler does.
func (pr *polled) onClose(code int, _ string) {
	_ = pr.r.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(controlWait))
}
