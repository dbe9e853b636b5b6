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

type iovec = syscall.Iovec

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
	frames := w.frames
	for len(frames) > 0 {
		w.iov = w.iov[:0]
		for _, f := range frames[:min(len(frames), maxIovecs)] {
			if len(f) > 0 {
				v := syscall.Iovec{Base: &f[0]}
				v.SetLen(len(f))
				w.iov = append(w.iov, v)
			}
		}
		if len(w.iov) == 0 {
			return nil, false, nil
		}
		var (
			n     uintptr
			errno syscall.Errno
		)
		err := c.raw.Write(func(fd uintptr) bool {
			n, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
			return true // never wait here: a full socket goes to writeLoop
		})
		clear(w.iov) // do not pin frames
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
