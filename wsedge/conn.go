package wsedge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"roomd/rooms"
)

var pingFrame = appendFrame(nil, opPing, nil)

// conn is one WebSocket connection; it is the rooms.Transport of its client.
type conn struct {
	edge   *Edge
	client *rooms.Client // set before attach, never changed
	sock   net.Conn
	raw    syscall.RawConn // sock's descriptor, for the flusher's writes that must not block
	reader *frameReader    // used by the reader goroutine only
	ping   *time.Timer
	expiry *time.Timer // closes the connection when its token expires; nil without one
	addr   clientAddr  // who the client is (ClientAddr): the peer, or whom a trusted proxy named

	roomID  string   // a raw connection's one room
	session *session // the client protocol's state; nil for raw relay

	// Used by the reader goroutine only.
	readOnly   bool // the token does not allow publishing
	rate       tokenBucket
	readErr    error
	peerReason string
	messagesIn uint64 // data messages the peer sent

	// Used by the writer only (one at a time; c.mu orders them).
	rounds      uint64        // write rounds, for sampleLatency
	messagesOut atomic.Uint64 // messages taken from the queue to write; read by finish

	opened time.Time // when the upgrade completed

	mu            sync.Mutex
	attached      bool // upgraded: the writer may run
	writing       bool // a writer goroutine is running
	wakePending   bool // the queue may hold messages the writer has not taken
	pingDue       bool
	pongDue       bool
	pongData      []byte
	closing       bool // a close frame is queued or sent: no more data frames
	closedByPeer  bool // closing began with the peer's close frame
	closeCode     rooms.CloseCode
	closeReason   string
	closeDone     chan struct{} // closed once the close frame is written, or writing failed
	closeSent     bool
	finished      bool      // the socket is closed: no writer, no more pings
	writeDeadline time.Time // the socket's current write deadline
}

// attach completes the connection after the upgrade: handlers, the read
// deadline, the ping and token expiry timers, and a writer if anything
// arrived meanwhile.
func (c *conn) attach(sock net.Conn, tokenExpires time.Time) {
	c.sock = sock
	c.reader = &frameReader{sock: sock}
	c.opened = time.Now()
	c.edge.stats.open(c.session != nil)
	c.raw = rawConnOf(sock) // nil for TLS: then only the blocking writer writes

	c.mu.Lock()
	c.attached = true
	if c.closing {
		_ = c.sock.SetReadDeadline(time.Now().Add(c.edge.cfg.CloseTimeout))
	} else {
		_ = c.sock.SetReadDeadline(time.Now().Add(c.edge.cfg.PingInterval + c.edge.cfg.PongTimeout))
	}
	c.ping = time.AfterFunc(c.edge.cfg.PingInterval, c.onPingTimer)
	if !tokenExpires.IsZero() {
		c.expiry = time.AfterFunc(time.Until(tokenExpires), func() { c.Close(rooms.CloseUnauthorized, "token expired") })
	}
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		c.edge.flush.push(c)
	}
}

// Wake implements rooms.Transport.
func (c *conn) Wake() {
	c.mu.Lock()
	c.wakePending = true
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		c.edge.flush.push(c)
	}
}

// Close implements rooms.Transport: it queues a close frame ahead of
// anything else and bounds the wait for the peer's reply.
func (c *conn) Close(code rooms.CloseCode, reason string) { c.startClose(code, reason, false) }

// startClose is Close; byPeer says the peer's close frame started it.
func (c *conn) startClose(code rooms.CloseCode, reason string, byPeer bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.closedByPeer = true, byPeer
	c.closeCode, c.closeReason = code, reason
	c.closeDone = make(chan struct{})
	if c.closeSent {
		close(c.closeDone) // the socket already failed: no close frame will go out
	}
	if c.attached {
		_ = c.sock.SetReadDeadline(time.Now().Add(c.edge.cfg.CloseTimeout))
		// A writer blocked on a peer that does not read gives up now and
		// sends the close frame instead.
		c.writeDeadline = time.Now()
		_ = c.sock.SetWriteDeadline(c.writeDeadline)
	}
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		c.edge.flush.push(c)
	}
}

