package cluster

import "github.com/nats-io/nats.go"

// Stats is what a node's part in the cluster has counted, for metrics.
type Stats struct {
	// Connected is whether the NATS connection is up now; Reconnects how
	// often it came back after a loss.
	Connected  bool
	Reconnects uint64
	// What went over the NATS connection, in messages and bytes.
	InMsgs, OutMsgs, InBytes, OutBytes uint64
	// Nodes is how many nodes this one hears, itself included.
	Nodes int
	// Recovered counts room messages this node missed live and read back
	// from the stream; PresenceDropped the joins and leaves it could not
	// announce (NATS was away too long).
	Recovered, PresenceDropped uint64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	st := n.nc.Stats()
	s := Stats{
		Connected:  n.Connected(),
		Reconnects: st.Reconnects,
		InMsgs:     st.InMsgs, OutMsgs: st.OutMsgs, InBytes: st.InBytes, OutBytes: st.OutBytes,
	}
	if n.live != nil {
		s.Nodes = len(n.live.Names())
	}
	if n.broker != nil {
		s.Recovered = n.broker.recovered.Load()
		s.PresenceDropped = n.broker.presenceDropped.Load()
	}
	return s
}

// Connected reports whether the NATS connection is up: while it is not,
// this node cannot publish, and is not ready for new clients.
func (n *Node) Connected() bool { return n.nc.Status() == nats.CONNECTED }
