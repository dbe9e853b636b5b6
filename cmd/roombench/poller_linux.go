//go:build linux

package main

// The epoll reader. roombench shares the machine with the server it
// measures, so every microsecond of CPU it spends per received message is
// taken from the server. A goroutine per receiver costs, per delivery, a
// read that returns the frame, a second read that returns EAGAIN before the
// goroutine parks, and the wake-ups through Go's netpoller. Here a poller
// (a goroutine with its own epoll instance, level-triggered EPOLLIN) reads
// each ready socket once per readiness event and parses the frames itself:
// one read per delivery, and a few epoll_waits per batch of ready sockets.
//
// A poller does not block in epoll_wait: its epoll descriptor (readable
// while any of its sockets is) is itself in Go's netpoller, so the poller
// parks like any goroutine waiting for a socket and its epoll_waits return
// at once. Pollers blocked in epoll_wait (bounded, to notice a stop flag)
// were measured first: the sockets, which Go's netpoller watches too, woke
// both a poller's thread and the netpoller's, Go's sysmon woke more often
// to retake the blocked threads' Ps, and with 2.5 times the goroutine
// reader's context switches it saved almost no CPU.

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const epollSupported = true

const (
	// pollEvents is how many ready sockets one epoll_wait returns at most.
	pollEvents = 256
	// pollScratch is a poller's read buffer: one read takes at most this
	// much of one socket's data.
	pollScratch = 64 << 10
)

// pollerSet is the fleet's pollers.
type pollerSet struct {
	f       *fleet
	pollers []*poller
	// byIndex is, by receiver index, the polled receiver an event names
	// (the event carries the index, not the file descriptor): set while
	// it is registered, nil once it ended.
	byIndex []atomic.Pointer[polled]
	next    atomic.Uint32
}

// poller is one epoll instance and the goroutine that waits on it.
type poller struct {
	set      *pollerSet
	id       int
	epfd     int
	ep       *os.File        // epfd, in Go's netpoller; closing it closes epfd
	eprc     syscall.RawConn // ep's
	stopping atomic.Bool
	exited   chan struct{}

	mu      sync.Mutex
	members []*polled // every receiver registered here, ended or not
	closed  bool      // the poller stopped: epfd is closed

	// Only the poller's goroutine uses these.
	events  []syscall.EpollEvent
	scratch []byte
	cur     *polled // the receiver being read
	rdst    []byte  // rawRead's buffer, result and error
	rn      int
	rerr    error
	readFn  func([]byte) (int, error)
	rawFn   func(uintptr) bool
	waitFn  func(uintptr) bool
	failed  error // why the poller could not go on
}

// newPollerSet starts n pollers for f's cfg.conns receivers.
func newPollerSet(f *fleet, n int) (*pollerSet, error) {
	s := &pollerSet{f: f, byIndex: make([]atomic.Pointer[polled], f.cfg.conns)}
	for i := range max(n, 1) {
		p, err := newPoller(s, i)
		if err != nil {
			s.stop(time.Second)
			return nil, err
		}
		s.pollers = append(s.pollers, p)
		go p.run()
	}
	return s, nil
}

// newPoller makes a poller's epoll instance, non-blocking so that Go's
// netpoller can watch it.
func newPoller(s *pollerSet, id int) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("epoll: set non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	eprc, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	p := &poller{
		set: s, id: id, epfd: epfd, ep: ep, eprc: eprc, exited: make(chan struct{}),
		events: make([]syscall.EpollEvent, pollEvents), scratch: make([]byte, pollScratch),
	}
	p.readFn, p.rawFn, p.waitFn = p.read, p.rawRead, p.wait
	return p, nil
}

