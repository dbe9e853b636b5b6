package cluster

import (
	"context"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"roomd/rooms"
)

// The stream that orders and keeps every room's messages. A node publishes
// a room's messages to rooms.in.<room>; the stream gives each its sequence
// (one order per room, whichever node published) and republishes it, with
// that sequence and the room's previous one, to rooms.out.<room>, which
// every node with members there subscribes to with plain NATS. No consumer
// per room per node: a node reads the stream itself only to load a room's
// history when it starts carrying the room, and to fill a gap.
const (
	StreamName   = "ROOMD_ROOMS"
	inPrefix     = "rooms.in."
	outPrefix    = "rooms.out."
	headerKind   = "Roomd-Kind"
	headerFrom   = "Roomd-From"
	headerUser   = "Roomd-User"
	headerExcept = "Roomd-Except"
	headerTime   = "Roomd-Time"
)

// kindDeleted marks where a room was deleted: DeleteRoom publishes it and
// purges what came before, so that a resumer from before it hears of a
// gap rather than the next room's messages as if they followed.
const kindDeleted = "deleted"

// A member's join or leave travels in its room's order too, as a stream
// message of these kinds whose data is a presenceData.
const (
	kindJoined = "joined"
	kindLeft   = "left"
)

// presenceData is a join or leave as the stream keeps it.
type presenceData struct {
	Client rooms.ClientInfo `json:"client"`
	Cause  rooms.LeaveCause `json:"cause,omitempty"`
	Code   rooms.CloseCode  `json:"code,omitempty"`
	Reason string           `json:"reason,omitempty"`
}

var kindNames = map[rooms.Kind]string{rooms.Text: "text", rooms.Binary: "binary", rooms.JSON: "json"}

func kindOf(name string) (rooms.Kind, bool) {
	for k, n := range kindNames {
		if n == name {
			return k, true
		}
	}
	return 0, false
}

// StreamConfig bounds the stream as a node bounds its rooms' history.
type StreamConfig struct {
	// Replicas is how many NATS servers keep the stream: 1 for one
	// server, 3 for a cluster of three or more.
	Replicas int
	// HistoryPerRoom is the most messages the stream keeps per room; a
	// room's own history_size is capped by it in cluster mode.
	HistoryPerRoom int
	// MaxBytes bounds everything the stream keeps (the oldest go first),
	// as -history-bytes bounds one node.
	MaxBytes int64
	// MaxMessageBytes is the largest payload a member may send; the stream
	// refuses larger ones.
	MaxMessageBytes int
}

// EnsureStream makes the stream, or brings an existing one's limits to
// cfg (every node does so at start; the last one's settings hold).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	sc := jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "roomd: every room's messages, in order, with their history",
		Subjects:          []string{inPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(max(cfg.HistoryPerRoom, 1)),
		MaxBytes:          cfg.MaxBytes,
		MaxMsgSize:        int32(cfg.MaxMessageBytes + 4096), // headers: ids and kind
		Storage:           jetstream.FileStorage,
		Replicas:          max(cfg.Replicas, 1),
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: inPrefix + ">", Destination: outPrefix + ">"},
		Duplicates:        2 * time.Minute,
	}
	if sc.MaxBytes <= 0 {
		sc.MaxBytes = -1
	}
	return js.CreateOrUpdateStream(ctx, sc)
}

// Broker is the rooms.Broker of cluster mode: it publishes into the stream
// and delivers what the stream republishes for the rooms this node carries.
type Broker struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	local   rooms.Deliverer
	log     *slog.Logger
	timeout time.Duration
	state   atomic.Pointer[streamState]

	mu   sync.Mutex
	subs map[string]*roomSub

	// Roster, if set, lists a room's members on the other nodes: where a
	// room this node starts carrying takes its roster from.
	Roster func(ctx context.Context, roomID string) []rooms.ClientInfo

	announcing announceQueue

	// recovered counts the messages read back from the stream because this
	// node missed them live (fillGapLocked); presenceDropped the joins and
	// leaves never announced (announceQueue's bound). For Node.Stats.
	recovered       atomic.Uint64
	presenceDropped atomic.Uint64
}