// cut drops the socket without a close handshake (shutdown overran).
func (c *conn) cut() {
	c.mu.Lock()
	attached := c.attached
	c.mu.Unlock()
	if attached {
		_ = c.sock.Close()
	}
}

// startWriterLocked reports whether the caller must start a writer (queue
// c on the flusher). c.mu must be held.
func (c *conn) startWriterLocked() bool {
	if !c.attached || c.writing || c.closeSent || c.finished {
		return false
	}
	c.writing = true
	return true
}

func (c *conn) onPingTimer() {
	c.mu.Lock()
	if c.closing || c.finished {
		c.mu.Unlock()
		return
	}
	c.pingDue = true
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		c.edge.flush.push(c)
	}
	c.ping.Reset(c.edge.cfg.PingInterval)
}

// Control frames cost a write each (a pong) or a deadline update, so a
// peer may send only so many: a browser sends one pong per server ping and
// nothing else; other clients may ping every few seconds on their own. On
// top of the rate, each connection may answer the server's pings.
const (
	controlFrameRate  = 5  // per second, on average
	controlFrameBurst = 20 // at once
)

// controlFrame takes one ping or pong from the peer's budget; a peer over
// it is closed with 1008, like any other flood.
func (c *conn) controlFrame() error {
	if c.reader.controls.take(time.Now(), c.edge.controlRate, controlFrameBurst) {
		return nil
	}
	return &protocolError{code: rooms.ClosePolicyViolation, reason: fmt.Sprintf("rate limit: more than %d control frames per second", controlFrameRate), flood: true}
}

// onPing answers a peer's ping through the writer.
func (c *conn) onPing(data []byte) {
	c.mu.Lock()
	c.pongDue, c.pongData = true, append([]byte(nil), data...)
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		c.edge.flush.push(c)
	}
	c.extendReadDeadline()
}

// onPong shows the peer is alive.
func (c *conn) onPong() { c.extendReadDeadline() }

// messageBegun gives a message that is not all here yet PongTimeout to
// arrive whole: pings and pongs meanwhile do not extend the read deadline,
// so an unfinished message cannot hold its buffer for long.
func (c *conn) messageBegun() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing { // the close timeout bounds the read already
		return false
	}
	_ = c.sock.SetReadDeadline(time.Now().Add(c.edge.cfg.PongTimeout))
	return true
}

// messageTimedOut reports whether a read failed because a message was not
// finished in time, rather than for silence or while closing.
func (c *conn) messageTimedOut(err error) bool {
	if !c.reader.timed || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closing
}

// onPeerClose echoes the peer's close code, as RFC 6455 asks.
func (c *conn) onPeerClose(code rooms.CloseCode, reason string) {
	c.peerReason = reason
	c.startClose(code, "", true)
}

func (c *conn) extendReadDeadline() {
	if c.reader.timed {
		return // an unfinished message keeps its deadline (messageBegun)
	}
	c.mu.Lock()
	if !c.closing {
		_ = c.sock.SetReadDeadline(time.Now().Add(c.edge.cfg.PingInterval + c.edge.cfg.PongTimeout))
	}
	c.mu.Unlock()
}

// round is what collect found for a writer to do.
type round uint8

const (
	roundWrite round = iota // w.frames holds frames to write
	roundIdle               // nothing to write: writing has ended (c.writing is false)
	roundClose              // the connection is closing: the close frame goes next
)

