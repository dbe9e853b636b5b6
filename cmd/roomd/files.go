package main

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"

	"roomd/wsedge"
)

// outOfFiles warns when accept fails for want of files (EMFILE, ENFILE) on
// any of roomd's listeners. The servers retry such a failure after a pause
// and log each one at debug; out of files, though, no listener can take a
// connection, so one warning says it for all of them: at most one line
// every 10 s (wsedge.RateLog), with the failures since the last.
type outOfFiles struct {
	log      *slog.Logger
	maxConns int // -max-conns in force, the usual knob
	logged   wsedge.RateLog
}

// watch returns ln with its accept failures watched; name is the flag that
// set its address.
func (o *outOfFiles) watch(ln net.Listener, name string) net.Listener {
	return &watchedListener{Listener: ln, files: o, name: name}
}

type watchedListener struct {
	net.Listener
	files *outOfFiles
	name  string
}

func (l *watchedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
		if n, ok := l.files.logged.Note(time.Now()); ok {
			l.files.log.Warn("out of open files: accept failed, and no listener can take a connection until some close; lower -max-conns or raise the file limit",
				"listener", l.name, "error", err, "failures", n, "max_conns", l.files.maxConns)
		}
	}
	return conn, err
}
