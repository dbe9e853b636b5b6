package rooms

import (
	"slices"
	"time"
)

// Presence across nodes. On one node the Hub tells a room's session
// members and watchers of a join or leave at once, under the room's lock.
// When a room's members sit on several nodes, a broker that is a
// PresenceAnnouncer takes that over: the Hub announces each join and leave
// of its own members, the broker puts the event in the room's order (among
// its messages) and hands it back to every node carrying the room, this
// one included, through DeliverPresence. Every node then tells its own
// session members and watchers, so each hears each event once, in the same
// place among the messages, wherever the member sits.
//
// Each node's roster of a room lists the members on every node: its own,
// added and removed at once, and the others', kept from the announcements
// (and, for a node that starts carrying a room, from RoomHistory.Members).
// Member counts, pages and a room's max_clients read it.

// PresenceEvent is one join or leave of a room, as nodes tell one another.
type PresenceEvent struct {
	RoomID string
	// Seq is the event's position among the room's messages, once the
	// broker has ordered it.
	Seq    uint64
	Joined bool // else left
	Client ClientInfo
	// How a member left (see Event).
	Cause  LeaveCause
	Code   CloseCode
	Reason string
	Time   time.Time
}

// PresenceAnnouncer is a Broker that carries presence between nodes.
// Announce is called with the room's lock held, in the order of the
// room's joins and leaves: it must keep that order and never block.
type PresenceAnnouncer interface {
	Announce(p PresenceEvent)
}

// pending is a message or presence event delivered while its room was
// opening.
type pending struct {
	message  *Message
	presence *PresenceEvent
}

// remoteMember stands for a member on another node in a roster: it has an
// identity and nothing to send to.
func remoteMember(r *Room, info ClientInfo) *member {
	info.RoomID = ""
	return &member{client: &Client{info: info}, room: r, slot: -1, remote: true}
}

// rosterPutRemoteLocked adds a member of another node to the roster unless
// it is listed. r.mu must be held.
func (r *Room) rosterPutRemoteLocked(info ClientInfo) {
	if node, _ := NodeOfClientID(info.ClientID); node == r.hub.node || r.closed {
		return // this node's own members are added as they join
	}
	if i, found := r.rosterSearch(info.ClientID); !found {
		r.roster = slices.Insert(r.roster, i, remoteMember(r, info))
	}
}

// applyRemotePresenceLocked keeps the roster in step with another node's
// join or leave, and reports whether it changed. r.mu must be held.
func (r *Room) applyRemotePresenceLocked(p PresenceEvent) bool {
	if node, _ := NodeOfClientID(p.Client.ClientID); node == r.hub.node || r.closed {
		return false
	}
	i, found := r.rosterSearch(p.Client.ClientID)
	switch {
	case p.Joined && !found:
		r.roster = slices.Insert(r.roster, i, remoteMember(r, p.Client))
		return true
	case !p.Joined && found:
		r.roster = slices.Delete(r.roster, i, i+1)
		return true
	}
	return false
}

// DeliverPresence takes a join or leave, as ordered by the broker, to this
// node: the roster, the room's session members (but the one that joined or
// left, and none in a room without presence) and its watchers. Like
// Deliver, it never waits for a member.
func (h *Hub) DeliverPresence(p PresenceEvent) {
	r := h.lookupOpening(p.RoomID)
	if r == nil {
		return
	}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return
	case r.opening:
		r.pending = append(r.pending, pending{presence: &p})
		r.mu.Unlock()
		return
	case p.Seq <= r.lastSeq && p.Seq != 0:
		r.mu.Unlock()
		return // already here
	}
	if p.Seq != 0 {
		r.lastSeq = p.Seq
	}
	// Another node's join that the roster already had (from the other
	// nodes' answers when this node started carrying the room) or leave
	// that it never had is news to nobody here.
	own := false
	if node, _ := NodeOfClientID(p.Client.ClientID); node == h.node {
		own = true
	}
	if r.applyRemotePresenceLocked(p) || own {
		r.tellPresenceLocked(p)
	}
	gone := r.autoCreated && !r.keptLocked()
	r.mu.Unlock()
	if gone {
		h.removeIfEmpty(r) // carried here, and its last member elsewhere left
	}
}

// tellPresenceLocked tells the room's local session members and watchers
// of a join or leave. r.mu must be held.
func (r *Room) tellPresenceLocked(p PresenceEvent) {
	info := p.Client
	info.RoomID = r.id
	event, kind := "left", EventClientLeft
	if p.Joined {
		event, kind = "joined", EventClientJoined
	}
	if r.sessions > 0 && !r.options.NoPresence {
		msg := &Message{RoomID: r.id, Kind: Presence, Subject: info, Event: event, Time: p.Time}
		for _, m := range r.members {
			if m.client.session && m.client.info.ClientID != info.ClientID {
				r.hub.sendLocked(m.client, msg)
			}
		}
	}
	e := Event{Kind: kind, Time: p.Time, Client: info}
	if !p.Joined {
		e.Cause, e.CloseCode, e.Reason = p.Cause, p.Code, p.Reason
	}
	r.emitLocked(e)
}

