// Package wsedge is roomd's WebSocket edge: it upgrades GET /ws/{room_id},
// joins the connection to its room in package rooms, and runs the
// connection's pumps.
//
// # Pumps
//
// Every connection has one reader goroutine, alive as long as the socket.
// Writing needs no goroutine of its own: the room's fan-out wakes the
// connection, which queues it on the edge's flusher (flush.go). A few
// workers, one per CPU and alive only while there is work, take woken
// connections in turn and write everything each has queued with one
// non-blocking writev. A connection whose socket is full (its peer reads
// slowly), that is closing, or that is not a plain socket (TLS) gets a
// blocking writer goroutine until its queue is empty. An idle connection
// therefore costs one goroutine and one timer, and a message to a thousand
// members costs a thousand system calls, not a thousand goroutines.
//
// # Reading and writing
//
// gorilla/websocket does the handshake only. After the 101, frameReader
// (reader.go) reads client frames with a 512-byte buffer of its own and
// enforces RFC 6455 (masking, reserved bits, opcodes, control frame rules,
// fragmentation, close codes), the size limit before reading a payload, a
// budget of pings and pongs, and a time bound on unfinished messages, whose
// buffers grow as their bytes arrive; the read loop is kept to one
// small frame above it, so an idle connection's goroutine fits the smallest
// stack. The writer writes server frames (never masked, never fragmented)
// straight to the socket so that a room message is encoded once for all
// members (rooms.Message.Frame) and several queued frames go out in one
// system call.
// Pings, pongs and close frames, protocol errors included, go through the
// same writer.
//
// # Sockets
//
// Listener wraps the public listener and counts every socket it accepts
// against MaxConns and MaxConnsPerIP until the socket is closed, upgraded or
// not, by whoever closes it (net/http, or the connection after a hijack); a
// socket over a limit is answered and closed inside Accept. The counts have
// a lock of their own, never held together with the Edge's. Behind a
// trusted proxy the client is counted per IP later, by the address the
// proxy names (clientaddr.go, proxyproto.go).
//
// # Closing
//
// The side that closes sends a close frame and waits (bounded) for the
// peer's; the reader goroutine always finishes the connection: it closes the
// socket and takes the client out of its room with the code the session
// ended with.
package wsedge
