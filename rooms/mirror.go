package rooms

import (
	"errors"
	"maps"
	"time"
)

// In cluster mode the rooms made through the admin API and the bans live in
// stores that every node shares (package rooms/cluster). A store checks
// what it records as the Hub would, and then makes every node's Hub hold
// it with the methods below; joins keep looking only at the Hub's memory.

// CheckRoomOptions reports why CreateRoom would refuse to make roomID with
// opts, or nil, so that a shared store of rooms refuses what the Hub would
// before it records it.
func CheckRoomOptions(roomID string, opts RoomOptions) error {
	if err := ValidateRoomID(roomID); err != nil {
		return err
	}
	if opts.MaxClients < 0 {
		return errorf(ErrInvalidArgument, "max_clients must not be negative")
	}
	if opts.HistorySize > MaxHistorySize {
		return errorf(ErrInvalidArgument, "history_size is %d; at most %d", opts.HistorySize, MaxHistorySize)
	}
	return nil
}

// MirrorRoom makes roomID a room of this Hub as CreateRoom makes it, with
// the options and creation time that a shared store of rooms holds for
// it, and returns it. A room of that id made by a client joining (a join on
// this node ran ahead of the store) becomes that room, keeping its members,
// with opts from now on; it no longer counts against its creators' quotas.
// A room already made with that creation time is left as it is. A made
// room with another creation time was deleted and made again while this
// Hub was not looking: it is deleted as DeleteRoom deletes it, and made
// afresh.
//
// Errors are CreateRoom's, and the broker's when it cannot carry the room.
func (h *Hub) MirrorRoom(roomID string, opts RoomOptions, createdAt time.Time) (RoomInfo, error) {
	if err := CheckRoomOptions(roomID, opts); err != nil {
		return RoomInfo{}, err
	}
	opts.Metadata = maps.Clone(opts.Metadata)
	if opts.HistorySize < 0 {
		opts.HistorySize = h.defaultHistory
	}
	createdAt = createdAt.Round(0) // a wall time, as a store gives it back
	for {
		r, created, err := h.insertRoom(roomID, opts, false, nil)
		if err != nil {
			return RoomInfo{}, err
		}
		r.mu.Lock()
		switch {
		case created:
			r.createdAt = createdAt
			r.mu.Unlock()
			return r.info(), nil
		case r.closed:
			r.mu.Unlock() // gone since insertRoom found it: look again
		case !r.autoCreated:
			same := r.createdAt.Equal(createdAt)
			r.mu.Unlock()
			if same {
				return r.info(), nil
			}
			if _, err := h.DeleteRoom(roomID); err != nil && !errors.Is(err, ErrRoomNotFound) {
				return RoomInfo{}, err
			}
		case len(r.members) == 0:
			// An auto-created room without members is on its way out:
			// its last member left, or the join that made it failed, or
			// is about to add itself and will look again once the room
			// is closed. Whoever saw it empty calls removeIfEmpty, which
			// does not look at autoCreated, so it must not become a
			// made room now: let it go and make the room afresh.
			r.mu.Unlock()
			h.removeIfEmpty(r)
		default:
			// A leave from now on sees it made and keeps it. A leave
			// that saw it empty before these members joined may still
			// be on its way to removeIfEmpty, though: should the room
			// empty again before that runs, it goes, made or not, until
			// removeIfEmpty also checks autoCreated (see
			// TestMirrorRoomRacingJoinsAndLeaves).
			r.autoCreated = false
			r.options = opts
			r.createdAt = createdAt
			r.fitHistoryLocked()
			creators := r.creators
			r.creators = nil
			r.mu.Unlock()
			h.releaseCreators(creators)
			return r.info(), nil
		}
	}
}

// fitHistoryLocked drops the oldest kept messages beyond a HistorySize that
// has just become smaller. r.mu must be held.
func (r *Room) fitHistoryLocked() {
	if r.options.HistorySize <= 0 {
		r.dropHistoryLocked()
		return
	}
	for r.history.n > r.options.HistorySize {
		r.evictOldestLocked()
	}
}

// ApplyBan stores a ban that a shared store of bans holds, replacing the
// user's ban from the same room, and kicks the user's connections there as
// BanUser does (CloseKicked and the ban's reason), returning how many it
// affected. A ban that has expired is ignored.
func (h *Hub) ApplyBan(b Ban) (kicked int, err error) {
	if b.UserID == "" {
		return 0, errorf(ErrInvalidArgument, "user_id is empty")
	}
	if b.RoomID != "" {
		if err := ValidateRoomID(b.RoomID); err != nil {
			return 0, err
		}
	}
	if b.expired(h.bans.clock()) {
		return 0, nil
	}
	// Ban first, kick second, as BanUser does.
	h.putBan(b)
	return h.KickUser(b.UserID, b.RoomID, b.Reason)
}

// LiftBan removes the user's ban from roomID ("" for the ban from every
// room), as a shared store of bans lifted it, and reports whether one was
// in force.
func (h *Hub) LiftBan(userID, roomID string) bool {
	s := h.banShard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredLocked(userID, h.bans.clock())
	bans := s.byUser[userID]
	_, found := bans[roomID]
	delete(bans, roomID)
	if len(bans) == 0 {
		delete(s.byUser, userID)
	}
	return found
}
