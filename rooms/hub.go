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

// Config configures a Hub. The zero value is usable.
type Config struct {
	// MaxQueueBytes bounds each member's send queue; a member that would go
	// over it is closed with CloseSlowConsumer. 0 means 1 MiB.
	MaxQueueBytes int
	// MaxRooms bounds how many rooms exist at once; creating one more is
	// ErrLimit. 0 means unlimited.
	MaxRooms int
	// MaxClientsPerRoom caps every room, including those whose own
	// MaxClients is 0 (unlimited). 0 means no server-wide cap.
	MaxClientsPerRoom int
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
	maxQueueBytes     int
	maxRooms          int
	maxClientsPerRoom int
	roomCount         atomic.Int64
	broker            Broker
	seed              maphash.Seed
	closed            atomic.Bool

	rooms   [shardCount]roomShard
	clients [shardCount]clientShard // by client id, and by user id for KickUser
	bans    banStore                // see bans.go
}

// NewHub returns an empty Hub.
func NewHub(cfg Config) *Hub {
	h := &Hub{
		maxQueueBytes:     cfg.MaxQueueBytes,
		maxRooms:          cfg.MaxRooms,
		maxClientsPerRoom: cfg.MaxClientsPerRoom,
		seed:              maphash.MakeSeed(),
	}
	if h.maxQueueBytes <= 0 {
		h.maxQueueBytes = DefaultMaxQueueBytes
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
	return h
}

func (h *Hub) shardIndex(key string) int {
	return int(maphash.String(h.seed, key) % shardCount)
}

func (h *Hub) roomShard(roomID string) *roomShard { return &h.rooms[h.shardIndex(roomID)] }

func (h *Hub) clientShard(key string) *clientShard { return &h.clients[h.shardIndex(key)] }

func (h *Hub) lookup(roomID string) *Room {
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
	opts.Metadata = maps.Clone(opts.Metadata)
	r, created, err := h.insertRoom(roomID, opts, false)
	if err != nil {
		return RoomInfo{}, err
	}
	if !created {
		return RoomInfo{}, errorf(ErrRoomExists, "room %q already exists", roomID)
	}
	return r.info(), nil
}

// insertRoom adds a new room unless one with that id exists, which it then
// returns with created false.
func (h *Hub) insertRoom(roomID string, opts RoomOptions, auto bool) (r *Room, created bool, err error) {
	if h.closed.Load() {
		return nil, false, ErrClosed
	}
	s := h.roomShard(roomID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[roomID]; r != nil {
		return r, false, nil
	}
	if h.maxRooms > 0 && h.roomCount.Load() >= int64(h.maxRooms) {
		return nil, false, errorf(ErrLimit, "the server has its maximum of %d rooms", h.maxRooms)
	}
	// Subscribing under the shard lock keeps it ordered with the
	// Unsubscribe of an earlier room of the same id.
	if err := h.broker.Subscribe(roomID); err != nil {
		return nil, false, fmt.Errorf("room %q: %w", roomID, err)
	}
	r = &Room{hub: h, id: roomID, createdAt: time.Now(), options: opts, autoCreated: auto}
	s.rooms[roomID] = r
	h.roomCount.Add(1)
	return r, true, nil
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
	page = make([]RoomInfo, len(found))
	for i, r := range found {
		page[i] = r.info()
	}
	return page, more
}

// DeleteRoom removes a room and closes its members with CloseRoomDeleted. It
// returns how many members were closed.
func (h *Hub) DeleteRoom(roomID string) (int, error) {
	if err := ValidateRoomID(roomID); err != nil {
		return 0, err
	}
	s := h.roomShard(roomID)
	s.mu.Lock()
	r := s.rooms[roomID]
	if r == nil {
		s.mu.Unlock()
		return 0, errorf(ErrRoomNotFound, "room %q not found", roomID)
	}
	delete(s.rooms, roomID)
	h.roomCount.Add(-1)
	h.broker.Unsubscribe(roomID)
	r.mu.Lock()
	s.mu.Unlock()

	r.closed = true
	const reason = "room deleted"
	members := r.members
	r.members = nil
	var closing []*Client
	for _, c := range members {
		if c.left.CompareAndSwap(false, true) {
			closing = append(closing, c)
			r.emitLocked(Event{Kind: EventClientLeft, Client: c.info, CloseCode: CloseRoomDeleted, Reason: reason})
		}
	}
	r.emitLocked(Event{Kind: EventRoomDeleted})
	for w := range r.watchers {
		r.endWatchLocked(w, nil)
	}
	r.mu.Unlock()

	for _, c := range closing {
		h.unindex(c)
		c.queue.close()
		c.transport.Close(CloseRoomDeleted, reason)
	}
	return len(closing), nil
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

// Join makes a new client a member of the room. With autoCreate a missing
// room is made (and vanishes with its last member); without, a missing room
// is ErrRoomNotFound. A full room is ErrRoomFull; a user banned from the room
// is ErrBanned.
func (h *Hub) Join(roomID string, who ClientInfo, t Transport, autoCreate bool) (*Client, error) {
	if err := ValidateRoomID(roomID); err != nil {
		return nil, err
	}
	// Checked before a missing room is made for a user who may not join it.
	if err := h.checkBan(who.UserID, roomID); err != nil {
		return nil, err
	}
	who.ClientID = newClientID()
	who.RoomID = roomID
	if who.ConnectedAt.IsZero() {
		who.ConnectedAt = time.Now()
	}
	for {
		if h.closed.Load() {
			return nil, ErrClosed
		}
		r := h.lookup(roomID)
		if r == nil {
			if !autoCreate {
				return nil, errorf(ErrRoomNotFound, "room %q not found", roomID)
			}
			var err error
			if r, _, err = h.insertRoom(roomID, RoomOptions{Echo: true}, true); err != nil {
				return nil, err
			}
		}
		r.mu.Lock()
		if r.closed {
			// Deleted, or emptied and removed, since the lookup: look again.
			r.mu.Unlock()
			continue
		}
		if max := h.roomCapacity(r); max > 0 && len(r.members) >= max {
			r.mu.Unlock()
			return nil, errorf(ErrRoomFull, "room %q is full: it has its maximum of %d clients", roomID, max)
		}
		c := &Client{info: who, room: r, transport: t}
		c.queue.maxBytes = h.maxQueueBytes
		h.index(c)
		// Again, now that c is indexed: a ban set since the first check is
		// seen here, or else it was set after c was indexed and BanUser's
		// kick finds c (see BanUser). Refuse only if c is still unclaimed: a
		// kick that already found c in the index removes it as soon as r.mu
		// is free, so it must be a member by then.
		if err := h.checkBan(who.UserID, roomID); err != nil && c.left.CompareAndSwap(false, true) {
			empty := r.autoCreated && len(r.members) == 0
			r.mu.Unlock()
			c.queue.close()
			h.unindex(c)
			if empty {
				h.removeIfEmpty(r)
			}
			return nil, err
		}
		r.addLocked(c)
		r.mu.Unlock()
		return c, nil
	}
}

// Leave takes a client out of its room after its connection ended with code.
// It does nothing if the client already left (kicked, deleted, dropped).
func (h *Hub) Leave(c *Client, code CloseCode, reason string) {
	h.remove(c, code, reason, false)
}

// remove takes c out of its room and, with closeTransport, closes its
// connection. Only the first call for a client does anything.
func (h *Hub) remove(c *Client, code CloseCode, reason string, closeTransport bool) bool {
	if !c.left.CompareAndSwap(false, true) {
		return false
	}
	r := c.room
	r.mu.Lock()
	removed := !r.closed
	if removed {
		r.removeLocked(c)
		r.emitLocked(Event{Kind: EventClientLeft, Client: c.info, CloseCode: code, Reason: reason})
	}
	empty := r.autoCreated && len(r.members) == 0 && !r.closed
	r.mu.Unlock()

	h.unindex(c)
	c.queue.close()
	if closeTransport {
		c.transport.Close(code, reason)
	}
	if empty {
		h.removeIfEmpty(r)
	}
	return true
}

// removeIfEmpty drops an auto-created room whose last member left, unless
// someone joined in the meantime.
func (h *Hub) removeIfEmpty(r *Room) {
	s := h.roomShard(r.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.members) > 0 || s.rooms[r.id] != r {
		return
	}
	r.closed = true
	delete(s.rooms, r.id)
	h.roomCount.Add(-1)
	h.broker.Unsubscribe(r.id)
	r.emitLocked(Event{Kind: EventRoomDeleted, Reason: "last member left"})
	for w := range r.watchers {
		r.endWatchLocked(w, nil)
	}
}

// dropSlow removes a client whose queue overflowed. The caller must hold no
// room lock.
func (h *Hub) dropSlow(c *Client) {
	h.remove(c, CloseSlowConsumer, "slow consumer: send queue over its limit", true)
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

func (h *Hub) client(clientID string) (*Client, error) {
	s := h.clientShard(clientID)
	s.mu.RLock()
	c := s.clients[clientID]
	s.mu.RUnlock()
	if c == nil {
		return nil, errorf(ErrClientNotFound, "client %q not found", clientID)
	}
	return c, nil
}

// Clients returns up to limit members of a room whose ids sort after the id
// after, in id order, and whether more follow.
func (h *Hub) Clients(roomID, after string, limit int) (page []ClientInfo, more bool, err error) {
	r, err := h.room(roomID)
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	for _, c := range r.members {
		if c.info.ClientID > after {
			page = append(page, c.info)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(page, func(a, b ClientInfo) int { return strings.Compare(a.ClientID, b.ClientID) })
	if len(page) > limit {
		page, more = page[:limit], true
	}
	return page, more, nil
}

// KickClient removes one client from its room and closes it with
// CloseKicked and the reason.
func (h *Hub) KickClient(clientID, reason string) (ClientInfo, error) {
	c, err := h.client(clientID)
	if err != nil {
		return ClientInfo{}, err
	}
	if !h.remove(c, CloseKicked, reason, true) {
		return ClientInfo{}, errorf(ErrClientNotFound, "client %q not found (it already left)", clientID)
	}
	return c.info, nil
}

// KickUser closes every connection of a user, only those in roomID unless
// it is empty, and returns how many it closed.
func (h *Hub) KickUser(userID, roomID, reason string) (int, error) {
	if userID == "" {
		return 0, errorf(ErrInvalidArgument, "user_id is empty")
	}
	if roomID != "" {
		if err := ValidateRoomID(roomID); err != nil {
			return 0, err
		}
	}
	u := h.clientShard(userID)
	u.mu.RLock()
	var targets []*Client
	for c := range u.byUser[userID] {
		if roomID == "" || c.info.RoomID == roomID {
			targets = append(targets, c)
		}
	}
	u.mu.RUnlock()
	n := 0
	for _, c := range targets {
		if h.remove(c, CloseKicked, reason, true) {
			n++
		}
	}
	return n, nil
}

// Publish hands m to the broker, which delivers it to every member of its
// room. It returns how many members on this node it was handed to.
func (h *Hub) Publish(m *Message) (int, error) {
	if _, err := h.room(m.RoomID); err != nil {
		return 0, err
	}
	return h.broker.Publish(m)
}

// SendToClient queues m for one client only.
func (h *Hub) SendToClient(clientID string, m *Message) error {
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	m.RoomID = c.info.RoomID
	delivered, overflowed := c.enqueue(m)
	if overflowed {
		h.dropSlow(c)
	}
	if !delivered {
		return errorf(ErrClientNotFound, "client %q not found (it left)", clientID)
	}
	return nil
}

// Deliver hands an ordered message to the local members of its room, in the
// order Deliver is called for that room, and returns how many took it. It is
// the Broker's way in; it never waits for a member.
func (h *Hub) Deliver(m *Message) int {
	r := h.lookup(m.RoomID)
	if r == nil {
		return 0
	}
	var slow []*Client
	n := 0
	r.mu.Lock()
	for _, c := range r.members {
		if (!r.options.Echo && c.info.ClientID == m.FromClientID) || m.excludes(c.info.ClientID) {
			continue
		}
		delivered, overflowed := c.enqueue(m)
		if delivered {
			n++
		}
		if overflowed {
			slow = append(slow, c)
		}
	}
	r.emitLocked(Event{Kind: EventMessagePublished, Message: m, Recipients: n})
	r.mu.Unlock()
	for _, c := range slow {
		h.dropSlow(c)
	}
	return n
}

// Watch streams the room's events from now on.
func (h *Hub) Watch(roomID string) (*Watcher, error) {
	r, err := h.room(roomID)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errorf(ErrRoomNotFound, "room %q not found", roomID)
	}
	ch := make(chan Event, watcherBuffer)
	w := &Watcher{C: ch, ch: ch, room: r}
	if r.watchers == nil {
		r.watchers = make(map[*Watcher]struct{})
	}
	r.watchers[w] = struct{}{}
	return w, nil
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
			for w := range r.watchers {
				r.endWatchLocked(w, ErrClosed)
			}
			r.mu.Unlock()
		}
		s.mu.RUnlock()
	}
}
