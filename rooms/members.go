package rooms

import "time"

// Connect registers a new connection that is in no room yet. A session
// client (the client protocol) then joins rooms with JoinRoom; a raw one
// uses Join, which connects and joins in one step.
func (h *Hub) Connect(who ClientInfo, t Transport, session bool) (*Client, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	who.ClientID = newClientID(h.node)
	who.RoomID = ""
	if who.ConnectedAt.IsZero() {
		who.ConnectedAt = time.Now()
	}
	c := &Client{info: who, transport: t, session: session}
	c.queue.maxBytes = h.maxQueueBytes
	h.index(c)
	return c, nil
}

// Join connects a raw client and makes it a member of roomID, the one room
// it will ever be in; of opts, AutoCreate and Quotas apply. See JoinRoom
// for the errors.
func (h *Hub) Join(roomID string, who ClientInfo, t Transport, opts JoinOptions) (*Client, error) {
	if err := ValidateRoomID(roomID); err != nil {
		return nil, err
	}
	c, err := h.Connect(who, t, false)
	if err != nil {
		return nil, err
	}
	if _, err := h.JoinRoom(c, roomID, JoinOptions{AutoCreate: opts.AutoCreate, Quotas: opts.Quotas}); err != nil {
		h.disconnect(c, departure{CauseDropped, CloseAbnormal, ""}, false)
		return nil, err
	}
	return c, nil
}

// JoinOptions tune JoinRoom.
type JoinOptions struct {
	// AutoCreate makes a missing room (it vanishes with its last member);
	// without it a missing room is ErrRoomNotFound.
	AutoCreate bool
	// Quotas are what a room made by this join counts against; when one
	// is spent the join fails with ErrRoomQuota. Joining a room that
	// exists counts against nothing.
	Quotas []RoomQuota
	// Resume replays the messages after Since of Epoch before any live one,
	// or fails with ErrGap when the room's history cannot.
	Resume bool
	Since  uint64
	Epoch  string
	// ListMembers is how many members, the first by client id, JoinResult
	// lists at most (none in a room without presence); Members pages on.
	ListMembers int
	// Ack, if set, makes the frame queued for the client ahead of the
	// replay and of any live message.
	Ack func(JoinResult) *Message
}

// JoinResult is the state of a room as the joiner first sees it.
type JoinResult struct {
	Seq   uint64 // the room's latest message
	Epoch string
	// Presence is whether the room has presence (RoomOptions.NoPresence).
	Presence bool
	// MemberCount is how many members the room has, the joiner included.
	MemberCount int
	// Members are the first members by client id, at most
	// JoinOptions.ListMembers of them; MoreMembers says that more follow
	// the last of them.
	Members     []ClientInfo
	MoreMembers bool
	// Told is how many session members heard of the join (presence).
	Told     int
	Replayed int
}

// JoinRoom makes c a member of roomID. Errors: ErrInvalidRoomID,
// ErrRoomNotFound, ErrRoomFull, ErrBanned, ErrAlreadyJoined, ErrGap (with
// Resume), ErrRoomQuota (a quota of opts is spent), ErrLimit (no room may be
// made), ErrClosed (c is disconnected or the Hub closed).
func (h *Hub) JoinRoom(c *Client, roomID string, opts JoinOptions) (JoinResult, error) {
	if err := ValidateRoomID(roomID); err != nil {
		return JoinResult{}, err
	}
	// Checked before a missing room is made for a user who may not join it.
	if err := h.checkBan(c.info.UserID, roomID); err != nil {
		return JoinResult{}, err
	}
	for {
		if h.closed.Load() {
			return JoinResult{}, ErrClosed
		}
		r := h.lookup(roomID)
		if r == nil {
			if !opts.AutoCreate {
				return JoinResult{}, errorf(ErrRoomNotFound, "room %q not found", roomID)
			}
			var err error
			if r, _, err = h.insertRoom(roomID, RoomOptions{Echo: true, HistorySize: -1}, true, opts.Quotas); err != nil {
				return JoinResult{}, err
			}
		}
		r.mu.Lock()
		if r.closed {
			// Deleted, or emptied and removed, since the lookup: look again.
			r.mu.Unlock()
			continue
		}
		res, err := h.joinLocked(c, r, opts)
		empty := err != nil && r.autoCreated && len(r.members) == 0
		r.mu.Unlock()
		if empty {
			h.removeIfEmpty(r) // made for this join, which failed
		}
		return res, err
	}
}

