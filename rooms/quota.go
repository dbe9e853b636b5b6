package rooms

import "sync"

// RoomQuota bounds the rooms one creator (an address, a user) has made by
// joining with AutoCreate and that still exist, so that no one creator can
// take every room the server allows. A room counts against each quota of
// the join that made it until it vanishes (its last member leaves, or it is
// deleted). Rooms made with CreateRoom count against no one.
type RoomQuota struct {
	// Creator names who is counted, as a refusal shows it: "address
	// 192.0.2.1", `user "ann"`. Kinds of creator must not share names.
	Creator string
	// Max is how many such rooms Creator may have at once; 0 is unlimited.
	Max int
}

// creatorShard counts the rooms each creator has made. Its lock is a leaf.
type creatorShard struct {
	mu   sync.Mutex
	made map[string]int
}

// chargeCreators counts one more room against each quota, or none of them
// and returns an ErrRoomQuota error when one is spent. It returns the
// creators charged, for releaseCreators once the room is gone.
func (h *Hub) chargeCreators(quotas []RoomQuota) ([]string, error) {
	var charged []string
	for _, q := range quotas {
		if q.Max <= 0 {
			continue
		}
		s := &h.creators[h.shardIndex(q.Creator)]
		s.mu.Lock()
		n := s.made[q.Creator]
		if n >= q.Max {
			s.mu.Unlock()
			h.releaseCreators(charged)
			return nil, errorf(ErrRoomQuota, "%s has made %d rooms that still exist, its limit: join an existing room, or make one after one of those empties", q.Creator, n)
		}
		if s.made == nil {
			s.made = make(map[string]int)
		}
		s.made[q.Creator] = n + 1
		s.mu.Unlock()
		charged = append(charged, q.Creator)
	}
	return charged, nil
}

// releaseCreators takes back what chargeCreators counted.
func (h *Hub) releaseCreators(creators []string) {
	for _, c := range creators {
		s := &h.creators[h.shardIndex(c)]
		s.mu.Lock()
		if s.made[c]--; s.made[c] <= 0 {
			delete(s.made, c)
		}
		s.mu.Unlock()
	}
}
