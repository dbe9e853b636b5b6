package rooms

import (
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxQueueBytes bounds a member's send queue when Config leaves it 0.
const DefaultMaxQueueBytes = 1 << 20

// MaxHistorySize bounds a room's history.
const MaxHistorySize = 100000

// Config configures a Hub. The zero value is usable.
type Config struct {
	// NodeName names this node in every client id it makes, so that a
	// command for a client can be routed to the node holding it (see
	// NodeOfClientID). It must pass ValidateNodeName; NewHub panics if it
	// does not. "" means DefaultNodeName.
	NodeName string
	// MaxQueueBytes bounds each member's send queue; a member that would go
	// over it is closed with CloseSlowConsumer. 0 means 1 MiB.
	MaxQueueBytes int
	// MaxRooms bounds how many rooms exist at once; creating one more is
	// ErrLimit. 0 means unlimited.
	MaxRooms int
	// MaxClientsPerRoom caps every room, including those whose own
	// MaxClients is 0 (unlimited). 0 means no server-wide cap.
	MaxClientsPerRoom int
	// DefaultHistorySize is how many messages a room keeps for resuming
	// clients when it is made by joining or with HistorySize -1.
	DefaultHistorySize int
	// MaxWatchers bounds the watches (Watch) open at once; one more is
	// ErrLimit. 0 means DefaultMaxWatchers.
	MaxWatchers int
	// MaxRoomHistoryBytes bounds the bytes of messages each room keeps,
	// whatever its HistorySize; the oldest go first. 0 means 1 MiB.
	MaxRoomHistoryBytes int64
	// MaxHistoryBytes bounds the bytes of messages all rooms keep together;
	// history.go says how a room fares once it is spent. 0 means 256 MiB.
	MaxHistoryBytes int64
	// NewBroker makes the broker that orders and carries published
	// messages, given the Hub to deliver them to. nil means NewMemoryBroker.
	NewBroker func(local Deliverer) Broker
}

// shardCount spreads the registry over this many locks so that joins,
// leaves and lookups in different rooms rarely contend.
const shardCount = 64

type roomShard struct {
	mu    sync.RWMutex
	rooms map[string]*Room
}

type clientShard struct {
	mu      sync.RWMutex
	clients map[string]*Client
	byUser  map[string]map[*Client]struct{}
}

// Hub is the registry of rooms and their members on this node. All methods
// are safe for concurrent use.
type Hub struct {
	node              string // in every client id made here; see ids.go
	maxQueueBytes     int
	maxRooms          int
	maxClientsPerRoom int
	defaultHistory    int
	roomCount         atomic.Int64
	maxWatchers       int
	watchers          atomic.Int64 // open watches
	broker            Broker
	announcer         PresenceAnnouncer // the broker, when presence spans nodes; see presence.go
	seed              maphash.Seed
	closed            atomic.Bool

	maxRoomHistoryBytes int64
	maxHistoryBytes     int64
	historyBytes        atomic.Int64 // kept by every room's history; see history.go

	counters counters // for Stats

	rooms    [shardCount]roomShard
	clients  [shardCount]clientShard  // by client id, and by user id for KickUser
	bans     banStore                 // see bans.go
	creators [shardCount]creatorShard // rooms made by each RoomQuota's creator; see quota.go
}

// NewHub returns an empty Hub. It panics if cfg.NodeName is not a valid
// node name: a caller that takes the name from its user checks it first with
// ValidateNodeName.
func NewHub(cfg Config) *Hub {
	node := cfg.NodeName
	if node == "" {
		node = DefaultNodeName
	}
	if err := ValidateNodeName(node); err != nil {
		panic("rooms.NewHub: " + err.Error())
	}
	h := &Hub{
		node:              node,
		maxQueueBytes:     cfg.MaxQueueBytes,
		maxRooms:          cfg.MaxRooms,
		maxClientsPerRoom: cfg.MaxClientsPerRoom,
		defaultHistory:    max(cfg.DefaultHistorySize, 0),
		maxWatchers:       cfg.MaxWatchers,
		seed:              maphash.MakeSeed(),
	}
	if h.maxQueueBytes <= 0 {
		h.maxQueueBytes = DefaultMaxQueueBytes
	}
	if h.maxWatchers <= 0 {
		h.maxWatchers = DefaultMaxWatchers
	}
	h.maxRoomHistoryBytes, h.maxHistoryBytes = cfg.MaxRoomHistoryBytes, cfg.MaxHistoryBytes
	if h.maxRoomHistoryBytes <= 0 {
		h.maxRoomHistoryBytes = DefaultMaxRoomHistoryBytes
	}
	if h.maxHistoryBytes <= 0 {
		h.maxHistoryBytes = DefaultMaxHistoryBytes
	}
	for i := range h.rooms {
		h.rooms[i].rooms = make(map[string]*Room)
		h.clients[i].clients = make(map[string]*Client)
		h.clients[i].byUser = make(map[string]map[*Client]struct{})
	}
	if cfg.NewBroker != nil {
		h.broker = cfg.NewBroker(h)
	} else {
		h.broker = NewMemoryBroker(h)
	}
	h.announcer, _ = h.broker.(PresenceAnnouncer)
	return h
}

func (h *Hub) shardIndex(key string) int {
	return int(maphash.String(h.seed, key) % shardCount)
}

func (h *Hub) roomShard(roomID string) *roomShard { return &h.rooms[h.shardIndex(roomID)] }

func (h *Hub) clientShard(key string) *clientShard { return &h.clients[h.shardIndex(key)] }

// lookup finds a room of the registry, once it is open (see openRoom): a
// room that could not be opened is not found.
func (h *Hub) lookup(roomID string) *Room {
	r := h.lookupOpening(roomID)
	if r == nil || r.waitOpen() != nil {
		return nil
	}
	return r
}

// lookupOpening finds a room of the registry whether or not it is open yet.
func (h *Hub) lookupOpening(roomID string) *Room {
	s := h.roomShard(roomID)
	s.mu.RLock()
	r := s.rooms[roomID]
	s.mu.RUnlock()
	return r
}

func (h *Hub) room(roomID string) (*Room, error) {
	if err := ValidateRoomID(roomID); err != nil {
		return nil, err
	}
	if r := h.lookup(roomID); r != nil {
		return r, nil
	}
	return nil, errorf(ErrRoomNotFound, "room %q not found", roomID)
}

// CreateRoom makes a room that lives until DeleteRoom.
func (h *Hub) CreateRoom(roomID string, opts RoomOptions) (RoomInfo, error) {
	if err := ValidateRoomID(roomID); err != nil {
		return RoomInfo{}, err
	}
	if opts.MaxClients < 0 {
		return RoomInfo{}, errorf(ErrInvalidArgument, "max_clients must not be negative")
	}
	if opts.HistorySize > MaxHistorySize {
		return RoomInfo{}, errorf(ErrInvalidArgument, "history_size is %d; at most %d", opts.HistorySize, MaxHistorySize)
	}
	opts.Metadata = maps.Clone(opts.Metadata)
	r, created, err := h.insertRoom(roomID, opts, false, nil)
	if err != nil {
		return RoomInfo{}, err
	}
	if !created {
		return RoomInfo{}, errorf(ErrRoomExists, "room %q already exists", roomID)
	}
	return r.info(), nil
}

// insertRoom adds a new room unless one with that id exists, which it then
// returns with created false. A new room counts against quotas until it
// goes. Either way the room returned is open (see openRoom), or an error
// says why it could not be.
func (h *Hub) insertRoom(roomID string, opts RoomOptions, auto bool, quotas []RoomQuota) (r *Room, created bool, err error) {
	if h.closed.Load() {
		return nil, false, ErrClosed
	}
	s := h.roomShard(roomID)
	s.mu.Lock()
	if r := s.rooms[roomID]; r != nil {
		s.mu.Unlock()
		if err := r.waitOpen(); err != nil {
			return nil, false, err
		}
		return r, false, nil
	}
	// The creator's own quota first: one address at its quota hears
	// about that (and backs off), not that the whole server is full.
	creators, err := h.chargeCreators(quotas)
	if err != nil {
		s.mu.Unlock()
		return nil, false, err
	}
	if h.maxRooms > 0 && h.roomCount.Load() >= int64(h.maxRooms) {
		h.releaseCreators(creators)
		s.mu.Unlock()
		return nil, false, errorf(ErrLimit, "the server has its maximum of %d rooms", h.maxRooms)
	}
	if opts.HistorySize < 0 {
		opts.HistorySize = h.defaultHistory
	}
	r = &Room{hub: h, id: roomID, createdAt: time.Now(), options: opts, autoCreated: auto, creators: creators,
		opening: true, opened: make(chan struct{})}
	s.rooms[roomID] = r
	h.roomCount.Add(1)
	s.mu.Unlock()
	if err := h.openRoom(r); err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// openRoom subscribes a new room at the broker and starts it from the
// history the broker holds. It runs outside every lock, as a broker may
// wait on the network: until it is done the room is in the registry but
// opening, and whoever finds it waits (waitOpen), except Deliver, which
// keeps what arrives meanwhile for openRoom to record. A room the broker
// refuses leaves the registry again, and its error is every waiter's.
func (h *Hub) openRoom(r *Room) error {
	hist, err := h.broker.Subscribe(r.id)
	if err != nil {
		err = fmt.Errorf("room %q: %w", r.id, err)
		s := h.roomShard(r.id)
		s.mu.Lock()
		if s.rooms[r.id] == r {
			delete(s.rooms, r.id)
			h.roomCount.Add(-1)
		}
		s.mu.Unlock()
		h.releaseCreators(r.creators)
		r.mu.Lock()
		r.closed, r.opening, r.openErr, r.pending = true, false, err, nil
		r.mu.Unlock()
		close(r.opened)
		return err
	}
	r.mu.Lock()
	r.epoch, r.lastSeq, r.trimmedSeq, r.shared = hist.Epoch, hist.Seq, hist.Trimmed, hist.SharedOrder
	for _, m := range hist.Messages {
		r.keepHistoryLocked(m)
	}
	for _, info := range hist.Members {
		r.rosterPutRemoteLocked(info)
	}
	// Nobody is a member yet (joiners wait for opened): what arrived
	// meanwhile only goes into the history and the roster.
	for _, p := range r.pending {
		switch {
		case p.message != nil && p.message.Seq > r.lastSeq:
			r.recordLocked(p.message)
		case p.presence != nil && p.presence.Seq > r.lastSeq:
			r.lastSeq = p.presence.Seq
			r.applyRemotePresenceLocked(*p.presence)
		}
	}
	r.opening, r.pending = false, nil
	r.mu.Unlock()
	close(r.opened)
	return nil
}

// GetRoom describes one room.
func (h *Hub) GetRoom(roomID string) (RoomInfo, error) {
	r, err := h.room(roomID)
	if err != nil {
		return RoomInfo{}, err
	}
	return r.info(), nil
}

// ListRooms returns up to limit rooms whose ids sort after the id after, in
// id order, and whether more follow.
func (h *Hub) ListRooms(after string, limit int) (page []RoomInfo, more bool) {
	var found []*Room
	for i := range h.rooms {
		s := &h.rooms[i]
		s.mu.RLock()
		for id, r := range s.rooms {
			if id > after {
				found = append(found, r)
			}
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(found, func(a, b *Room) int { return strings.Compare(a.id, b.id) })
	if len(found) > limit {
		found, more = found[:limit], true
	}
	page = make([]RoomInfo, 0, len(found))
	for _, r := range found {
		if r.waitOpen() == nil {
			page = append(page, r.info())
		}
	}
	return page, more
}

// DeleteResult says what DeleteRoom did to the room's members.
type DeleteResult struct {
	// Removed is how many members the room had; all of them are gone.
	Removed int
	// Disconnected is how many of them DeleteRoom closed with
	// CloseRoomDeleted: the raw members. Session members are told with a
	// room_deleted notice and stay connected, and a member whose
	// connection was already ending on its own is not counted.
	Disconnected int
}

// DeleteRoom removes a room. Raw members are closed with CloseRoomDeleted;
// session members get a room_deleted notice and stay connected.
func (h *Hub) DeleteRoom(roomID string) (DeleteResult, error) {
	if err := ValidateRoomID(roomID); err != nil {
		return DeleteResult{}, err
	}
	s := h.roomShard(roomID)
	var r *Room
	for {
		// Found open first, so that the Unsubscribe below follows the
		// room's Subscribe.
		if r = h.lookup(roomID); r == nil {
			return DeleteResult{}, errorf(ErrRoomNotFound, "room %q not found", roomID)
		}
		s.mu.Lock()
		if s.rooms[roomID] == r {
			break
		}
		s.mu.Unlock() // removed, and maybe made again, since: look again
	}
	delete(s.rooms, roomID)
	h.roomCount.Add(-1)
	r.mu.Lock()
	s.mu.Unlock()
	defer h.broker.Unsubscribe(roomID)

	r.closed = true
	r.roster = nil // nobody lists a deleted room's members; removing each would only cost
	r.dropHistoryLocked()
	h.releaseCreators(r.creators)
	const reason = "room deleted"
	members := slices.Clone(r.members)
	closed := departure{CauseRoomDeleted, CloseRoomDeleted, reason}
	var closing []*Client
	for _, m := range members {
		c := m.client
		d := departure{CauseRoomDeleted, 0, reason} // a session member stays connected
		c.mu.Lock()
		switch {
		case c.disconnected:
			d = c.departure // its connection is already ending on its own
		case !c.session:
			// Claimed here, under the room's lock, so that the event below
			// and the count tell what happens to the connection.
			c.claimDisconnectLocked(closed)
			d = closed
			closing = append(closing, c)
		}
		c.dropMemberLocked(m)
		c.mu.Unlock()
		r.removeLocked(m, d)
		if c.session {
			h.sendLocked(c, &Message{RoomID: r.id, Kind: Notice, Event: "room_deleted", Reason: reason, Time: time.Now()})
		}
	}
	r.emitLocked(Event{Kind: EventRoomDeleted})
	r.endWatchesLocked(nil)
	r.mu.Unlock()

	for _, c := range closing {
		h.finishDisconnect(c, closed, true)
	}
	return DeleteResult{Removed: len(members), Disconnected: len(closing)}, nil
}

// roomCapacity is the most members r admits: its own MaxClients, capped by
// the server-wide MaxClientsPerRoom; 0 is unlimited.
func (h *Hub) roomCapacity(r *Room) int {
	own, serverCap := r.options.MaxClients, h.maxClientsPerRoom
	switch {
	case serverCap == 0:
		return own
	case own == 0:
		return serverCap
	}
	return min(own, serverCap)
}

func (h *Hub) index(c *Client) {
	s := h.clientShard(c.info.ClientID)
	s.mu.Lock()
	s.clients[c.info.ClientID] = c
	s.mu.Unlock()
	if c.info.UserID == "" {
		return
	}
	u := h.clientShard(c.info.UserID)
	u.mu.Lock()
	set := u.byUser[c.info.UserID]
	if set == nil {
		set = make(map[*Client]struct{}, 1)
		u.byUser[c.info.UserID] = set
	}
	set[c] = struct{}{}
	u.mu.Unlock()
}

func (h *Hub) unindex(c *Client) {
	s := h.clientShard(c.info.ClientID)
	s.mu.Lock()
	delete(s.clients, c.info.ClientID)
	s.mu.Unlock()
	if c.info.UserID == "" {
		return
	}
	u := h.clientShard(c.info.UserID)
	u.mu.Lock()
	if set := u.byUser[c.info.UserID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(u.byUser, c.info.UserID)
		}
	}
	u.mu.Unlock()
}

// NodeName returns the name of this node, which its client ids carry.
func (h *Hub) NodeName() string { return h.node }

// client finds a client of this node. An id of another node is not found
// here, and the error names that node, so that a caller that routes by
// NodeOfClientID can tell a misrouted command from a client that left.
func (h *Hub) client(clientID string) (*Client, error) {
	if node, ok := NodeOfClientID(clientID); ok && node != h.node {
		return nil, errorf(ErrClientNotFound, "client %q not found: it belongs to node %q, not this node %q", clientID, node, h.node)
	}
	s := h.clientShard(clientID)
	s.mu.RLock()
	c := s.clients[clientID]
	s.mu.RUnlock()
	if c == nil {
		return nil, errorf(ErrClientNotFound, "client %q not found", clientID)
	}
	return c, nil
}

// Close refuses new rooms and members and ends every watch with ErrClosed.
// Closing the connections themselves is the transport's job.
func (h *Hub) Close() {
	h.closed.Store(true)
	for i := range h.rooms {
		s := &h.rooms[i]
		s.mu.RLock()
		for _, r := range s.rooms {
			r.mu.Lock()
			r.endWatchesLocked(ErrClosed) // an opening room has none
			r.mu.Unlock()
		}
		s.mu.RUnlock()
	}
}