// collect gathers one write round into w.frames: due control frames, then
// every queued message in this connection's wire format. When there is
// nothing, it ends the connection's writing under c.mu, so that a wake
// arriving meanwhile starts a new writer.
func (c *conn) collect(w *writeScratch) round {
	for {
		c.mu.Lock()
		c.wakePending = false
		w.frames = w.frames[:0]
		if c.pongDue {
			w.frames = append(w.frames, appendFrame(nil, opPong, c.pongData))
			c.pongDue, c.pongData = false, nil
		}
		if c.pingDue {
			w.frames = append(w.frames, pingFrame)
			c.pingDue = false
		}
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return roundClose
		}

		w.batch = c.client.Queue().Take(w.batch[:0])
		for _, m := range w.batch {
			w.frames = append(w.frames, c.encode(m))
		}
		if len(w.batch) > 0 {
			c.messagesOut.Add(uint64(len(w.batch)))
			c.sampleLatency(w.batch)
		}
		clear(w.batch) // do not pin delivered messages until the next round

		c.mu.Lock()
		switch {
		case c.closing:
			c.mu.Unlock()
			continue // the close frame goes first; the rest is dropped
		case len(w.frames) == 0:
			if c.wakePending || c.pingDue || c.pongDue {
				c.mu.Unlock()
				continue
			}
			c.writing = false
			c.mu.Unlock()
			return roundIdle
		}
		c.mu.Unlock()
		return roundWrite
	}
}

// writeLoop is a connection's blocking writer, for a socket the flusher
// found full, for closing, and for sockets the flusher cannot write without
// blocking (TLS). It writes pending first (partial: its first frame is the
// rest of one begun on the wire), then drains the queue round by round, each
// in one writev, and exits when nothing is left or after the close frame.
func (c *conn) writeLoop(pending [][]byte, partial bool) {
	defer func() {
		if p := recover(); p != nil {
			c.edge.log.Error("panic while writing to a connection; cutting it", "client", c.client.ID(), "panic", p)
			c.writeFailed(errPanic(p))
		}
	}()
	w := scratchPool.Get().(*writeScratch)
	defer w.release()
	w.frames = append(w.frames[:0], pending...)
	for {
		if len(w.frames) == 0 {
			switch c.collect(w) {
			case roundIdle:
				return
			case roundClose:
				c.writeClose(nil)
				return
			}
		}
		c.mu.Lock()
		if !c.closing { // closing has moved the deadline to now
			c.refreshWriteDeadlineLocked()
		}
		c.mu.Unlock()

		w.sent = append(w.sent[:0], w.frames...)
		view := net.Buffers(w.frames) // WriteTo consumes view, not w.frames
		n, err := view.WriteTo(c.sock)
		w.frames = w.frames[:0]
		if err == nil {
			partial = false
			continue
		}
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing && errors.Is(err, os.ErrDeadlineExceeded) {
			// Close interrupted the write: finish the frame it stopped in,
			// then send the close frame.
			rest := unfinished(w.sent, n)
			if n == 0 && partial {
				rest = w.sent[0]
			}
			c.writeClose(rest)
			return
		}
		c.writeFailed(err)
		return
	}
}

// errPanic is the error a recovered panic ends a connection with.
func errPanic(p any) error { return fmt.Errorf("internal error: %v", p) }

// refreshWriteDeadlineLocked keeps the socket's write deadline between half
// of WriteTimeout and WriteTimeout ahead, resetting it only when less than
// half is left (setting a deadline is not free, and most rounds are far
// apart from it). It runs under c.mu so that Close, which cuts a blocked
// write short by moving the deadline to now, cannot be overridden.
func (c *conn) refreshWriteDeadlineLocked() {
	now := time.Now()
	if c.writeDeadline.Sub(now) > c.edge.cfg.WriteTimeout/2 {
		return
	}
	c.writeDeadline = now.Add(c.edge.cfg.WriteTimeout)
	_ = c.sock.SetWriteDeadline(c.writeDeadline)
}

// writeScratch is a writer's reusable slices; writers come and go with
// traffic, so the slices are pooled rather than grown anew each time.
type writeScratch struct {
	batch  []*rooms.Message
	frames [][]byte
	sent   [][]byte // frames as they were before WriteTo consumed them
	vec    writev   // the flusher's; its iovecs are cleared after every write
	conns  []*conn  // a flusher worker's batch; cleared after every batch
}

var scratchPool = sync.Pool{New: func() any { return new(writeScratch) }}

