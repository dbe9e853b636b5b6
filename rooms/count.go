package rooms

// ClientCount returns how many clients are connected to this node, in
// rooms or not. It reads every shard of the client index under its read
// lock, one at a time: cheap for an occasional caller (the admin API's
// ListNodes), and it takes no lock that the fan-out holds.
func (h *Hub) ClientCount() int {
	n := 0
	for i := range h.clients {
		s := &h.clients[i]
		s.mu.RLock()
		n += len(s.clients)
		s.mu.RUnlock()
	}
	return n
}
