package wsedge

import (
	"runtime"
	"sync"
)

// flusher runs connections' write rounds on a few short-lived workers
// instead of one new goroutine per woken connection. A message to a
// thousand idle members would otherwise create, schedule and destroy a
// thousand goroutines, each living for one system call; perf put that churn
// at a tenth of the server's CPU under roombench.
//
// A worker never blocks on a socket: it writes without waiting, and a
// connection whose socket is full (its peer reads slowly), or that is
// closing, is handed to a goroutine of its own (writeLoop), which may block
// for up to WriteTimeout. Workers exist only while there is work, so an idle
// server runs none.
type flusher struct {
	mu      sync.Mutex
	ready   []*conn // connections waiting for a round, in wake order
	head    int     // ready[:head] are taken
	running int     // workers alive
	max     int
}

// flushBatch is how many connections a worker takes at once: enough to
// make the lock cheap, few enough that other workers share a large
// fan-out.
const flushBatch = 32

func newFlusher() *flusher {
	return &flusher{max: max(1, runtime.GOMAXPROCS(0))}
}

// push queues c for a round; c.writing is set, so c is queued at most once.
func (f *flusher) push(c *conn) {
	f.mu.Lock()
	f.ready = append(f.ready, c)
	start := f.running < f.max && f.running < len(f.ready)-f.head
	if start {
		f.running++
	}
	f.mu.Unlock()
	if start {
		go f.work()
	}
}

// take moves up to flushBatch waiting connections to dst, or reports false
// (and counts the worker out) when none is waiting.
func (f *flusher) take(dst []*conn) ([]*conn, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	waiting := f.ready[f.head:]
	if len(waiting) == 0 {
		f.running--
		// Every entry was cleared as it was taken: nothing is pinned.
		if cap(f.ready) > 4096 { // one huge fan-out's array is not kept
			f.ready = nil
		} else {
			f.ready = f.ready[:0]
		}
		f.head = 0
		return dst, false
	}
	n := min(len(waiting), flushBatch)
	dst = append(dst, waiting[:n]...)
	clear(waiting[:n])
	f.head += n
	return dst, true
}

func (f *flusher) work() {
	w := scratchPool.Get().(*writeScratch)
	defer w.release()
	for {
		var more bool
		w.conns, more = f.take(w.conns[:0])
		if !more {
			return
		}
		for _, c := range w.conns {
			c.flushRound(w)
		}
		clear(w.conns)
	}
}

// flushRound writes what c has queued without blocking, then queues c again
// (its next round finds either more to write or nothing, which ends its
// writing), or hands it to a blocking writer.
func (c *conn) flushRound(w *writeScratch) {
	defer func() {
		if p := recover(); p != nil {
			c.edge.log.Error("panic while writing to a connection; cutting it", "client", c.client.ID(), "panic", p)
			c.writeFailed(errPanic(p))
		}
	}()
	switch c.collect(w) {
	case roundIdle:
		return
	case roundClose:
		go c.writeLoop(nil, false)
		return
	}
	if c.raw == nil { // not a plain socket (TLS): only the blocking writer can
		go c.writeLoop(append([][]byte(nil), w.frames...), false)
		return
	}
	rest, partial, err := c.writeNow(w)
	switch {
	case err != nil:
		c.writeFailed(err)
	case len(rest) > 0:
		// The socket is full. The rest is copied: w is the worker's.
		go c.writeLoop(append([][]byte(nil), rest...), partial)
	default:
		c.edge.flush.push(c)
	}
}