// PurgeNode removes the members of a node that is gone from every room's
// roster here, telling this node's session members and watchers that each
// left (dropped, 1006), once: a node that died cannot say so itself.
func (h *Hub) PurgeNode(node string) (removed int) {
	if node == h.node {
		return 0
	}
	var all []*Room
	for i := range h.rooms {
		s := &h.rooms[i]
		s.mu.RLock()
		for _, r := range s.rooms {
			all = append(all, r)
		}
		s.mu.RUnlock()
	}
	now := time.Now()
	for _, r := range all {
		r.mu.Lock()
		if !r.closed && !r.opening {
			var gone []ClientInfo
			for _, m := range r.roster {
				if n, _ := NodeOfClientID(m.client.info.ClientID); n == node {
					gone = append(gone, m.client.info)
				}
			}
			for _, info := range gone {
				p := PresenceEvent{RoomID: r.id, Client: info, Cause: CauseDropped, Code: CloseAbnormal,
					Reason: "its node " + node + " stopped answering", Time: now}
				if r.applyRemotePresenceLocked(p) {
					r.tellPresenceLocked(p)
					removed++
				}
			}
		}
		gone := r.autoCreated && !r.closed && !r.opening && !r.keptLocked()
		r.mu.Unlock()
		if gone {
			h.removeIfEmpty(r)
		}
	}
	return removed
}

// LocalClients returns up to limit of roomID's members on this node whose
// client ids sort after the id after, in id order, and whether more
// follow: the part of a room's members that this node answers for when
// nodes list a room's members together.
func (h *Hub) LocalClients(roomID, after string, limit int) (page []ClientInfo, more bool, err error) {
	if err := ValidateRoomID(roomID); err != nil {
		return nil, false, err
	}
	// Not waiting for a room that is opening: it has no member yet, and
	// the node opening it may be the one asking (two nodes opening one
	// room at once ask each other).
	r := h.lookupOpening(roomID)
	if r == nil {
		return nil, false, errorf(ErrRoomNotFound, "room %q not found", roomID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed && r.openErr != nil {
		return nil, false, errorf(ErrRoomNotFound, "room %q not found", roomID)
	}
	i, found := r.rosterSearch(after)
	if found {
		i++
	}
	for ; i < len(r.roster); i++ {
		if r.roster[i].remote {
			continue
		}
		if len(page) == limit {
			return page, true, nil
		}
		page = append(page, r.memberInfo(r.roster[i].client))
	}
	return page, false, nil
}

// ClientRooms describes one client of this node and lists the rooms it is
// a member of, for a command about it that came from another node (a ban
// of the client is a ban from each of its rooms).
func (h *Hub) ClientRooms(clientID string) (ClientInfo, []string, error) {
	c, err := h.client(clientID)
	if err != nil {
		return ClientInfo{}, nil, err
	}
	ids := c.RoomIDs()
	if c.gone.Load() || len(ids) == 0 {
		return ClientInfo{}, nil, errorf(ErrClientNotFound, "client %q not found (it already left)", clientID)
	}
	info := c.info
	info.RoomID = ids[0]
	return info, ids, nil
}

// RoomIDs lists the rooms this node carries.
func (h *Hub) RoomIDs() []string {
	var ids []string
	for i := range h.rooms {
		s := &h.rooms[i]
		s.mu.RLock()
		for id := range s.rooms {
			ids = append(ids, id)
		}
		s.mu.RUnlock()
	}
	return ids
}

// AdoptRemoteMembers lists members of another node in a room's roster
// again, telling this node's session members and watchers that each
// joined: the node was taken for dead (PurgeNode) and is back, its members
// still connected.
func (h *Hub) AdoptRemoteMembers(roomID string, members []ClientInfo) (added int) {
	r := h.lookup(roomID)
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, info := range members {
		p := PresenceEvent{RoomID: roomID, Joined: true, Client: info, Time: now}
		if r.applyRemotePresenceLocked(p) {
			r.tellPresenceLocked(p)
			added++
		}
	}
	return added
}

// RestartHistory starts every room's history afresh under a new epoch,
// after the broker's own history was lost (the stream was made anew and
// its positions start over): every client is disconnected with
// CloseServiceRestart, since what each has seen is numbered in the old
// order, and a reconnecting client that resumes hears of the gap.
func (h *Hub) RestartHistory(epoch string) (disconnected int) {
	var all []*Client
	for i := range h.clients {
		s := &h.clients[i]
		s.mu.RLock()
		for _, c := range s.clients {
			all = append(all, c)
		}
		s.mu.RUnlock()
	}
	d := departure{CauseDropped, CloseServiceRestart, "the cluster's message history restarted: reconnect"}
	for _, c := range all {
		if h.disconnect(c, d, true) {
			disconnected++
		}
	}
	for i := range h.rooms {
		s := &h.rooms[i]
		s.mu.RLock()
		for _, r := range s.rooms {
			r.mu.Lock()
			r.dropHistoryLocked()
			r.epoch, r.lastSeq, r.trimmedSeq = epoch, 0, 0
			r.mu.Unlock()
		}
		s.mu.RUnlock()
	}
	return disconnected
}
