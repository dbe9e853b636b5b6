package rooms

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MaxBanDuration is the longest ban the Hub accepts.
const MaxBanDuration = 365 * 24 * time.Hour

// Ban keeps a user out of one room, or out of every room, until ExpiresAt.
type Ban struct {
	UserID    string
	RoomID    string // empty: every room
	Reason    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

func (b Ban) expired(now time.Time) bool { return !now.Before(b.ExpiresAt) }

// banStore holds the bans of a Hub, sharded by user id like the client
// index. Its zero value is usable. There is at most one ban per user and room
// ("" standing for every room); banning again replaces it. Expired bans are
// dropped lazily, when a lookup, a listing or a new ban in the same shard
// comes across them: no timer or goroutine runs per ban.
type banStore struct {
	now    func() time.Time // nil means time.Now; tests set it
	shards [shardCount]banShard
}

// banShard's lock is a leaf, like the client index's: it may be taken with
// a room lock held, and nothing is taken while it is held.
type banShard struct {
	mu     sync.Mutex
	byUser map[string]map[string]Ban // user id -> room id ("" = every room) -> ban
}

func (s *banStore) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (h *Hub) banShard(userID string) *banShard { return &h.bans.shards[h.shardIndex(userID)] }

// dropExpiredLocked removes the user's expired bans. s.mu must be held.
func (s *banShard) dropExpiredLocked(userID string, now time.Time) {
	bans := s.byUser[userID]
	for roomID, b := range bans {
		if b.expired(now) {
			delete(bans, roomID)
		}
	}
	if len(bans) == 0 {
		delete(s.byUser, userID)
	}
}

// checkBan returns an ErrBanned error if userID may not join roomID now. Of
// a ban from the room and one from every room, it names the one that ends
// later.
func (h *Hub) checkBan(userID, roomID string) error {
	if userID == "" {
		return nil // bans are by user; a connection without one has none
	}
	s := h.banShard(userID)
	s.mu.Lock()
	// Read the clock under the lock: a ban stored after this point is
	// ordered after the lookup below (tests rely on the clock as the sign
	// that the check is under way and holds the shard).
	now := h.bans.clock()
	s.dropExpiredLocked(userID, now)
	bans := s.byUser[userID]
	ban, found := bans[roomID]
	if all, ok := bans[""]; ok && (!found || all.ExpiresAt.After(ban.ExpiresAt)) {
		ban, found = all, true
	}
	s.mu.Unlock()
	if !found {
		return nil
	}
	where := "every room"
	if ban.RoomID != "" {
		where = fmt.Sprintf("room %q", ban.RoomID)
	}
	msg := fmt.Sprintf("user %q is banned from %s until %s", userID, where, ban.ExpiresAt.UTC().Format(time.RFC3339))
	if ban.Reason != "" {
		msg += ": " + ban.Reason
	}
	return errorf(ErrBanned, "%s", msg)
}

// putBan stores b, replacing the user's ban from the same room, and drops
// the expired bans of its shard on the way.
func (h *Hub) putBan(b Ban) {
	s := h.banShard(b.UserID)
	s.mu.Lock()
	defer s.mu.Unlock()
	for userID := range s.byUser {
		s.dropExpiredLocked(userID, b.CreatedAt)
	}
	if s.byUser == nil {
		s.byUser = make(map[string]map[string]Ban)
	}
	bans := s.byUser[b.UserID]
	if bans == nil {
		bans = make(map[string]Ban, 1)
		s.byUser[b.UserID] = bans
	}
	bans[b.RoomID] = b
}

// newBan checks a ban's duration and makes it, starting now.
func (h *Hub) newBan(userID, roomID, reason string, d time.Duration) (Ban, error) {
	return NewBan(userID, roomID, reason, d, h.bans.clock())
}

// NewBan checks a ban and makes it, starting at now: a user id, a room id
// that is valid or empty (every room), and a duration of at most
// MaxBanDuration.
func NewBan(userID, roomID, reason string, d time.Duration, now time.Time) (Ban, error) {
	if userID == "" {
		return Ban{}, errorf(ErrInvalidArgument, "user_id is empty")
	}
	if roomID != "" {
		if err := ValidateRoomID(roomID); err != nil {
			return Ban{}, err
		}
	}
	if d <= 0 || d > MaxBanDuration {
		return Ban{}, errorf(ErrInvalidArgument, "a ban lasts from 1 second to %v, got %v", MaxBanDuration, d)
	}
	return Ban{UserID: userID, RoomID: roomID, Reason: reason, CreatedAt: now, ExpiresAt: now.Add(d)}, nil
}

// BanUser keeps userID out of roomID (out of every room if roomID is empty)
// for d, replacing an earlier ban from the same room, and kicks the user's
// connections there as KickUser does. It returns the ban and how many
// connections it closed.
func (h *Hub) BanUser(userID, roomID, reason string, d time.Duration) (Ban, int, error) {
	if userID == "" {
		return Ban{}, 0, errorf(ErrInvalidArgument, "user_id is empty")
	}
	if roomID != "" {
		if err := ValidateRoomID(roomID); err != nil {
			return Ban{}, 0, err
		}
	}
	b, err := h.newBan(userID, roomID, reason, d)
	if err != nil {
		return Ban{}, 0, err
	}
	// Ban first, kick second: Join indexes a client before it checks for a
	// ban, so a join racing with this either sees the ban or is indexed in
	// time for KickUser to find and close it.
	h.putBan(b)
	n, err := h.KickUser(userID, roomID, reason)
	return b, n, err
}

// BanClient kicks one client as KickClient does and keeps its user out of
// the client's rooms for d (a raw client has one room; a session client may
// have several, and gets one ban for each; the first is returned). The
// user's other connections in those rooms are kicked too: they are banned
// from them as well. A client without a user id cannot be banned
// (ErrNoUserID) and is left alone.
func (h *Hub) BanClient(clientID, reason string, d time.Duration) (ClientInfo, Ban, error) {
	c, err := h.client(clientID)
	if err != nil {
		return ClientInfo{}, Ban{}, err
	}
	if c.info.UserID == "" {
		return ClientInfo{}, Ban{}, errorf(ErrNoUserID, "client %q has no user id to ban; kick it without a ban", clientID)
	}
	memberships := c.memberships()
	if c.gone.Load() || len(memberships) == 0 {
		return ClientInfo{}, Ban{}, errorf(ErrClientNotFound, "client %q not found (it already left)", clientID)
	}
	var bans []Ban
	for _, m := range memberships {
		b, err := h.newBan(c.info.UserID, m.room.id, reason, d)
		if err != nil {
			return ClientInfo{}, Ban{}, err
		}
		bans = append(bans, b)
	}
	for _, b := range bans {
		h.putBan(b)
	}
	info := c.info
	info.RoomID = bans[0].RoomID
	// If the client leaves on its own meanwhile, the ban still stands: the
	// call did what it was asked.
	h.disconnect(c, departure{CauseKicked, CloseKicked, reason}, true)
	for _, b := range bans {
		if _, err := h.KickUser(c.info.UserID, b.RoomID, reason); err != nil {
			return ClientInfo{}, Ban{}, err
		}
	}
	return info, bans[0], nil
}

// Bans returns up to limit bans in force, ordered by user id and then room
// id, that sort after (afterUser, afterRoom), and whether more follow.
func (h *Hub) Bans(afterUser, afterRoom string, limit int) (page []Ban, more bool) {
	now := h.bans.clock()
	for i := range h.bans.shards {
		s := &h.bans.shards[i]
		s.mu.Lock()
		for userID, bans := range s.byUser {
			s.dropExpiredLocked(userID, now)
			if userID < afterUser {
				continue
			}
			for roomID, b := range bans {
				if userID > afterUser || roomID > afterRoom {
					page = append(page, b)
				}
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(page, compareBans)
	if len(page) > limit {
		page, more = page[:limit], true
	}
	return page, more
}

func compareBans(a, b Ban) int {
	return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.RoomID, b.RoomID))
}

// Unban lifts the bans of a user and returns them, ordered by room id:
// every ban, or with roomIDs only the bans from those rooms ("" standing
// for the ban from every room). None of them in force is ErrBanNotFound.
func (h *Hub) Unban(userID string, roomIDs ...string) ([]Ban, error) {
	if userID == "" {
		return nil, errorf(ErrInvalidArgument, "user_id is empty")
	}
	now := h.bans.clock()
	s := h.banShard(userID)
	s.mu.Lock()
	s.dropExpiredLocked(userID, now)
	var lifted []Ban
	bans := s.byUser[userID]
	for roomID, b := range bans {
		if len(roomIDs) == 0 || slices.Contains(roomIDs, roomID) {
			lifted = append(lifted, b)
			delete(bans, roomID)
		}
	}
	if len(bans) == 0 {
		delete(s.byUser, userID)
	}
	s.mu.Unlock()
	if len(lifted) == 0 {
		return nil, NoBanError(userID, roomIDs...)
	}
	slices.SortFunc(lifted, compareBans)
	return lifted, nil
}

// NoBanError is the ErrBanNotFound of Unban(userID, roomIDs...): nothing
// to lift. (Callers give one room id at most; the message names the first.)
func NoBanError(userID string, roomIDs ...string) error {
	switch {
	case len(roomIDs) == 0:
		return errorf(ErrBanNotFound, "user %q has no ban in force", userID)
	case len(roomIDs) == 1 && roomIDs[0] == "":
		return errorf(ErrBanNotFound, "user %q has no ban from every room in force", userID)
	}
	return errorf(ErrBanNotFound, "user %q has no ban from room %q in force", userID, roomIDs[0])
}

// inForce counts the bans that have not expired, a shard at a time.
func (s *banStore) inForce() int {
	now := s.clock()
	n := 0
	for i := range s.shards {
		shard := &s.shards[i]
		shard.mu.Lock()
		for _, bans := range shard.byUser {
			for _, b := range bans {
				if !b.expired(now) {
					n++
				}
			}
		}
		shard.mu.Unlock()
	}
	return n
}
