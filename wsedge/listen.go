package wsedge

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// logInterval is how often, at most, the listener logs refusals at one
// limit; each line counts the refusals since the last.
const logInterval = 10 * time.Second

// Listener wraps ln, the public listener, so that MaxConns and MaxConnsPerIP
// count its sockets from accept to close, whether they upgrade or not: a
// socket that never sends a byte holds a file as surely as a member does.
//
// A socket over a limit is closed at once, before its request is read. Over
// plain TCP it is first sent a bare HTTP 503 (total) or 429 (its IP) saying
// why, which a client that has sent its request usually reads before the
// close; when overTLS (ln is about to be wrapped by tls.NewListener) nothing
// readable can be said before a handshake, so it is closed without a word.
// Refusals are logged at warn, once per logInterval with a count.
func (e *Edge) Listener(ln net.Listener, overTLS bool) net.Listener {
	return &listener{Listener: ln, edge: e, overTLS: overTLS}
}

type listener struct {
	net.Listener
	edge    *Edge
	overTLS bool

	atLimit, atIPLimit RateLog
}

// sockets counts the sockets of the edge's listeners. Its lock is taken
// alone, never with Edge.mu.
type sockets struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(nc.RemoteAddr())
		switch l.edge.addSocket(ip) {
		case 0:
			return &socket{Conn: nc, edge: l.edge, ip: ip}, nil
		case http.StatusServiceUnavailable:
			l.refuse(nc, http.StatusServiceUnavailable, fmt.Sprintf("server at its limit of %d connections", l.edge.cfg.MaxConns))
			if n, ok := l.atLimit.Note(time.Now()); ok {
				l.edge.log.Warn("public listener at -max-conns: refusing new connections", "max_conns", l.edge.cfg.MaxConns, "refused", n)
			}
		default:
			l.refuse(nc, http.StatusTooManyRequests, fmt.Sprintf("too many connections from %s (limit %d)", ip, l.edge.cfg.MaxConnsPerIP))
			if n, ok := l.atIPLimit.Note(time.Now()); ok {
				l.edge.log.Warn("refusing connections at -max-conns-per-ip", "latest_ip", ip.String(), "max_conns_per_ip", l.edge.cfg.MaxConnsPerIP, "refused", n)
			}
		}
	}
}

// refuse answers a socket over a limit, when it can, and closes it. The
// socket is new, so its send buffer is empty and the write cannot block.
func (l *listener) refuse(nc net.Conn, status int, why string) {
	l.edge.stats.refusal(status)
	if !l.overTLS {
		body := why + "\n"
		_, _ = fmt.Fprintf(nc, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n\r\n%s",
			status, http.StatusText(status), len(body), body)
	}
	_ = nc.Close()
}

// addSocket counts a new socket from ip, or refuses it with the status to
// answer: 503 over MaxConns, 429 over MaxConnsPerIP.
func (e *Edge) addSocket(ip netip.Addr) int {
	s := &e.sockets
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case e.cfg.MaxConns > 0 && s.total >= e.cfg.MaxConns:
		return http.StatusServiceUnavailable
	case e.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= e.cfg.MaxConnsPerIP:
		return http.StatusTooManyRequests
	}
	s.total++
	s.perIP[ip]++
	return 0
}

func (e *Edge) removeSocket(ip netip.Addr) {
	s := &e.sockets
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// requestIP is peerIP for a request, as text: what room quotas count by.
func requestIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ap.Addr().Unmap().String()
}

// peerIP is what MaxConnsPerIP counts by: the TCP peer's address, an IPv4
// client of a dual-stack listener as IPv4. roomd does not trust
// X-Forwarded-For: behind a proxy, every client counts as the proxy.
func peerIP(addr net.Addr) netip.Addr {
	if a, ok := addr.(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// socket is an accepted socket, counted until it is closed, by whoever
// closes it: net/http, or wsedge after a hijack.
type socket struct {
	net.Conn
	edge     *Edge
	ip       netip.Addr
	released atomic.Bool
}

// Close closes the socket and gives its place back, once: the count
// follows the file, which is closed first.
func (s *socket) Close() error {
	err := s.Conn.Close()
	if s.released.CompareAndSwap(false, true) {
		s.edge.removeSocket(s.ip)
	}
	return err
}

// SyscallConn exposes the descriptor for the flusher's non-blocking writes.
func (s *socket) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := s.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite lets net/http send its FIN before closing, as it does on a
// bare TCP connection.
func (s *socket) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// RateLog lets one kind of event be logged at most once per logInterval
// (10 s), counting the events in between. Its zero value is ready; roomd's
// out-of-files warning uses it too.
type RateLog struct {
	mu      sync.Mutex
	last    time.Time
	pending int
}

// Note counts an event; ok says to log now, with n events since the last
// line, this one included.
func (r *RateLog) Note(now time.Time) (n int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending++
	if !r.last.IsZero() && now.Sub(r.last) < logInterval {
		return 0, false
	}
	n, r.pending, r.last = r.pending, 0, now
	return n, true
}
