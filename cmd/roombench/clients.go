package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Payload layout: every published payload starts with this header so that
// a receiver can compute latency and find lost and duplicate deliveries.
const (
	offSentAt    = 0  // int64 unix nanoseconds: when the publish was due (-rate > 0) or sent (-rate 0)
	offPublisher = 8  // uint32 publisher id: -process << 16 | publisher number
	offSeq       = 12 // uint64 per-publisher sequence, from 1
	headerSize   = 20
)

func putHeader(b []byte, sentAt time.Time, publisher uint32, seq uint64) {
	binary.LittleEndian.PutUint64(b[offSentAt:], uint64(sentAt.UnixNano()))
	binary.LittleEndian.PutUint32(b[offPublisher:], publisher)
	binary.LittleEndian.PutUint64(b[offSeq:], seq)
}

// publisherID is what the payload header carries to name publisher p of
// process proc: with process 0, p itself.
func publisherID(proc, p int) uint32 { return uint32(proc)<<16 | uint32(p) }

// splitPublisherID is publisherID's inverse.
func splitPublisherID(id uint32) (proc, p int) { return int(id >> 16), int(id & 0xffff) }

// maxOtherPublishers bounds the other processes' publishers one receiver
// keeps track of; beyond, their messages count as malformed.
const maxOtherPublishers = 4096

// otherQuiet is how long, with -publish-at, the drain waits for the other
// processes' messages to stop coming once this process's own are in.
const otherQuiet = time.Second

// counters are the receivers' totals, sharded like the histogram.
type counters struct {
	shards [histShards]counterShard
}

type counterShard struct {
	received  atomic.Uint64 // every data frame (centrifugo: every reply but pings)
	unique    atomic.Uint64 // first delivery of a (publisher, seq)
	dups      atomic.Uint64 // a (publisher, seq) seen again, or out of order
	malformed atomic.Uint64 // shorter than the header, or from a publisher not of the room
	frames    atomic.Uint64 // centrifugo: WebSocket frames with replies other than pings
	pings     atomic.Uint64 // centrifugo: pings answered
	others    atomic.Uint64 // first delivery of another process's (publisher, seq)
	_         [8]byte
}

// othersSum is the first deliveries of other processes' messages.
func (c *counters) othersSum() (n uint64) {
	for i := range c.shards {
		n += c.shards[i].others.Load()
	}
	return n
}

// centrifugoSum is the Centrifugo clients' frame and ping totals.
func (c *counters) centrifugoSum() (frames, pings uint64) {
	for i := range c.shards {
		frames += c.shards[i].frames.Load()
		pings += c.shards[i].pings.Load()
	}
	return
}

func (c *counters) sum() (received, unique, dups, malformed uint64) {
	for i := range c.shards {
		s := &c.shards[i]
		received += s.received.Load()
		unique += s.unique.Load()
		dups += s.dups.Load()
		malformed += s.malformed.Load()
	}
	return
}

// receiver is one WebSocket client, a member of one room.
type receiver struct {
	index int
	room  int
	ws    *websocket.Conn
	// Per publisher of the room (publisher p is number p/rooms in room
	// p%rooms): the last sequence seen and how many distinct ones arrived.
	// Each publisher waits for one publish to return before the next, and a
	// room delivers in order, so a sequence at or below the last one is a
	// duplicate (or a reordering, which is as wrong).
	lastSeq []uint64
	unique  []atomic.Uint64
	done    chan struct{}

	// Other processes' publishers (another -process number), whose counts
	// this process does not know: by publisher id, the last sequence seen
	// (each publisher's messages arrive in order, as above) and how many
	// distinct ones arrived. Written by the reader, read for the report.
	othersMu sync.Mutex
	others   map[uint32]*seqCount
}

// seqCount is what one receiver got from one other process's publisher.
type seqCount struct {
	last, unique, dups uint64
}

// fleet is every receiver and what they saw.
type fleet struct {
	cfg      *config
	hist     histogram
	counts   counters
	closing  atomic.Bool // teardown started: closes from now on are ours
	recordOn atomic.Bool // latencies are recorded only while publishing

	mu        sync.Mutex
	receivers []*receiver
	stalled   []*websocket.Conn // members that never read
	dialErrs  map[string]int
	closes    map[string]int // unexpected ends, by close code or error

	frames sync.Pool // *[]byte: centrifugo receivers read whole frames

	// epoll is the pollers that read the receivers with -reader epoll;
	// nil with -reader goroutines.
	epoll *pollerSet
	// carried counts bytes the handshakes read past their end, which the
	// epoll reader parsed first (gorilla's own reader keeps them in its
	// buffer).
	carried atomic.Uint64
}