func (w *writeScratch) release() {
	if cap(w.frames) > 4096 { // one huge burst must not stay pinned
		*w = writeScratch{}
	}
	clear(w.frames[:cap(w.frames)])
	clear(w.sent[:cap(w.sent)])
	scratchPool.Put(w)
}

// unfinished returns the unwritten rest of the frame that a write of n bytes
// of frames stopped in, or nil if it stopped between two frames.
func unfinished(frames [][]byte, n int64) []byte {
	for _, f := range frames {
		if n < int64(len(f)) {
			if n == 0 {
				return nil
			}
			return f[n:]
		}
		n -= int64(len(f))
	}
	return nil
}

// encode returns m's frame in this connection's wire format, encoding it
// once for every connection of that format.
func (c *conn) encode(m *rooms.Message) []byte {
	if c.session != nil {
		return m.Frame(protocolFormat, protocolFrame).([]byte)
	}
	return m.Frame(rawFormat, messageFrame).([]byte)
}

// writeClose writes the close frame, after the rest of a frame a write was
// interrupted in, and ends the writer. A session client that is kicked hears
// why in a notice first. A peer that does not take it within the close
// timeout is cut off.
func (c *conn) writeClose(rest []byte) {
	var frames net.Buffers
	if len(rest) > 0 {
		frames = append(frames, rest)
	}
	if c.session != nil && c.closeCode == rooms.CloseKicked {
		frames = append(frames, kickedNotice(c.closeReason))
	}
	frames = append(frames, closeFrame(c.closeCode, c.closeReason))
	_ = c.sock.SetWriteDeadline(time.Now().Add(c.edge.cfg.CloseTimeout))
	_, err := frames.WriteTo(c.sock)
	c.mu.Lock()
	c.writing = false
	c.closeSent = true
	close(c.closeDone)
	c.mu.Unlock()
	if err != nil {
		_ = c.sock.Close()
	}
}

// writeFailed ends a connection whose socket could not take a write: a
// timeout means the peer does not read fast enough.
func (c *conn) writeFailed(err error) {
	c.mu.Lock()
	c.writing = false
	c.closeSent = true // nothing can be written any more
	if c.closeDone != nil {
		close(c.closeDone)
	}
	c.mu.Unlock()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.edge.hub.Leave(c.client, rooms.CauseDropped, rooms.CloseSlowConsumer, "slow consumer: a write took longer than "+c.edge.cfg.WriteTimeout.String())
	}
	_ = c.sock.Close()
}

// readLoop reads the peer's messages and publishes them to the room until
// the connection ends, then finishes it.
//
// The loop itself is kept small, and everything done with a message lives
// in handleRead: an idle connection's goroutine blocks with only this frame
// and the frame reader's below it, so its stack stays small.
func (c *conn) readLoop() {
	defer c.finish()
	defer c.recoverPanic()
	for {
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		// Once closing, payloads are skipped: only the peer's close frame
		// matters now.
		opcode, payload, err := c.reader.next(c.edge.cfg.MaxMessageBytes, closing, c)
		if !c.handleRead(opcode, payload, err, closing) {
			return
		}
	}
}

func (c *conn) recoverPanic() {
	if p := recover(); p != nil {
		c.edge.log.Error("panic while serving a connection; closing it", "client", c.client.ID(), "panic", p)
		c.readErr = errPanic(p)
		c.Close(rooms.CloseInternalError, "internal error")
	}
}