// add hands pr to the next poller, round-robin.
func (s *pollerSet) add(pr *polled) error {
	p := s.pollers[int(s.next.Add(1)-1)%len(s.pollers)]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("epoll reader: stopped")
	}
	pr.owner = p.id
	s.byIndex[pr.r.index].Store(pr)
	var cerr error
	err := pr.rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pr.r.index)}
		cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil && cerr != nil {
		err = fmt.Errorf("epoll_ctl: %w", cerr)
	}
	if err != nil {
		s.byIndex[pr.r.index].Store(nil)
		return err
	}
	p.members = append(p.members, pr)
	return nil
}

// stop tells every poller to stop, wakes it, and waits, at most d, for
// them to end the receivers they still read (without recording anything:
// teardown) and close their epoll instances. It reports whether all did.
func (s *pollerSet) stop(d time.Duration) bool {
	for _, p := range s.pollers {
		p.stopping.Store(true)
		_ = p.ep.SetReadDeadline(time.Now()) // a parked poller wakes
	}
	return s.wait(time.After(d))
}

// wait waits until every poller has exited or timeout fires.
func (s *pollerSet) wait(timeout <-chan time.Time) bool {
	for _, p := range s.pollers {
		select {
		case <-p.exited:
		case <-timeout:
			return false
		}
	}
	return true
}

// run handles ready sockets until told to stop. Each turn is one call of
// wait, through ep's RawConn: when no socket is ready, wait returns false
// and the poller parks in Go's netpoller until one is, or until stop sets
// a read deadline in the past.
func (p *poller) run() {
	defer close(p.exited)
	for !p.stopping.Load() && p.failed == nil {
		if err := p.eprc.Read(p.waitFn); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			p.failed = err
		}
	}
	p.cur = nil
	p.shutdown(p.failed)
}

// wait takes the ready sockets from epoll without blocking and reads each
// once. It returns false, to park, when none was ready.
func (p *poller) wait(fd uintptr) bool {
	n, err := syscall.EpollWait(int(fd), p.events, 0)
	if err != nil {
		if errors.Is(err, syscall.EINTR) {
			return true
		}
		p.failed = fmt.Errorf("epoll_wait: %w", err)
		return true
	}
	if n == 0 {
		return false
	}
	for _, ev := range p.events[:n] {
		i := int(ev.Fd)
		if i < 0 || i >= len(p.set.byIndex) {
			continue
		}
		pr := p.set.byIndex[i].Load()
		if pr == nil || pr.owner != p.id {
			continue // ended since it was reported
		}
		p.cur = pr
		if err := pr.wr.readOnce(p.scratch, p.readFn, pr); err != nil {
			p.remove(pr)
			pr.end(err)
		}
	}
	return true
}

// read is the wsReader's read: one read system call on the current
// receiver's socket, through its RawConn so that the descriptor cannot be
// closed (and reused) meanwhile.
func (p *poller) read(b []byte) (int, error) {
	p.rdst = b
	err := p.cur.rc.Read(p.rawFn)
	p.rdst = nil
	p.cur.now = time.Now()
	if err != nil {
		return 0, err
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	return p.rn, nil
}

func (p *poller) rawRead(fd uintptr) bool {
	p.rn, p.rerr = syscall.Read(int(fd), p.rdst)
	return true // never wait in Go's netpoller: epoll says when to read again
}

// remove takes pr out of the epoll set, before its stream's end is
// recorded. The socket stays open until fleet.close.
func (p *poller) remove(pr *polled) {
	p.set.byIndex[pr.r.index].Store(nil)
	_ = pr.rc.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// shutdown ends every receiver still registered (recording err if the
// poller failed rather than stopped) and closes the epoll instance, which
// also deregisters their sockets.
func (p *poller) shutdown(err error) {
	p.mu.Lock()
	p.closed = true
	members := p.members
	p.members = nil
	p.mu.Unlock()
	for _, pr := range members {
		if pr.ended {
			continue
		}
		p.set.byIndex[pr.r.index].Store(nil)
		if err != nil {
			pr.end(err)
		} else {
			pr.ended = true
			close(pr.r.done)
		}
	}
	_ = p.ep.Close() // closes epfd once no call uses it
}
