package rooms

import "sync"

// Deliverer takes ordered messages to the members on this node; the Hub is
// one.
type Deliverer interface {
	Deliver(m *Message) int
	// DeliverPresence takes a join or leave that a PresenceAnnouncer
	// ordered among the room's messages.
	DeliverPresence(p PresenceEvent)
}

// Position is where a message sits in its room's order: its sequence, in
// the history named by Epoch. A resuming client gives back the last
// position it saw.
type Position struct {
	Seq   uint64
	Epoch string
}

// Published is what Broker.Publish tells of a message it took.
type Published struct {
	Position
	// Recipients is how many members on this node it was handed to, when
	// the broker delivers before Publish returns (MemoryBroker); a broker
	// that delivers asynchronously, as every node hears back from a bus,
	// reports -1.
	Recipients int
}

// RoomHistory is what a broker knows of a room when this node starts
// carrying it: what a new local Room starts from.
type RoomHistory struct {
	// Epoch names the room's history; it changes only when the history
	// really restarted.
	Epoch string
	// Seq is the room's latest position: its last message, or, if the
	// broker knows of none, where the room's order stands now.
	Seq uint64
	// Messages are the room's last messages, oldest first, that the broker
	// still holds, all at or before Seq.
	Messages []*Message
	// Trimmed is the latest position whose message may be lost to a
	// resumer: a resume from before it is a gap. Messages hold everything
	// of the room after it.
	Trimmed uint64
	// Members are the room's members on other nodes, for a broker that
	// is a PresenceAnnouncer: where the roster starts.
	Members []ClientInfo
	// SharedOrder says that positions count the messages of many rooms
	// (a stream's sequence), so that a position past Seq is no gap: it
	// may be where the order stood when a client joined on another node.
	SharedOrder bool
}

// Broker orders the messages published to each room and carries them to
// every node that has members there. The in-process MemoryBroker serves one
// node; rooms/cluster's broker carries rooms over NATS JetStream.
//
// The Hub calls Subscribe and Unsubscribe outside its locks, as they may
// wait on the network, so the calls for one room id may overlap (a room
// removed as another of the same id is made): a broker counts them, and
// keeps delivering until Unsubscribe was called as often as Subscribe.
type Broker interface {
	// Publish assigns m its position in the room and carries it to every
	// node with members there; the broker may refuse with an error (for
	// example when the bus is unreachable), and then nobody gets m.
	Publish(m *Message) (Published, error)
	// Subscribe is called when a room appears on this node: from its
	// return on, the room's messages after the returned history's Seq
	// must reach the local Deliverer, in order, and none before it.
	Subscribe(roomID string) (RoomHistory, error)
	// Unsubscribe is called when the room is gone from this node.
	Unsubscribe(roomID string)
}

// MemoryBroker is the single-process Broker: a publish is delivered
// synchronously to the local members, under a per-room lock so that every
// member sees a room's messages in sequence order. It keeps no history of
// its own: the Hub's rooms keep it, as this node is the only one.
type MemoryBroker struct {
	local Deliverer

	mu     sync.RWMutex
	topics map[string]*memoryTopic
}

type memoryTopic struct {
	refs  int    // Subscribe calls not yet matched by Unsubscribe; under MemoryBroker.mu
	epoch string // a new one each time the room appears afresh

	mu  sync.Mutex
	seq uint64
}

// NewMemoryBroker returns a broker that delivers to local.
func NewMemoryBroker(local Deliverer) *MemoryBroker {
	return &MemoryBroker{local: local, topics: make(map[string]*memoryTopic)}
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(m *Message) (Published, error) {
	b.mu.RLock()
	t := b.topics[m.RoomID]
	b.mu.RUnlock()
	if t == nil {
		return Published{}, nil // the room vanished since the caller looked it up
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	m.Seq = t.seq
	return Published{Position: Position{Seq: m.Seq, Epoch: t.epoch}, Recipients: b.local.Deliver(m)}, nil
}

// Subscribe implements Broker. A room that appears afresh gets a new
// epoch: this node forgot its history when it went.
func (b *MemoryBroker) Subscribe(roomID string) (RoomHistory, error) {
	b.mu.Lock()
	t := b.topics[roomID]
	if t == nil {
		t = &memoryTopic{epoch: newEpoch()}
		b.topics[roomID] = t
	}
	t.refs++
	b.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	// A room made again before the old one's Unsubscribe keeps the
	// epoch and order, but not the old room's history: Trimmed says so.
	return RoomHistory{Epoch: t.epoch, Seq: t.seq, Trimmed: t.seq}, nil
}

// Unsubscribe implements Broker.
func (b *MemoryBroker) Unsubscribe(roomID string) {
	b.mu.Lock()
	if t := b.topics[roomID]; t != nil {
		if t.refs--; t.refs <= 0 {
			delete(b.topics, roomID)
		}
	}
	b.mu.Unlock()
}