// streamState is the stream and its epoch, replaced together when the
// stream was made anew (Restart).
type streamState struct {
	stream jetstream.Stream
	epoch  string // the stream's: it changes only if the stream was made anew
}

func (b *Broker) current() *streamState { return b.state.Load() }

// Restart carries on over a stream made anew, whose epoch differs and
// whose positions start over: what this node delivered is forgotten, so
// that the new stream's messages are not taken for old ones.
func (b *Broker) Restart(stream jetstream.Stream, epoch string) {
	b.state.Store(&streamState{stream: stream, epoch: epoch})
	b.mu.Lock()
	all := make([]*roomSub, 0, len(b.subs))
	for _, rs := range b.subs {
		all = append(all, rs)
	}
	b.mu.Unlock()
	for _, rs := range all {
		rs.dmu.Lock()
		rs.delivered = 0
		rs.dmu.Unlock()
	}
}

// Epoch names the history of the stream the broker carries rooms over.
func (b *Broker) Epoch() string { return b.current().epoch }

// roomSub is one room this node carries.
type roomSub struct {
	roomID  string
	subject string // rooms.out.<room>
	refs    int    // Subscribe calls not matched by Unsubscribe; under Broker.mu
	opMu    sync.Mutex
	sub     *nats.Subscription // under opMu

	// Delivery state, under dmu: messages are delivered one at a time, in
	// stream order, by the subscription's goroutine or a reload.
	dmu       sync.Mutex
	started   bool        // Subscribe has loaded the history; before, arrivals wait in early
	early     []*nats.Msg // arrived while loading
	delivered uint64      // the room's latest sequence this node has seen
}

// NewBroker returns a broker over the stream, whose history StreamEpoch
// named, for the Hub that NewHub gives it as local. timeout bounds each
// call to NATS.
func NewBroker(nc *nats.Conn, js jetstream.JetStream, stream jetstream.Stream, epoch string, local rooms.Deliverer, log *slog.Logger, timeout time.Duration) *Broker {
	b := &Broker{nc: nc, js: js, local: local, log: log, timeout: timeout, subs: make(map[string]*roomSub)}
	b.state.Store(&streamState{stream: stream, epoch: epoch})
	b.announcing.wake = make(chan struct{}, 1)
	b.announcing.emptied = make(chan struct{}, 1)
	b.announcing.stop = make(chan struct{})
	b.announcing.done = make(chan struct{})
	go b.announceLoop()
	return b
}

// StreamEpoch names the stream's history by when the stream was made: a
// stream made anew (its NATS store lost) starts a new epoch, and resumers
// from the old one hear of a gap.
func StreamEpoch(ctx context.Context, stream jetstream.Stream) (string, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", StreamName, err)
	}
	var b8 [8]byte
	binary.BigEndian.PutUint64(b8[:], uint64(info.Created.UnixNano()))
	return strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b8[:])), nil
}

// Publish implements rooms.Broker: the message is stored in the stream
// before Publish returns, and reaches every node (this one included)
// through the stream's republish.
func (b *Broker) Publish(m *rooms.Message) (rooms.Published, error) {
	if !b.nc.IsConnected() {
		return rooms.Published{}, fmt.Errorf("%w: NATS is not connected (%s); the message was not published", rooms.ErrUnavailable, b.nc.Status())
	}
	msg := nats.NewMsg(inPrefix + roomToken(m.RoomID))
	msg.Data = m.Payload
	msg.Header.Set(headerKind, kindNames[m.Kind])
	if m.FromClientID != "" {
		msg.Header.Set(headerFrom, m.FromClientID)
	}
	if m.FromUserID != "" {
		msg.Header.Set(headerUser, m.FromUserID)
	}
	if len(m.ExcludeClientIDs) > 0 {
		msg.Header.Set(headerExcept, strings.Join(m.ExcludeClientIDs, ","))
	}
	msg.Header.Set(headerTime, strconv.FormatInt(m.Time.UnixNano(), 10))
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	ack, err := b.js.PublishMsg(ctx, msg)
	if err != nil {
		return rooms.Published{}, fmt.Errorf("%w: the stream did not take the message: %v", rooms.ErrUnavailable, err)
	}
	m.Seq = ack.Sequence
	return rooms.Published{Position: rooms.Position{Seq: ack.Sequence, Epoch: b.current().epoch}, Recipients: -1}, nil
}

