package main

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// outOfFilesInterval is how often, at most, running out of files is logged.
const outOfFilesInterval = 10 * time.Second

// outOfFiles warns when accept fails for want of files (EMFILE, ENFILE) on
// any of roomd's listeners. The servers retry such a failure after a pause
// and log each one at debug; out of files, though, no listener can take a
// connection, so one warning says it for all of them: at most one line per
// outOfFilesInterval, with the failures since the last.
type outOfFiles struct {
	log      *slog.Logger
	maxConns int // -max-conns in force, the usual knob

	mu       sync.Mutex
	last     time.Time
	failures int
}

// watch returns ln with its accept failures watched; name is the flag that
// set its address.
func (o *outOfFiles) watch(ln net.Listener, name string) net.Listener {
	return &watchedListener{Listener: ln, files: o, name: name}
}

// note counts a failure; ok says to log now, with n failures since the
// last line, this one included.
func (o *outOfFiles) note(now time.Time) (n int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	if !o.last.IsZero() && now.Sub(o.last) < outOfFilesInterval {
		return 0, false
	}
	n, o.failures, o.last = o.failures, 0, now
	return n, true
}

type watchedListener struct {
	net.Listener
	files *outOfFiles
	name  string
}

func (l *watchedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
		if n, ok := l.files.note(time.Now()); ok {
			l.files.log.Warn("out of open files: accept failed, and no listener can take a connection until some close; lower -max-conns or raise the file limit",
				"listener", l.name, "error", err, "failures", n, "max_conns", l.files.maxConns)
		}
	}
	return conn, err
}
