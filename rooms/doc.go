// Package rooms owns roomd's rooms: the registry, membership, per-connection
// send queues, fan-out and each room's recent history. It knows nothing about
// WebSocket or gRPC: a transport (package wsedge) attaches each connection as
// a Client through the Transport interface, and the admin API calls the Hub.
//
// # Clients and rooms
//
// A Client is one connection with one send queue. A raw client (Join) is in
// one room for its whole life and is closed when that room goes. A session
// client (Connect, then JoinRoom and LeaveRoom) is in any number of rooms,
// hears presence (unless a room has it off, RoomOptions.NoPresence), and is
// sent a notice instead of being closed when one of its rooms is deleted or
// it is kicked from one room.
//
// What a join or a page of members costs stays bounded whatever the size of
// the room: a room keeps its members sorted by client id as well (its
// roster, roster.go), so a join lists only the first JoinOptions.ListMembers
// of them with their count, and Members and Clients page on from any client
// id with a binary search. Joins and leaves report how many session members
// they told, so that a transport can charge for the presence fan-out.
//
// Watchers hear every leave with its LeaveCause, taken from what the Hub did
// (a kick, a deletion, a slow consumer dropped) or what the transport saw
// and passes to Leave (the client's close frame, a lost connection, a rule
// broken, shutdown), never inferred from the close code; and with a close
// code only when the connection closed. A client is disconnected once: the
// first to claim it (Hub or transport) says why, and any membership ended
// after that ends with the same departure.
//
// # History
//
// Each room keeps its latest messages with their sequence numbers, at most
// HistorySize of them and within a byte bound per room and one over all
// rooms (history.go), and an epoch that is new for every Room value.
// JoinRoom with Resume replays what a client missed, under the room's lock
// so nothing live slips in between, or fails with ErrGap when the history
// cannot say; WatchSince does the same for a watcher.
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
// Room.mu, then Client.mu, then Queue.mu. Client.mu, the client and user
// index locks, the ban shard locks and the room-quota creator locks are
// leaves: nothing else is taken while they are held (a ban lookup under
// Client.mu is the one nesting of leaves). The total of every room's
// history is an atomic counter, not a lock (history.go). Transport methods are
// called with Room.mu held, so they must not block and must not call back into
// the Hub synchronously.
//
// # Bans
//
// A ban keeps a user out of one room or every room until it expires
// (bans.go). JoinRoom checks twice: before a missing room is made, and again
// under the client's lock as it records the membership; a ban's kick reads
// the client's rooms under the same lock, so a ban set concurrently either
// refuses the join or finds the membership to remove.
package rooms