// Subscribe implements rooms.Broker: it subscribes to the room's
// republished messages first, then loads what the stream keeps of the
// room, so that nothing falls between the two; what arrives meanwhile is
// delivered after the history, without what the history already holds.
func (b *Broker) Subscribe(roomID string) (rooms.RoomHistory, error) {
	b.mu.Lock()
	rs := b.subs[roomID]
	if rs == nil {
		rs = &roomSub{roomID: roomID, subject: outPrefix + roomToken(roomID)}
		b.subs[roomID] = rs
	}
	rs.refs++
	b.mu.Unlock()

	rs.opMu.Lock()
	defer rs.opMu.Unlock()
	if rs.sub == nil {
		sub, err := b.nc.Subscribe(rs.subject, func(msg *nats.Msg) { b.arrived(rs, msg) })
		if err == nil {
			sub.SetPendingLimits(-1, 64<<20) // a busy room may queue a burst; bounded in bytes
			err = b.nc.FlushTimeout(b.timeout)
		}
		if err != nil {
			if sub != nil {
				sub.Unsubscribe()
			}
			b.release(rs)
			return rooms.RoomHistory{}, fmt.Errorf("%w: subscribing to %s: %v", rooms.ErrUnavailable, rs.subject, err)
		}
		rs.sub = sub
	}
	hist, err := b.loadHistoryRetrying(roomID)
	if err != nil {
		if b.release(rs) {
			b.unsubscribeLocked(rs)
		}
		return rooms.RoomHistory{}, err
	}
	if b.Roster != nil {
		// Asked after subscribing: a join or leave the answers miss
		// arrives as an event, and events apply on top of any answer.
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		hist.Members = b.Roster(ctx, roomID)
		cancel()
	}
	rs.dmu.Lock()
	if !rs.started || hist.Seq > rs.delivered {
		rs.delivered = hist.Seq
	} else {
		// Already carried (a room made again before the old one's
		// Unsubscribe): the history stands where delivery does.
		hist.Seq = rs.delivered
	}
	early := rs.early
	rs.started, rs.early = true, nil
	for _, msg := range early {
		b.deliverLocked(rs, msg)
	}
	rs.dmu.Unlock()
	return hist, nil
}

// loadHistoryRetrying is loadHistory tried again for a while: a stream
// whose servers are electing a leader (a new stream, a NATS server that
// stopped) answers "no responders" for a moment.
func (b *Broker) loadHistoryRetrying(roomID string) (rooms.RoomHistory, error) {
	deadline := time.Now().Add(b.timeout)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		hist, err := b.loadHistory(roomID)
		if err == nil || time.Now().Add(wait).After(deadline) {
			return hist, err
		}
		time.Sleep(wait)
	}
}

