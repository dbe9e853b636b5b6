package rooms

import (
	"time"
	"unsafe"
)

// Defaults of the history bounds when Config leaves them 0.
const (
	// DefaultMaxRoomHistoryBytes keeps a room's last 100 messages (the
	// default count) of up to some 10 KiB each, and 15 at the edge's
	// 64 KiB maximum.
	DefaultMaxRoomHistoryBytes = 1 << 20
	// DefaultMaxHistoryBytes is what every room's history together may
	// hold: 256 rooms at their own bound, some 2,300 rooms each keeping
	// 100 messages of 1 KiB, or 11,000 keeping 100 of 100 bytes.
	DefaultMaxHistoryBytes = 256 << 20
)

// A room's history is its recent messages, oldest first, for session
// clients that resume after a reconnect. It is bounded three ways: by count
// (the room's HistorySize), by bytes per room (Config.MaxRoomHistoryBytes)
// and by bytes over all rooms (Config.MaxHistoryBytes). A message counts
// its payload's capacity, its sender's ids and its slot in the ring, so the
// bounds hold for empty messages too.
//
// History keeps the fields a replay needs, not the Message itself: a live
// Message caches its encoded frames (up to several times its payload), and
// those are freed once every member has written them. A replay makes
// fresh Messages, encoded again for the resumer.
//
// The total is an atomic counter that a room adds to before it keeps a
// message, taking it back if that went over the bound, so what is kept
// never passes it and no lock is shared between rooms. A room that finds
// the total spent makes room from its own oldest messages; with none of
// its own left, it keeps nothing: the message is still delivered, and a
// resume from before it is a gap. Rooms never take from one another, so
// once the total is spent a room with no history gets none until others
// shrink or vanish; the per-room bound keeps any one room from taking
// more than its share.

// historyEntry is one kept message.
type historyEntry struct {
	seq          uint64
	kind         Kind
	payload      []byte
	fromClientID string
	fromUserID   string
	time         time.Time
	size         int64 // what it counts against the bounds, less its slot
}

// historySlotBytes is what one slot of the ring costs, used or not.
const historySlotBytes = int64(unsafe.Sizeof(historyEntry{}))

// minHistoryRing is the ring's first size: most rooms keep few messages.
const minHistoryRing = 8

// history is a ring of entries that grows up to the room's HistorySize and
// shrinks as large messages push out many small ones. Room.mu guards it.
type history struct {
	ring  []historyEntry
	head  int   // index of the oldest entry
	n     int   // entries in use
	bytes int64 // the entries' sizes and every slot of the ring
}

func historySize(m *Message) int64 {
	return int64(cap(m.Payload) + len(m.FromClientID) + len(m.FromUserID))
}

// keepLocked adds m to the room's history, dropping the room's oldest
// messages as its bounds require. It reports false when m cannot be kept
// (no history, or m alone is over a bound): the history is then empty.
// r.mu must be held.
func (r *Room) keepLocked(m *Message) bool {
	h, hub := &r.history, r.hub
	limit := r.options.HistorySize
	if limit <= 0 {
		return false // a room that keeps no history never had any
	}
	size := historySize(m)
	if size > hub.maxRoomHistoryBytes {
		r.dropHistoryLocked()
		return false
	}
	for {
		grow := int64(0) // what the ring's new slots would cost
		if h.n == len(h.ring) {
			grow = int64(min(max(2*len(h.ring), minHistoryRing), limit)-len(h.ring)) * historySlotBytes
		}
		fits := h.n < limit && h.bytes+size+grow <= hub.maxRoomHistoryBytes
		if fits && hub.reserveHistory(size+grow) {
			break
		}
		// Over the room's bounds, or the total is spent: make room from
		// this room's own history.
		switch {
		case h.n > 0:
			r.evictOldestLocked()
		case len(h.ring) > 0:
			r.dropHistoryLocked() // an empty ring may still be larger than a new one
		default:
			return false // m alone does not fit
		}
	}
	if h.n == len(h.ring) {
		h.resize(min(max(2*len(h.ring), minHistoryRing), limit))
	}
	h.ring[(h.head+h.n)%len(h.ring)] = historyEntry{
		seq: m.Seq, kind: m.Kind, payload: m.Payload, fromClientID: m.FromClientID,
		fromUserID: m.FromUserID, time: m.Time, size: size,
	}
	h.n++
	h.bytes += size
	return true
}

// evictOldestLocked drops the oldest kept message, and halves the ring
// once it is three quarters empty. r.mu must be held.
func (r *Room) evictOldestLocked() {
	h := &r.history
	e := &h.ring[h.head]
	r.trimmedSeq = e.seq
	freed := e.size
	h.bytes -= e.size
	*e = historyEntry{}
	h.head = (h.head + 1) % len(h.ring)
	h.n--
	if half := len(h.ring) / 2; len(h.ring) > minHistoryRing && h.n <= half/2 {
		freed += int64(len(h.ring)-half) * historySlotBytes
		h.resize(half)
	}
	r.hub.historyBytes.Add(-freed)
}

// dropHistoryLocked forgets every kept message and the ring itself, giving
// their bytes back to the Hub's total. r.mu must be held.
func (r *Room) dropHistoryLocked() {
	h := &r.history
	if h.bytes == 0 {
		return // no ring, so no entries
	}
	if h.n > 0 {
		r.trimmedSeq = h.ring[(h.head+h.n-1)%len(h.ring)].seq
	}
	r.hub.historyBytes.Add(-h.bytes)
	*h = history{}
}

// resize moves the entries, oldest first, to a ring of size slots, and
// counts the change in slots in h.bytes (the caller settles the Hub's
// total).
func (h *history) resize(size int) {
	ring := make([]historyEntry, size)
	for i := range h.n {
		ring[i] = h.ring[(h.head+i)%len(h.ring)]
	}
	h.bytes += int64(size-len(h.ring)) * historySlotBytes
	h.ring, h.head = ring, 0
}

// replayLocked returns the messages after since, oldest first, or an
// ErrGap error when the history cannot say what came after since in this
// epoch. r.mu must be held.
func (r *Room) replayLocked(since uint64, epoch string) ([]*Message, error) {
	switch {
	case epoch != r.epoch:
		return nil, errorf(ErrGap, "room %q restarted its history (epoch %q, now %q): messages were lost", r.id, epoch, r.epoch)
	case since > r.lastSeq && !r.shared:
		return nil, errorf(ErrGap, "room %q has no message %d in this epoch (latest %d)", r.id, since, r.lastSeq)
	case since < r.trimmedSeq:
		return nil, errorf(ErrGap, "room %q keeps history back to message %d only; messages after %d were lost", r.id, r.trimmedSeq, since)
	}
	h := &r.history
	var out []*Message
	for i := range h.n {
		if e := &h.ring[(h.head+i)%len(h.ring)]; e.seq > since {
			out = append(out, &Message{RoomID: r.id, Kind: e.kind, Payload: e.payload, FromClientID: e.fromClientID,
				FromUserID: e.fromUserID, Seq: e.seq, Time: e.time})
		}
	}
	return out, nil
}

// reserveHistory counts n more bytes against the Hub's total, or reports
// false and counts nothing when that would pass it.
func (h *Hub) reserveHistory(n int64) bool {
	if h.historyBytes.Add(n) <= h.maxHistoryBytes {
		return true
	}
	h.historyBytes.Add(-n)
	return false
}
