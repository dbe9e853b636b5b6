//go:build !unix

package wsedge

import (
	"net"
	"syscall"
)

// Without writev (not a Unix), every write round goes to the blocking
// writeLoop: rawConnOf returns nil, so flushRound never calls writeNow.

type writev struct{}

func rawConnOf(net.Conn) syscall.RawConn { return nil }

func (c *conn) writeNow(w *writeScratch) (rest [][]byte, partial bool, err error) {
	return w.frames, false, nil
}