// loadHistory reads what the stream keeps of a room.
func (b *Broker) loadHistory(roomID string) (rooms.RoomHistory, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	subject := inPrefix + roomToken(roomID)
	cur := b.current()
	info, err := cur.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return rooms.RoomHistory{}, fmt.Errorf("%w: reading stream %s: %v", rooms.ErrUnavailable, StreamName, err)
	}
	st := info.State
	hist := rooms.RoomHistory{Epoch: cur.epoch, Seq: st.LastSeq, SharedOrder: true}
	// What the stream dropped for its byte bound went oldest first over
	// all rooms: anything of this room before FirstSeq may be lost.
	if st.FirstSeq > 0 {
		hist.Trimmed = st.FirstSeq - 1
	}
	count := st.Subjects[subject]
	if count == 0 {
		return hist, nil
	}
	msgs, err := b.fetch(ctx, subject, 0, 0)
	if err != nil {
		return rooms.RoomHistory{}, err
	}
	if len(msgs) > 0 && count >= uint64(info.Config.MaxMsgsPerSubject) {
		// At its per-room bound: older messages of the room were dropped.
		hist.Trimmed = max(hist.Trimmed, msgs[0].Seq-1)
	}
	for _, m := range msgs {
		hist.Seq = max(hist.Seq, m.Seq) // stored after the Info above
		switch {
		case isDeletionMark(m): // nothing before it belongs to this room
			hist.Trimmed, hist.Messages = m.Seq, hist.Messages[:0]
		case m.Kind != 0 && m.Kind != rooms.Presence:
			hist.Messages = append(hist.Messages, m)
		}
	}
	return hist, nil
}

// fetch reads a room's messages from the stream with sequences from
// `from` (0: the first kept) up to `upTo` (0: the last kept), oldest first.
// Deletion marks come back with Kind 0.
func (b *Broker) fetch(ctx context.Context, subject string, from, upTo uint64) ([]*rooms.Message, error) {
	if upTo == 0 {
		last, err := b.current().stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", rooms.ErrUnavailable, subject, err)
		}
		upTo = last.Sequence
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := b.current().stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", rooms.ErrUnavailable, subject, err)
	}
	var out []*rooms.Message
	done := false
	for !done {
		// What the stream holds is there now: no waiting for more, and
		// every batch read to its end, so that none outlives the call.
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", rooms.ErrUnavailable, subject, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil || done {
				continue
			}
			seq := meta.Sequence.Stream
			if seq > upTo {
				done = true
				continue
			}
			out = append(out, decode(roomOfToken(strings.TrimPrefix(msg.Subject(), inPrefix)), seq, msg.Headers(), msg.Data(), meta.Timestamp))
			done = seq == upTo
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("%w: reading %s: %v", rooms.ErrUnavailable, subject, err)
		}
		if n == 0 {
			// Nothing more to read: what upTo named is gone (trimmed
			// meanwhile), so what was read is all there is.
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", rooms.ErrUnavailable, subject, ctx.Err())
		}
	}
	return out, nil
}

// decode makes a rooms.Message of a stored or republished one. A deletion
// mark, or a kind this node does not know, has Kind 0 and is not
// delivered.
func decode(roomID string, seq uint64, h nats.Header, data []byte, stored time.Time) *rooms.Message {
	m := &rooms.Message{RoomID: roomID, Seq: seq, Payload: data, Time: stored,
		FromClientID: h.Get(headerFrom), FromUserID: h.Get(headerUser)}
	kind := h.Get(headerKind)
	m.Kind, _ = kindOf(kind)
	switch kind {
	case kindDeleted:
		m.Event = kindDeleted
	case kindJoined, kindLeft:
		m.Kind, m.Event = rooms.Presence, kind
	}
	if except := h.Get(headerExcept); except != "" {
		m.ExcludeClientIDs = strings.Split(except, ",")
	}
	if ns, err := strconv.ParseInt(h.Get(headerTime), 10, 64); err == nil {
		m.Time = time.Unix(0, ns)
	}
	return m
}

func isDeletionMark(m *rooms.Message) bool { return m.Kind == 0 && m.Event == kindDeleted }

// arrived is the room subscription's handler: NATS calls it on one
// goroutine per subscription, so a room's messages come in stream order.
func (b *Broker) arrived(rs *roomSub, msg *nats.Msg) {
	rs.dmu.Lock()
	defer rs.dmu.Unlock()
	if !rs.started {
		rs.early = append(rs.early, msg)
		return
	}
	b.deliverLocked(rs, msg)
}