// joinLocked does JoinRoom's work once r is found. r.mu must be held.
func (h *Hub) joinLocked(c *Client, r *Room, opts JoinOptions) (JoinResult, error) {
	// The roster counts the members on every node (presence.go).
	if max := h.roomCapacity(r); max > 0 && len(r.roster) >= max {
		return JoinResult{}, errorf(ErrRoomFull, "room %q is full: it has its maximum of %d clients", r.id, max)
	}
	var replay []*Message
	if opts.Resume {
		var err error
		if replay, err = r.replayLocked(opts.Since, opts.Epoch); err != nil {
			return JoinResult{}, err
		}
	}
	m := &member{client: c, room: r}
	// The ban is checked again under c.mu, which BanUser's kick also takes
	// to find the user's rooms: either this sees the ban, or the kick sees
	// this membership and removes it.
	c.mu.Lock()
	switch {
	case c.disconnected:
		c.mu.Unlock()
		return JoinResult{}, errorf(ErrClosed, "client %q has disconnected", c.info.ClientID)
	case c.memberOfLocked(r.id) != nil:
		c.mu.Unlock()
		return JoinResult{}, errorf(ErrAlreadyJoined, "already a member of room %q", r.id)
	}
	if err := h.checkBan(c.info.UserID, r.id); err != nil {
		c.mu.Unlock()
		return JoinResult{}, err
	}
	c.rooms = append(c.rooms, m)
	c.mu.Unlock()

	// Added first, so that the list includes the joiner where its id puts
	// it; nothing reaches c's queue from this room before the ack below, as
	// r.mu is held throughout.
	res := JoinResult{Seq: r.lastSeq, Epoch: r.epoch, Presence: !r.options.NoPresence, Replayed: len(replay)}
	res.Told = r.addLocked(m)
	res.MemberCount = len(r.roster)
	if res.Presence && opts.ListMembers > 0 {
		res.Members, res.MoreMembers = r.pageLocked("", opts.ListMembers)
	}
	if opts.Ack != nil {
		h.sendLocked(c, opts.Ack(res))
	}
	for _, msg := range replay {
		h.sendLocked(c, msg)
	}
	return res, nil
}

// LeaveRoom takes a session client out of one room and returns how many
// session members heard of it (presence).
func (h *Hub) LeaveRoom(c *Client, roomID string) (told int, err error) {
	m := c.in(roomID)
	if m == nil {
		return 0, errorf(ErrNotJoined, "not a member of room %q", roomID)
	}
	_, told = h.endMembership(m, departure{CauseLeft, 0, "left the room"})
	return told, nil
}

// Leave ends a client after its connection ended with code: it leaves every
// room. The transport says why (cause) from what it saw: the client's close
// frame, a lost connection, a rule the client broke, shutdown. It does
// nothing if the client was already removed (kicked, dropped, its raw room
// deleted), whose leave the Hub has already reported.
func (h *Hub) Leave(c *Client, cause LeaveCause, code CloseCode, reason string) {
	h.disconnect(c, departure{cause, code, reason}, false)
}

// disconnect takes c out of every room and the index and, with
// closeTransport, closes its connection with d's code. Only the first call
// does anything. The caller must hold no room lock.
func (h *Hub) disconnect(c *Client, d departure, closeTransport bool) bool {
	c.mu.Lock()
	claimed := c.claimDisconnectLocked(d)
	c.mu.Unlock()
	if !claimed {
		return false
	}
	h.finishDisconnect(c, d, closeTransport)
	return true
}

// claimDisconnectLocked marks c disconnected with d, unless it already is,
// and reports whether it did. c.mu must be held.
func (c *Client) claimDisconnectLocked(d departure) bool {
	if c.disconnected {
		return false
	}
	c.disconnected = true
	c.departure = d
	c.gone.Store(true)
	return true
}

// finishDisconnect does the rest of disconnecting c once it is claimed
// with d: its memberships end, it leaves the index, and with closeTransport
// its connection is closed. The caller must hold no room lock.
func (h *Hub) finishDisconnect(c *Client, d departure, closeTransport bool) {
	for _, m := range c.memberships() {
		h.removeMember(m, d)
	}
	h.unindex(c)
	c.queue.close()
	if closeTransport {
		c.transport.Close(d.code, d.reason)
	}
}

// removeMember ends one membership with d, or with the client's own
// departure if it has disconnected meanwhile (its connection ended, whatever
// the caller meant to do to this one room); it reports false if the
// membership had already ended. The caller must hold no room lock.
func (h *Hub) removeMember(m *member, d departure) bool {
	removed, _ := h.endMembership(m, d)
	return removed
}

// endMembership is removeMember that also says how many session members
// heard of the leave.
func (h *Hub) endMembership(m *member, d departure) (removed bool, told int) {
	r, c := m.room, m.client
	r.mu.Lock()
	if m.slot < 0 || r.closed {
		r.mu.Unlock()
		return false, 0
	}
	c.mu.Lock()
	if c.disconnected {
		d = c.departure
	}
	c.dropMemberLocked(m)
	c.mu.Unlock()
	told = r.removeLocked(m, d)
	empty := r.autoCreated && len(r.members) == 0
	r.mu.Unlock()
	if empty {
		h.removeIfEmpty(r)
	}
	return true, told
}

