package wsedge

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"roomd/rooms"
)

// Stats is what an Edge has counted since it started, read by the metrics
// endpoint. Every counter moves once per connection or refusal, never per
// message.
type Stats struct {
	OpenRaw, OpenSession int64 // upgraded connections open now, by protocol
	Opened               uint64
	// Closed counts finished connections by the close code they ended with
	// (1006 for a dropped one).
	Closed map[rooms.CloseCode]uint64
	// Refused counts upgrades turned away, by HTTP status; one refused
	// after the upgrade (so that a page can read why) counts under its
	// close code (4401, 4403, 1008); a socket closed unanswered under
	// ProxyProtocol (not from a trusted proxy, or a bad header) as 400.
	Refused map[int]uint64
}

// stats are an Edge's running totals.
type stats struct {
	openRaw, openSession atomic.Int64
	opened               atomic.Uint64

	mu      sync.Mutex
	closed  map[rooms.CloseCode]uint64
	refused map[int]uint64
}

func (s *stats) refusal(status int) {
	s.mu.Lock()
	if s.refused == nil {
		s.refused = make(map[int]uint64)
	}
	s.refused[status]++
	s.mu.Unlock()
}

func (s *stats) open(session bool) {
	s.opened.Add(1)
	if session {
		s.openSession.Add(1)
	} else {
		s.openRaw.Add(1)
	}
}

func (s *stats) close(session bool, code rooms.CloseCode) {
	if session {
		s.openSession.Add(-1)
	} else {
		s.openRaw.Add(-1)
	}
	s.mu.Lock()
	if s.closed == nil {
		s.closed = make(map[rooms.CloseCode]uint64)
	}
	s.closed[code]++
	s.mu.Unlock()
}

// Stats returns the Edge's counters.
func (e *Edge) Stats() Stats {
	s := &e.stats
	out := Stats{OpenRaw: s.openRaw.Load(), OpenSession: s.openSession.Load(), Opened: s.opened.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	out.Closed = make(map[rooms.CloseCode]uint64, len(s.closed))
	for code, n := range s.closed {
		out.Closed[code] = n
	}
	out.Refused = make(map[int]uint64, len(s.refused))
	for status, n := range s.refused {
		out.Refused[status] = n
	}
	return out
}

// refuse answers an upgrade request with an HTTP error, and counts it.
func (e *Edge) refuse(w http.ResponseWriter, message string, status int) {
	e.stats.refusal(status)
	http.Error(w, message, status)
}

// latencySampleEvery is how many of a connection's write rounds go by
// between two that report their latency (Config.WriteLatency): one in 64
// keeps the cost off the per-delivery path and still gives a busy node
// thousands of samples a second.
const latencySampleEvery = 64

// sampleLatency reports, on one write round in latencySampleEvery, how long
// the oldest room message in batch waited from its publication until this
// round took it for the socket.
func (c *conn) sampleLatency(batch []*rooms.Message) {
	c.rounds++
	if c.rounds%latencySampleEvery != 0 || c.edge.cfg.WriteLatency == nil {
		return
	}
	for _, m := range batch {
		if m.Kind <= rooms.JSON && !m.Time.IsZero() {
			c.edge.cfg.WriteLatency(time.Since(m.Time))
			return
		}
	}
}