// deliverLocked hands one republished message to the Hub, first reading
// from the stream what this node missed before it (the message's
// Nats-Last-Sequence says which sequence of the room came before). rs.dmu
// must be held.
func (b *Broker) deliverLocked(rs *roomSub, msg *nats.Msg) {
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq <= rs.delivered {
		return // not from the stream, or already delivered
	}
	prev, _ := strconv.ParseUint(msg.Header.Get(jetstream.LastSequenceHeader), 10, 64)
	if prev > rs.delivered {
		b.fillGapLocked(rs, prev)
	}
	rs.delivered = seq
	b.hand(decode(rs.roomID, seq, msg.Header, msg.Data, time.Now()))
}

// hand gives one decoded message or presence event to the Hub.
func (b *Broker) hand(m *rooms.Message) {
	switch m.Kind {
	case 0: // a deletion mark, or of a kind this node does not know
	case rooms.Presence:
		var d presenceData
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			b.log.Warn("cluster: a malformed presence event in the stream", "room", m.RoomID, "seq", m.Seq, "err", err)
			return
		}
		b.local.DeliverPresence(rooms.PresenceEvent{RoomID: m.RoomID, Seq: m.Seq, Joined: m.Event == kindJoined,
			Client: d.Client, Cause: d.Cause, Code: d.Code, Reason: d.Reason, Time: m.Time})
	default:
		b.local.Deliver(m)
	}
}

// fillGapLocked delivers the room's messages after rs.delivered up to
// upTo from the stream: this node missed them (NATS dropped them for a
// slow subscription, or while it reconnected). rs.dmu must be held.
func (b *Broker) fillGapLocked(rs *roomSub, upTo uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	msgs, err := b.fetch(ctx, inPrefix+roomToken(rs.roomID), rs.delivered+1, upTo)
	if err != nil {
		b.log.Warn("cluster: could not read messages this node missed; its members miss them too",
			"room", rs.roomID, "after", rs.delivered, "up_to", upTo, "err", err)
		return
	}
	for _, m := range msgs {
		if m.Seq <= rs.delivered {
			continue
		}
		rs.delivered = m.Seq
		b.recovered.Add(1)
		b.hand(m)
	}
}

// CatchUp reads, for every room this node carries, what the stream holds
// past what the node has delivered: after NATS reconnects, what was
// published while it was away. The subscriptions themselves come back by
// themselves.
func (b *Broker) CatchUp() {
	b.mu.Lock()
	all := make([]*roomSub, 0, len(b.subs))
	for _, rs := range b.subs {
		all = append(all, rs)
	}
	b.mu.Unlock()
	for _, rs := range all {
		rs.dmu.Lock()
		if rs.started {
			b.fillGapLocked(rs, 0)
		}
		rs.dmu.Unlock()
	}
}

// Unsubscribe implements rooms.Broker.
func (b *Broker) Unsubscribe(roomID string) {
	b.mu.Lock()
	rs := b.subs[roomID]
	b.mu.Unlock()
	if rs == nil {
		return
	}
	rs.opMu.Lock()
	defer rs.opMu.Unlock()
	if b.release(rs) {
		b.unsubscribeLocked(rs)
	}
}

// release drops one Subscribe of rs and reports whether it was the last,
// and rs is forgotten.
func (b *Broker) release(rs *roomSub) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs.refs--
	if rs.refs > 0 {
		return false
	}
	delete(b.subs, rs.roomID)
	return true
}

// unsubscribeLocked ends rs's subscription. rs.opMu must be held.
func (b *Broker) unsubscribeLocked(rs *roomSub) {
	if rs.sub != nil {
		rs.sub.Unsubscribe()
		rs.sub = nil
	}
}

// announceQueue holds this node's joins and leaves until they are in the
// stream, in the order they happened. Announce is called under a room's
// lock, so it only appends; one goroutine publishes, one event at a time,
// which keeps a member's join before its leave on every node.
type announceQueue struct {
	mu      sync.Mutex
	events  []rooms.PresenceEvent
	dropped int
	wake    chan struct{}
	emptied chan struct{} // signalled when the loop publishes the last queued event
	stop    chan struct{}
	done    chan struct{}
}