func newFleet(cfg *config) *fleet {
	return &fleet{cfg: cfg, dialErrs: map[string]int{}, closes: map[string]int{}}
}

// dialers makes one dialer per source address (or one). With wrap, each
// connection is a handshakeConn, so that the epoll reader can take over
// after the handshake without losing what gorilla read ahead.
func (f *fleet) dialers(srcs []netip.Addr, wrap bool) []*websocket.Dialer {
	pool := &sync.Pool{} // idle clients hold no write buffer
	mk := func(local net.Addr) *websocket.Dialer {
		nd := &net.Dialer{Timeout: f.cfg.dialTimeout, LocalAddr: local}
		dial := nd.DialContext
		if wrap {
			dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := nd.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &handshakeConn{Conn: c}, nil
			}
		}
		return &websocket.Dialer{
			NetDialContext:   dial,
			HandshakeTimeout: f.cfg.dialTimeout,
			ReadBufferSize:   f.cfg.readBuffer,
			WriteBufferSize:  256,
			WriteBufferPool:  pool,
		}
	}
	if len(srcs) == 0 {
		return []*websocket.Dialer{mk(nil)}
	}
	ds := make([]*websocket.Dialer, len(srcs))
	for i, a := range srcs {
		ds[i] = mk(&net.TCPAddr{IP: a.AsSlice()})
	}
	return ds
}