// removeIfEmpty drops an auto-created room whose last member left, unless
// someone joined in the meantime.
func (h *Hub) removeIfEmpty(r *Room) {
	s := h.roomShard(r.id)
	s.mu.Lock()
	r.mu.Lock()
	if r.closed || !r.autoCreated || r.keptLocked() || s.rooms[r.id] != r {
		r.mu.Unlock()
		s.mu.Unlock()
		return
	}
	r.closed = true
	r.dropHistoryLocked()
	h.releaseCreators(r.creators)
	delete(s.rooms, r.id)
	h.roomCount.Add(-1)
	r.emitLocked(Event{Kind: EventRoomDeleted, Reason: "last member left"})
	r.endWatchesLocked(nil)
	r.mu.Unlock()
	s.mu.Unlock()
	h.broker.Unsubscribe(r.id)
}

// dropSlow disconnects a client whose queue overflowed. The caller must
// hold no room lock.
func (h *Hub) dropSlow(c *Client) {
	h.disconnect(c, departure{CauseDropped, CloseSlowConsumer, "slow consumer: send queue over its limit"}, true)
}

// KickClient closes one connection with CloseKicked and the reason, taking
// it out of every room.
func (h *Hub) KickClient(clientID, reason string) (ClientInfo, error) {
	c, err := h.client(clientID)
	if err != nil {
		return ClientInfo{}, err
	}
	info := c.info
	if ms := c.memberships(); len(ms) > 0 {
		info.RoomID = ms[0].room.id
	}
	if !h.disconnect(c, departure{CauseKicked, CloseKicked, reason}, true) {
		return ClientInfo{}, errorf(ErrClientNotFound, "client %q not found (it already left)", clientID)
	}
	return info, nil
}

// KickUser removes a user from roomID, or from everywhere if it is empty,
// and returns how many connections it affected. Kicked raw connections, and
// session connections kicked from everywhere, are closed with CloseKicked;
// a session connection kicked from one room gets a "kicked" notice for it
// and keeps its other rooms.
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
	clients := make([]*Client, 0, len(u.byUser[userID]))
	for c := range u.byUser[userID] {
		clients = append(clients, c)
	}
	u.mu.RUnlock()
	n := 0
	for _, c := range clients {
		switch m := c.in(roomID); {
		case roomID == "" || (m != nil && !c.session):
			if h.disconnect(c, departure{CauseKicked, CloseKicked, reason}, true) {
				n++
			}
		case m != nil && h.removeMember(m, departure{CauseKicked, 0, reason}):
			h.send(c, &Message{RoomID: roomID, Kind: Notice, Event: "kicked", Reason: reason, Time: time.Now()})
			n++
		}
	}
	return n, nil
}

// Publish hands m to the broker, which orders it and delivers it to every
// member of its room, and returns its position and, when the broker knows,
// how many members on this node it was handed to.
func (h *Hub) Publish(m *Message) (Published, error) {
	if _, err := h.room(m.RoomID); err != nil {
		return Published{}, err
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	p, err := h.broker.Publish(m)
	if err == nil {
		h.counters.published(m)
	}
	return p, err
}

// SendToClient queues m for one client only.
func (h *Hub) SendToClient(clientID string, m *Message) error {
	c, err := h.client(clientID)
	if err != nil {
		return err
	}
	m.RoomID = ""
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	if !h.send(c, m) {
		return errorf(ErrClientNotFound, "client %q not found (it left)", clientID)
	}
	return nil
}

// Send queues m for c alone: a transport uses it for its own frames (acks,
// errors). It reports false if c is gone; a full queue drops c as slow.
func (h *Hub) Send(c *Client, m *Message) bool { return h.send(c, m) }

// sendLocked is send for callers holding a room lock: a client whose queue
// overflows is dropped from a new goroutine, since dropping takes room locks.
func (h *Hub) sendLocked(c *Client, m *Message) {
	if _, overflowed := c.enqueue(m); overflowed {
		go h.dropSlow(c)
	}
}

func (h *Hub) send(c *Client, m *Message) bool {
	delivered, overflowed := c.enqueue(m)
	if overflowed {
		h.dropSlow(c)
	}
	return delivered
}

// Deliver hands an ordered message to the local members of its room, in the
// order Deliver is called for that room, keeps it in the room's history,
// and returns how many members took it. It is the Broker's way in; it never
// waits for a member.
func (h *Hub) Deliver(m *Message) int {
	// Not waiting for an opening room: a MemoryBroker delivers holding the
	// lock that the room's Subscribe waits for.
	r := h.lookupOpening(m.RoomID)
	if r == nil {
		return 0
	}
	var slow []*Client
	n := 0
	r.mu.Lock()
	switch {
	case r.closed:
		// Gone since the lookup; a history kept now would never be freed.
		r.mu.Unlock()
		return 0
	case r.opening:
		r.pending = append(r.pending, pending{message: m}) // openRoom records what follows its history
		r.mu.Unlock()
		return 0
	case m.Seq <= r.lastSeq && m.Seq != 0:
		// Already here: a broker that reloads what it missed may hand
		// over a message twice.
		r.mu.Unlock()
		return 0
	}
	r.recordLocked(m)
	for _, mem := range r.members {
		c := mem.client
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
	h.counters.deliveries.Add(uint64(n))
	for _, c := range slow {
		h.dropSlow(c)
	}
	return n
}
