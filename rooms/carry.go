package rooms

import "sync"

// Carry makes this node carry roomID while nobody here is a member of it:
// a room whose members are all on other nodes, watched from this one. It
// is made here as if by joining if this node does not have it (the caller
// has checked that it exists on another node), and stays while release
// has not been called and the room has members on some node. Rooms made
// through the admin API are carried anyway; Carry only holds them.
func (h *Hub) Carry(roomID string) (release func(), err error) {
	if err := ValidateRoomID(roomID); err != nil {
		return nil, err
	}
	for {
		r, _, err := h.insertRoom(roomID, RoomOptions{Echo: true, HistorySize: -1}, true, nil)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			continue // removed since: make it again
		}
		r.carriers++
		r.mu.Unlock()
		return sync.OnceFunc(func() {
			r.mu.Lock()
			r.carriers--
			r.mu.Unlock()
			h.removeIfEmpty(r)
		}), nil
	}
}

// keptLocked says whether an auto-created room stays on this node: it has
// members here, or is carried and has members elsewhere. r.mu must be
// held.
func (r *Room) keptLocked() bool {
	return len(r.members) > 0 || (r.carriers > 0 && len(r.roster) > 0)
}