// maxQueuedAnnouncements bounds the queue while NATS is unreachable; past
// it the oldest are dropped (and other nodes' rosters miss them until the
// room is carried afresh), as a node's memory matters more.
const maxQueuedAnnouncements = 100000

// Announce implements rooms.PresenceAnnouncer.
func (b *Broker) Announce(p rooms.PresenceEvent) {
	q := &b.announcing
	q.mu.Lock()
	if len(q.events) >= maxQueuedAnnouncements {
		q.events = q.events[1:]
		q.dropped++
		b.presenceDropped.Add(1)
	}
	q.events = append(q.events, p)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (b *Broker) announceLoop() {
	q := &b.announcing
	defer close(q.done)
	for {
		q.mu.Lock()
		var next rooms.PresenceEvent
		have := len(q.events) > 0
		if have {
			next = q.events[0]
		}
		if q.dropped > 0 {
			b.log.Warn("cluster: joins and leaves dropped while NATS was unreachable; other nodes list members wrongly until they carry the room afresh", "dropped", q.dropped)
			q.dropped = 0
		}
		q.mu.Unlock()
		if !have {
			select {
			case <-q.wake:
				continue
			case <-q.stop:
				return
			}
		}
		if err := b.publishPresence(next); err != nil {
			// Kept at the head, tried again: order matters more than speed.
			select {
			case <-time.After(250 * time.Millisecond):
				continue
			case <-q.stop:
				return
			}
		}
		q.mu.Lock()
		if len(q.events) > 0 {
			q.events[0] = rooms.PresenceEvent{}
			q.events = q.events[1:]
		}
		empty := len(q.events) == 0
		q.mu.Unlock()
		if empty {
			select {
			case q.emptied <- struct{}{}:
			default:
			}
		}
	}
}

func (b *Broker) publishPresence(p rooms.PresenceEvent) error {
	data, err := json.Marshal(presenceData{Client: p.Client, Cause: p.Cause, Code: p.Code, Reason: p.Reason})
	if err != nil {
		return nil // nothing to retry
	}
	msg := nats.NewMsg(inPrefix + roomToken(p.RoomID))
	msg.Data = data
	kind := kindLeft
	if p.Joined {
		kind = kindJoined
	}
	msg.Header.Set(headerKind, kind)
	msg.Header.Set(headerTime, strconv.FormatInt(p.Time.UnixNano(), 10))
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	_, err = b.js.PublishMsg(ctx, msg)
	return err
}

// Close publishes the joins and leaves still queued, for at most the
// broker's timeout (a node that stops cleanly tells how its members left),
// then stops announcing.
func (b *Broker) Close() {
	q := &b.announcing
	timeout := time.NewTimer(b.timeout)
	defer timeout.Stop()
drain:
	for b.nc.IsConnected() {
		q.mu.Lock()
		n := len(q.events)
		q.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-q.emptied:
		case <-timeout.C:
			break drain
		}
	}
	select {
	case <-b.announcing.stop:
	default:
		close(b.announcing.stop)
	}
	<-b.announcing.done
}

// MarkDeleted records in the stream that a room was deleted and drops its
// history: a resumer from before the mark hears of a gap, never the
// messages of a room made again with the same id as if they followed.
func (b *Broker) MarkDeleted(ctx context.Context, roomID string) error {
	subject := inPrefix + roomToken(roomID)
	msg := nats.NewMsg(subject)
	msg.Header.Set(headerKind, kindDeleted)
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("%w: marking room %q deleted: %v", rooms.ErrUnavailable, roomID, err)
	}
	if err := b.current().stream.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeKeep(1)); err != nil {
		return fmt.Errorf("%w: dropping room %q's history: %v", rooms.ErrUnavailable, roomID, err)
	}
	return nil
}
