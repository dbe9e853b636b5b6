// Package rooms owns roomd's rooms: the registry, membership, per-member send
// queues and fan-out. It knows nothing about WebSocket or gRPC: a transport
// (package wsedge) attaches each connection as a Client through the Transport
// interface, and the admin API calls the Hub.
//
// # Fan-out
//
// A publish goes through a Broker, which orders and numbers the messages of a
// room and hands them to Hub.Deliver on every node with members in the room.
// Today the only Broker is MemoryBroker (one process); a cross-node bus
// implements the same interface. Deliver appends the message to each member's
// byte-bounded Queue and wakes the member's transport; it never writes to a
// socket and never waits for a member. A member whose queue would overflow is
// removed and closed with CloseSlowConsumer, so nobody else sees a delay.
//
// # Locks
//
// Lock order: MemoryBroker topic lock, then registry shard lock, then
// Room.mu, then Queue.mu. Client index, user index and ban shard locks are
// leaves: nothing else is taken while they are held. Transport methods are
// called with Room.mu held, so they must not block and must not call back into
// the Hub synchronously.
//
// # Bans
//
// A ban keeps a user out of one room or every room until it expires
// (bans.go). Join checks twice: before a missing room is made, and again
// under the room's lock once the client is in the user index, so that a ban
// set concurrently either refuses the join or finds the client to kick.
package rooms
