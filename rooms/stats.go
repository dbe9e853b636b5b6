package rooms

import "sync/atomic"

// Stats is what a Hub has counted, read by the metrics endpoint. Counters
// only grow; the rest are what holds now.
type Stats struct {
	Rooms   int // rooms on this node, opening ones included
	Clients int // connected clients, in rooms or not
	Bans    int // bans in force, expired ones not counted

	// PublishedByClients and PublishedByAdmin count the messages accepted by
	// Publish, by who sent them (a message without FromClientID is the
	// admin API's).
	PublishedByClients uint64
	PublishedByAdmin   uint64
	// Deliveries counts room messages handed to members' send queues on
	// this node, from this node's publishers and other nodes'.
	Deliveries uint64
	// QueuedBytes is what every member's send queue holds now, as the queue
	// bound counts it (payload plus 64 bytes a message).
	QueuedBytes int64
}

// counters are the Hub's running totals. Each is one atomic add per
// published message, never per recipient: Deliver adds its whole count at
// once, so the fan-out loop itself costs nothing more.
type counters struct {
	publishedByClients atomic.Uint64
	publishedByAdmin   atomic.Uint64
	deliveries         atomic.Uint64
}

func (c *counters) published(m *Message) {
	if m.FromClientID == "" {
		c.publishedByAdmin.Add(1)
	} else {
		c.publishedByClients.Add(1)
	}
}

// Stats returns the Hub's counters and gauges. It walks the client index
// and the bans a shard at a time, taking each member's queue lock briefly:
// meant for a scrape every few seconds, not for a hot path.
func (h *Hub) Stats() Stats {
	s := Stats{
		Rooms:              int(h.roomCount.Load()),
		PublishedByClients: h.counters.publishedByClients.Load(),
		PublishedByAdmin:   h.counters.publishedByAdmin.Load(),
		Deliveries:         h.counters.deliveries.Load(),
		Bans:               h.bans.inForce(),
	}
	var queues []*Queue
	for i := range h.clients {
		shard := &h.clients[i]
		shard.mu.RLock()
		s.Clients += len(shard.clients)
		queues = queues[:0]
		for _, c := range shard.clients {
			queues = append(queues, &c.queue)
		}
		shard.mu.RUnlock()
		// Not under the shard lock: a queue's lock is taken by the
		// fan-out, and the index lock must stay a leaf.
		for _, q := range queues {
			_, bytes := q.Len()
			s.QueuedBytes += int64(bytes)
		}
	}
	return s
}
