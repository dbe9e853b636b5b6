package rooms

import "sync"

// Queue is a member's send queue, bounded in bytes rather than in messages so
// that a few large messages and many small ones cost the same memory. The
// fan-out pushes; the member's transport takes everything queued at once so it
// can write several messages in one system call.
type Queue struct {
	mu       sync.Mutex
	items    []*Message
	bytes    int
	maxBytes int
	closed   bool
}

type pushResult uint8

const (
	pushed       pushResult = iota // queued behind others
	pushedFirst                    // queued into an empty queue: wake the transport
	pushClosed                     // the queue is closed; nothing queued
	pushOverflow                   // over the bound: the queue is now closed and empty
)

// push appends m unless that would take the queue over its bound; then the
// queue is closed and emptied, since its member is about to be dropped.
func (q *Queue) push(m *Message) pushResult {
	size := m.queuedSize()
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return pushClosed
	case q.bytes+size > q.maxBytes:
		q.closed = true
		q.items, q.bytes = nil, 0
		return pushOverflow
	}
	q.items = append(q.items, m)
	q.bytes += size
	if len(q.items) == 1 {
		return pushedFirst
	}
	return pushed
}

// Take moves every queued message to dst (which it may grow) and returns it.
// The queue keeps its backing array when it is small, so a steady stream of
// messages does not allocate.
func (q *Queue) Take(dst []*Message) []*Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.items...)
	clear(q.items)
	if cap(q.items) > 1024 {
		q.items = nil
	} else {
		q.items = q.items[:0]
	}
	q.bytes = 0
	return dst
}

// Len returns the number of queued messages and their size.
func (q *Queue) Len() (messages, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.bytes
}

// close drops everything queued and refuses further pushes.
func (q *Queue) close() {
	q.mu.Lock()
	q.closed = true
	q.items, q.bytes = nil, 0
	q.mu.Unlock()
}