// connect dials cfg.conns clients with cfg.dialWorkers at a time, spreading
// them over the rooms, the nodes (bases) and the source addresses (see
// place), and hands each to its reader: a poller (-reader epoll) or a
// goroutine of its own. It returns how many connected.
func (f *fleet) connect(ctx context.Context, bases []*url.URL, roomIDs []string, srcs []netip.Addr) (int, error) {
	if f.cfg.reader == readerEpoll {
		ps, err := newPollerSet(f, f.cfg.pollers)
		if err != nil {
			return 0, err
		}
		f.epoll = ps
	}
	dialers := f.dialers(srcs, f.epoll != nil)
	pubsInRoom := make([]int, len(roomIDs))
	for p := 0; p < f.cfg.publishers; p++ {
		pubsInRoom[p%len(roomIDs)]++
	}
	f.receivers = make([]*receiver, f.cfg.conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(f.cfg.dialWorkers, f.cfg.conns) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= f.cfg.conns || ctx.Err() != nil {
					return
				}
				room, node, src := place(i, len(roomIDs), len(bases), len(dialers))
				ws, key, err := f.dial(ctx, dialers[src], bases[node], roomIDs[room])
				if err != nil {
					if len(bases) > 1 {
						key = fmt.Sprintf("node %d: %s", node, key)
					}
					f.mu.Lock()
					if len(f.dialErrs) < 20 || f.dialErrs[key] > 0 {
						f.dialErrs[key]++
					} else {
						f.dialErrs["other"]++
					}
					f.mu.Unlock()
					continue
				}
				r := &receiver{
					index:   i,
					room:    room,
					ws:      ws,
					lastSeq: make([]uint64, pubsInRoom[room]),
					unique:  make([]atomic.Uint64, pubsInRoom[room]),
					done:    make(chan struct{}),
				}
				f.receivers[i] = r // each index is written by one worker only
				switch {
				case f.epoll != nil:
					f.poll(r)
				case f.cfg.isCentrifugo():
					go f.readCentrifugo(r)
				default:
					go f.read(r)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	for _, r := range f.receivers {
		if r != nil {
			n++
		}
	}
	return n, nil
}

// poll hands r, whose handshake just ended, to a poller. Should that fail,
// r ends at once, counted among the unexpected ends.
func (f *fleet) poll(r *receiver) {
	hc, ok := r.ws.NetConn().(*handshakeConn)
	if !ok {
		f.ended(errors.New("epoll reader: connection not wrapped"))
		close(r.done)
		return
	}
	pr, err := f.newPolled(r, hc.Conn, hc.detach())
	if err == nil {
		if err = f.epoll.add(pr); err == nil {
			return
		}
	}
	f.ended(err)
	close(r.done)
}

// dial opens one member's connection to roomID: roomd's /ws/{room}, or
// Centrifugo's WebSocket endpoint followed by connect and subscribe to the
// channel roomID. On failure key is the error as the report counts it.
func (f *fleet) dial(ctx context.Context, d *websocket.Dialer, base *url.URL, roomID string) (ws *websocket.Conn, key string, err error) {
	u := *base
	if f.cfg.isCentrifugo() {
		if u.Path == "" || u.Path == "/" {
			u.Path = centrifugoWSPath
		}
	} else {
		u.Path = "/ws/" + roomID
	}
	deadline := time.Now().Add(f.cfg.dialTimeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	ws, resp, err := d.DialContext(dctx, u.String(), nil)
	cancel()
	if err != nil {
		key = err.Error()
		if resp != nil {
			key = fmt.Sprintf("HTTP %d", resp.StatusCode)
		}
		return nil, key, err
	}
	if f.cfg.isCentrifugo() {
		if err := centrifugoHandshake(ws, roomID, deadline); err != nil {
			_ = ws.Close()
			return nil, err.Error(), err
		}
	}
	return ws, "", nil
}

// stall dials n members, spread over the rooms and nodes as connect's, that
// never read: the server should drop them as slow consumers without the
// others noticing. It returns how many connected.
func (f *fleet) stall(ctx context.Context, bases []*url.URL, roomIDs []string, srcs []netip.Addr, n int) int {
	dialers := f.dialers(srcs, false)
	for i := range n {
		room, node, src := place(i, len(roomIDs), len(bases), len(dialers))
		ws, _, err := f.dial(ctx, dialers[src], bases[node], roomIDs[room])
		if err != nil {
			continue
		}
		f.mu.Lock()
		f.stalled = append(f.stalled, ws)
		f.mu.Unlock()
	}
	return len(f.stalled)
}

// connectedPerNode counts the connected receivers on each of nodes nodes.
func (f *fleet) connectedPerNode(nodes int) []int {
	n := make([]int, nodes)
	for i, r := range f.receivers {
		if r != nil {
			_, node, _ := place(i, f.cfg.rooms, nodes, 0)
			n[node]++
		}
	}
	return n
}

// stalledDropped reads what the stalled members were sent, at last, and
// counts those the server closed as slow consumers (code: 4002 for roomd,
// 3008 for Centrifugo), and how every stalled member's reading ended.
// Bounded: 5 s.
func (f *fleet) stalledDropped(code int) (int, map[string]int) {
	var dropped atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	ends := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for _, ws := range f.stalled {
		wg.Go(func() {
			ws.SetReadDeadline(deadline)
			for {
				_, body, err := ws.NextReader()
				if err != nil {
					if websocket.IsCloseError(err, code) {
						dropped.Add(1)
					}
					mu.Lock()
					ends[endKey(err)]++
					mu.Unlock()
					return
				}
				_, _ = io.Copy(io.Discard, body)
			}
		})
	}
	wg.Wait()
	if len(ends) == 0 {
		ends = nil
	}
	return int(dropped.Load()), ends
}

// endKey names how a connection ended: its close code, or the error.
func endKey(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("close %d", ce.Code)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "still open (read timeout)"
	}
	return err.Error()
}

// ended records an unexpected end of a receiver's connection.
func (f *fleet) ended(err error) {
	if f.closing.Load() {
		return
	}
	var ce *websocket.CloseError
	key := err.Error()
	if errors.As(err, &ce) {
		key = fmt.Sprintf("close %d", ce.Code)
	}
	f.mu.Lock()
	f.closes[key]++
	f.mu.Unlock()
}

// read consumes r's frames until the connection ends. It keeps only the
// payload header: the rest of each frame is skipped by NextReader.
func (f *fleet) read(r *receiver) {
	defer close(r.done)
	var hdr [headerSize]byte
	shard := r.index % histShards
	cs := &f.counts.shards[shard]
	for {
		_, body, err := r.ws.NextReader()
		if err != nil {
			f.ended(err)
			return
		}
		now := time.Now()
		cs.received.Add(1)
		if _, err := io.ReadFull(body, hdr[:]); err != nil {
			cs.malformed.Add(1)
			continue
		}
		f.account(r, cs, shard, &hdr, now)
	}
}

// readCentrifugo consumes a Centrifugo client's frames until the connection
// ends: each frame holds one or more replies, one per line; publications
// are accounted like roomd's frames and pings are answered.
func (f *fleet) readCentrifugo(r *receiver) {
	defer close(r.done)
	shard := r.index % histShards
	cs := &f.counts.shards[shard]
	for {
		_, body, err := r.ws.NextReader()
		if err != nil {
			f.ended(err)
			return
		}
		now := time.Now()
		bp, _ := f.frames.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		frame, err := readFrame(*bp, body)
		if err != nil {
			*bp = frame
			f.frames.Put(bp)
			f.ended(err)
			return
		}
		pings := f.centrifugoFrame(r, cs, shard, frame, now)
		if cap(frame) <= 1<<20 { // keep the pool's buffers small
			*bp = frame
			f.frames.Put(bp)
		}
		f.centrifugoPings(r, cs, pings)
	}
}

// centrifugoFrame accounts the replies in one of a Centrifugo client's
// frames, received at now, and returns how many pings it held.
func (f *fleet) centrifugoFrame(r *receiver, cs *counterShard, shard int, frame []byte, now time.Time) (pings int) {
	var hdr [headerSize]byte
	replies := 0
	for line := range centrifugoLines(frame) {
		switch parseCentrifugoLine(line, &hdr) {
		case centrifugoPing:
			pings++
			continue
		case centrifugoPub:
			f.account(r, cs, shard, &hdr, now)
		default:
			cs.malformed.Add(1)
		}
		replies++
	}
	if replies > 0 {
		cs.received.Add(uint64(replies))
		cs.frames.Add(1)
	}
	return pings
}

// centrifugoPings answers n pings: Centrifugo's pong is an empty command.
// A failed write shows up as the next read's error.
func (f *fleet) centrifugoPings(r *receiver, cs *counterShard, n int) {
	for range n {
		_ = r.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := r.ws.WriteMessage(websocket.TextMessage, centrifugoPong); err != nil {
			return
		}
		cs.pings.Add(1)
	}
}

// account records one delivery to r of the payload whose header is hdr,
// received at now: duplicate, not of this room, or new, and its latency.
// Every process sharing the rooms has the same -rooms, so another
// process's publisher p publishes to room p%rooms too.
func (f *fleet) account(r *receiver, cs *counterShard, shard int, hdr *[headerSize]byte, now time.Time) {
	rooms := f.cfg.rooms
	id := binary.LittleEndian.Uint32(hdr[offPublisher:])
	proc, p := splitPublisherID(id)
	seq := binary.LittleEndian.Uint64(hdr[offSeq:])
	if p%rooms != r.room {
		cs.malformed.Add(1)
		return
	}
	if proc != f.cfg.process {
		if !f.accountOther(r, cs, id, seq) {
			return
		}
	} else {
		local := p / rooms
		if local >= len(r.lastSeq) {
			cs.malformed.Add(1)
			return
		}
		if seq <= r.lastSeq[local] {
			cs.dups.Add(1)
			return
		}
		r.lastSeq[local] = seq
		r.unique[local].Add(1)
		cs.unique.Add(1)
	}
	if f.recordOn.Load() {
		sent := int64(binary.LittleEndian.Uint64(hdr[offSentAt:]))
		f.hist.record(shard, now.UnixNano()-sent)
	}
}

// accountOther records a delivery to r of another process's message, and
// reports whether it is the first of its (publisher, seq).
func (f *fleet) accountOther(r *receiver, cs *counterShard, id uint32, seq uint64) bool {
	r.othersMu.Lock()
	defer r.othersMu.Unlock()
	sc := r.others[id]
	if sc == nil {
		if len(r.others) >= maxOtherPublishers {
			cs.malformed.Add(1)
			return false
		}
		if r.others == nil {
			r.others = map[uint32]*seqCount{}
		}
		sc = &seqCount{}
		r.others[id] = sc
	}
	if seq <= sc.last {
		sc.dups++
		cs.dups.Add(1)
		return false
	}
	sc.last = seq
	sc.unique++
	cs.others.Add(1)
	return true
}

// otherProcesses is, for each other process whose messages arrived, what
// this process's receivers got from it. This process does not know how
// many messages the other published, so it takes as expected, for every
// receiver and every publisher of its room, every sequence up to the
// highest that any receiver here got from that publisher: missing are the
// gaps below it (lost, or publishes that failed at their publisher) and a
// receiver's shortfall against the others here (joined late, or lost at
// the tail). Messages lost at the tail by every receiver here cannot be
// told from messages not sent; HighestSeqSum, to compare with the other
// process's report, tells them apart.
func (f *fleet) otherProcesses() []otherProcessReport {
	snaps := make([]map[uint32]seqCount, len(f.receivers))
	top := map[uint32]uint64{} // the highest sequence got here, per publisher
	for i, r := range f.receivers {
		if r == nil {
			continue
		}
		r.othersMu.Lock()
		if len(r.others) > 0 {
			snaps[i] = make(map[uint32]seqCount, len(r.others))
			for id, sc := range r.others {
				snaps[i][id] = *sc
				top[id] = max(top[id], sc.last)
			}
		}
		r.othersMu.Unlock()
	}
	if len(top) == 0 {
		return nil
	}
	rooms := f.cfg.rooms
	inRoom := make([][]uint32, rooms) // the publishers seen, by room
	byProc := map[int]*otherProcessReport{}
	for id, last := range top {
		proc, p := splitPublisherID(id)
		inRoom[p%rooms] = append(inRoom[p%rooms], id)
		o := byProc[proc]
		if o == nil {
			o = &otherProcessReport{Process: proc}
			byProc[proc] = o
		}
		o.Publishers++
		o.HighestSeqSum += last
	}
	for i, r := range f.receivers {
		if r == nil {
			continue
		}
		for _, id := range inRoom[r.room] {
			proc, _ := splitPublisherID(id)
			o, got := byProc[proc], snaps[i][id]
			o.Expected += top[id]
			o.Deliveries += got.unique
			o.Missing += top[id] - got.unique
			o.Duplicates += got.dups
		}
	}
	out := make([]otherProcessReport, 0, len(byProc))
	for _, o := range byProc {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b otherProcessReport) int { return a.Process - b.Process })
	return out
}

// lost counts, over every receiver and each publisher of its room, the
// successful publishes it never received.
func (f *fleet) lost(okByPublisher []uint64) uint64 {
	var lost uint64
	rooms := f.cfg.rooms
	for _, r := range f.receivers {
		if r == nil {
			continue
		}
		for local := range r.unique {
			want := okByPublisher[local*rooms+r.room]
			if got := r.unique[local].Load(); got < want {
				lost += want - got
			}
		}
	}
	return lost
}

// expected is how many deliveries the receivers should get in all.
func (f *fleet) expected(okByPublisher []uint64) uint64 {
	var n uint64
	rooms := f.cfg.rooms
	for _, r := range f.receivers {
		if r == nil {
			continue
		}
		for local := range r.unique {
			n += okByPublisher[local*rooms+r.room]
		}
	}
	return n
}

// close ends every connection with a close frame, waits (bounded) for the
// readers, stops the pollers (bounded), then cuts whatever is left.
func (f *fleet) close(wait time.Duration) {
	f.closing.Store(true)
	for _, ws := range f.stalled {
		_ = ws.Close()
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	deadline := time.Now().Add(time.Second)
	for _, r := range f.receivers {
		if r != nil {
			_ = r.ws.WriteControl(websocket.CloseMessage, msg, deadline)
		}
	}
	timeout := time.After(wait)
	for _, r := range f.receivers {
		if r == nil {
			continue
		}
		select {
		case <-r.done:
		case <-timeout:
		}
	}
	// The pollers stop before the sockets close, so that none reads a
	// descriptor being closed; each ends the receivers it still reads.
	pollersDone := f.epoll == nil || f.epoll.stop(2*time.Second)
	for _, r := range f.receivers {
		if r != nil {
			_ = r.ws.Close()
		}
	}
	cut := time.After(2 * time.Second)
	if !pollersDone && !f.epoll.wait(cut) { // one was stuck in a write
		return
	}
	for _, r := range f.receivers {
		if r == nil {
			continue
		}
		select {
		case <-r.done:
		case <-cut:
			return
		}
	}
}