// handleRead acts on what the reader returned and reports whether to read
// on.
//
//go:noinline
func (c *conn) handleRead(opcode byte, payload []byte, err error, closing bool) bool {
	if err != nil && c.messageTimedOut(err) {
		err = violation(rooms.ClosePolicyViolation, "message not finished within %s", c.edge.cfg.PongTimeout)
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		c.Close(pe.code, pe.reason)
		if pe.flood {
			// Reading on would cost as much as the flood did. What the
			// peer still sends piles up in the kernel until TCP stops
			// it; finish closes the socket once the close frame is out.
			c.readErr = err
			return false
		}
		if pe.code != rooms.CloseMessageTooBig || c.reader.skip(c.reader.unread) != nil {
			// The stream cannot be trusted any more: wait (bounded) for
			// the peer to hang up, without parsing it.
			c.drain()
			c.readErr = err
			return false
		}
		return true // the oversized frame is skipped; read on for the close reply
	}
	if err != nil {
		c.readErr = err
		return false
	}
	if closing {
		return true
	}
	c.messagesIn++
	if opcode == opText && !utf8.Valid(payload) {
		c.Close(rooms.CloseInvalidPayload, "text message is not valid UTF-8")
		return true
	}
	c.extendReadDeadline()
	switch {
	case c.session != nil:
		c.session.handle(opcode, payload)
	case c.readOnly:
		c.Close(rooms.ClosePolicyViolation, "your token does not allow publishing")
	case c.allowMessage():
		info := c.client.Info()
		m := &rooms.Message{RoomID: c.roomID, Kind: rooms.Binary, Payload: payload, FromClientID: info.ClientID, FromUserID: info.UserID}
		if opcode == opText {
			m.Kind = rooms.Text
		}
		if _, err := c.edge.hub.Publish(m); err != nil {
			// A raw member has no way to hear of one refused message, so
			// the connection ends; with the bus down it may come back.
			code := rooms.ClosePolicyViolation
			if errors.Is(err, rooms.ErrUnavailable) {
				code = rooms.CloseTryAgainLater
			}
			c.Close(code, err.Error())
		}
	}
	return true
}

// drain reads and drops whatever the peer still sends until it hangs up or
// the close timeout (set by Close) passes.
func (c *conn) drain() {
	var scratch [512]byte
	for {
		if _, err := c.sock.Read(scratch[:]); err != nil {
			return
		}
	}
}

// allowMessage applies the message rate; a raw connection over it is
// closed with 1008.
func (c *conn) allowMessage() bool {
	if c.withinRate() {
		return true
	}
	c.closeOverRate()
	return false
}

// withinRate takes one message from the connection's rate budget.
func (c *conn) withinRate() bool {
	cfg := &c.edge.cfg
	return cfg.MessageRate <= 0 || c.rate.take(time.Now(), cfg.MessageRate, cfg.MessageBurst)
}

// closeOverRate closes a connection that kept sending over the rate.
func (c *conn) closeOverRate() {
	c.Close(rooms.ClosePolicyViolation, fmt.Sprintf("rate limit: more than %g messages per second", c.edge.cfg.MessageRate))
}

// finish closes the socket once the close frame (if any) is out, and takes
// the client out of its room with the code the session ended with and who
// ended it. (A kick, a slow consumer or a deleted raw room has taken the
// client out already, and said so; Leave then does nothing.)
func (c *conn) finish() {
	code, reason, cause := closeCodeOf(c.readErr), "", rooms.CauseDropped
	if c.readErr != nil {
		reason = c.readErr.Error()
		if errors.Is(c.readErr, os.ErrDeadlineExceeded) {
			reason = "no answer to pings within " + (c.edge.cfg.PingInterval + c.edge.cfg.PongTimeout).String()
		}
	}
	c.mu.Lock()
	c.finished = true
	c.ping.Stop()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	closing, done := c.closing, c.closeDone
	if closing {
		code, reason = c.closeCode, c.closeReason
		if reason == "" {
			reason = c.peerReason
		}
		switch {
		case c.closedByPeer:
			cause = rooms.CauseClosedByClient
		case code == rooms.CloseGoingAway: // only Edge.Shutdown sends it
			cause = rooms.CauseShutdown
		}
	}
	c.mu.Unlock()
	if closing {
		select {
		case <-done:
		case <-time.After(c.edge.cfg.WriteTimeout):
		}
	}
	_ = c.sock.Close()
	roomIDs := c.roomIDs()
	c.edge.hub.Leave(c.client, cause, code, reason)
	c.edge.untrack(c)
	c.edge.stats.close(c.session != nil, code)
	c.logClose(code, reason, roomIDs)
}
