//go:build unix

package wsedge

import (
	"errors"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// maxIovecs is the kernel's limit on one writev (IOV_MAX).
const maxIovecs = 1024

// writev is the flusher's non-blocking writev of one round: its iovecs,
// its result, and the function RawConn.Write runs, bound once per scratch
// so that a write allocates nothing.
type writev struct {
	iov   []syscall.Iovec
	n     uintptr
	errno syscall.Errno
	run   func(fd uintptr) bool
}

func (v *writev) call(fd uintptr) bool {
	v.n, _, v.errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v.iov[0])), uintptr(len(v.iov)))
	return true // never wait here: a full socket goes to writeLoop
}

// rawConnOf returns sock's descriptor for the flusher's non-blocking
// writes, or nil where only the blocking writer can write (TLS).
func rawConnOf(sock net.Conn) syscall.RawConn {
	sc, ok := sock.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeNow writes w.frames with writev until done or the socket would
// block, and returns what is left; partial means its first frame is the
// rest of one already begun on the wire. What is left goes to writeLoop.
func (c *conn) writeNow(w *writeScratch) (rest [][]byte, partial bool, err error) {
	v := &w.vec
	if v.run == nil {
		v.run = v.call
	}
	frames := w.frames
	for len(frames) > 0 {
		v.iov = v.iov[:0]
		for _, f := range frames[:min(len(frames), maxIovecs)] {
			if len(f) > 0 {
				iov := syscall.Iovec{Base: &f[0]}
				iov.SetLen(len(f))
				v.iov = append(v.iov, iov)
			}
		}
		if len(v.iov) == 0 {
			return nil, false, nil
		}
		err := c.raw.Write(v.run)
		clear(v.iov) // do not pin frames
		n, errno := v.n, v.errno
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Close moved the deadline to now (or a blocking writer's
			// deadline lapsed): writeLoop knows what to do.
			return frames, partial, nil
		case err != nil:
			return nil, false, err
		case errno == syscall.EAGAIN || errno == syscall.EINTR:
			return frames, partial, nil
		case errno != 0:
			return nil, false, errno
		}
		frames, partial = advance(frames, int64(n), partial)
	}
	return nil, false, nil
}

// advance drops the first n bytes of frames, cutting the frame they end in;
// partial tells whether the first frame left is a cut one.
func advance(frames [][]byte, n int64, partial bool) ([][]byte, bool) {
	for len(frames) > 0 && n >= int64(len(frames[0])) {
		n -= int64(len(frames[0]))
		frames = frames[1:]
		partial = false
	}
	if len(frames) > 0 && n > 0 {
		frames[0] = frames[0][n:]
		partial = true
	}
	return frames, partial
}
