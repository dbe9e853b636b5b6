package rooms

import (
	"slices"
	"strings"
)

// A room's roster is its members sorted by client id, kept beside the
// member slice (which is in no order, for the fan-out) so that a page of
// members costs a binary search and a copy of the page, whatever the size
// of the room. Keeping it costs a join or leave one binary search and a
// memmove of at most the room's member pointers (8 bytes each).

// rosterSearch finds clientID's place in the roster. r.mu must be held.
func (r *Room) rosterSearch(clientID string) (int, bool) {
	return slices.BinarySearchFunc(r.roster, clientID, func(m *member, id string) int {
		return strings.Compare(m.client.info.ClientID, id)
	})
}

// rosterAddLocked puts a new member in the roster. r.mu must be held.
func (r *Room) rosterAddLocked(m *member) {
	i, _ := r.rosterSearch(m.client.info.ClientID)
	r.roster = slices.Insert(r.roster, i, m)
}

// rosterRemoveLocked takes a member out of the roster; a deleted room has
// dropped its roster whole. r.mu must be held.
func (r *Room) rosterRemoveLocked(m *member) {
	if r.closed {
		return
	}
	if i, found := r.rosterSearch(m.client.info.ClientID); found {
		r.roster = slices.Delete(r.roster, i, i+1)
	}
	if cap(r.roster) > 64 && len(r.roster) < cap(r.roster)/4 {
		r.roster = slices.Clone(r.roster)
	}
}

// pageLocked lists up to limit members whose client ids sort after the id
// after, in id order, and reports whether more follow. r.mu must be held.
func (r *Room) pageLocked(after string, limit int) (page []ClientInfo, more bool) {
	i, found := r.rosterSearch(after)
	if found {
		i++
	}
	end := i + min(max(limit, 0), len(r.roster)-i)
	page = make([]ClientInfo, 0, end-i)
	for _, m := range r.roster[i:end] {
		page = append(page, r.memberInfo(m.client))
	}
	return page, end < len(r.roster)
}

// MemberPage is part of a room's member list, in client id order.
type MemberPage struct {
	// Count is how many members the room has.
	Count   int
	Members []ClientInfo
	// More says that members follow the last of Members: ask again with
	// its client id.
	More bool
}

// Members lists, for c, up to limit members of roomID whose client ids
// sort after the id after, in id order. c must be a member (ErrNotJoined
// otherwise) of a room with presence (ErrNoPresence otherwise). With ack,
// the frame it makes of the page is queued for c under the room's lock, in
// order with the room's presence events: the page is the list as it stood
// at that point of c's stream.
func (h *Hub) Members(c *Client, roomID, after string, limit int, ack func(MemberPage) *Message) (MemberPage, error) {
	m := c.in(roomID)
	if m == nil {
		return MemberPage{}, errorf(ErrNotJoined, "not a member of room %q", roomID)
	}
	r := m.room
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case m.slot < 0 || r.closed:
		return MemberPage{}, errorf(ErrNotJoined, "not a member of room %q", roomID)
	case r.options.NoPresence:
		return MemberPage{}, errorf(ErrNoPresence, "room %q has presence off: only its member count is known", roomID)
	}
	page := MemberPage{Count: len(r.roster)}
	page.Members, page.More = r.pageLocked(after, limit)
	if ack != nil {
		h.sendLocked(c, ack(page))
	}
	return page, nil
}

// Clients returns up to limit members of a room whose ids sort after the id
// after, in id order, and whether more follow.
func (h *Hub) Clients(roomID, after string, limit int) (page []ClientInfo, more bool, err error) {
	r, err := h.room(roomID)
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	page, more = r.pageLocked(after, limit)
	r.mu.Unlock()
	return page, more, nil
}
