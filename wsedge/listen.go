package wsedge

import (
	"errors"
	"fmt"
	"io"
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
//
// A socket from one of Config.TrustedProxies counts in MaxConns only: its
// client is counted per IP once known (clientaddr.go). With
// Config.ProxyProtocol, sockets from other peers are closed at once, and
// each socket's PROXY header is read in its own goroutine (proxyproto.go).
func (e *Edge) Listener(ln net.Listener, overTLS bool) net.Listener {
	return &listener{Listener: ln, edge: e, overTLS: overTLS}
}

type listener struct {
	net.Listener
	edge    *Edge
	overTLS bool

	atLimit, atIPLimit RateLog
	// untrusted and badHeader count sockets refused under ProxyProtocol:
	// from a peer that is no trusted proxy, or without a valid header.
	untrusted, badHeader RateLog
}

// sockets counts the sockets of the edge's listeners. Its lock is taken
// alone, never with Edge.mu.
type sockets struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int // sockets of untrusted peers, and the clients of trusted proxies

	// atForwardedLimit logs upgrades refused at MaxConnsPerIP for a
	// client behind a trusted proxy.
	atForwardedLimit RateLog
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(nc.RemoteAddr())
		proxied := l.edge.cfg.ProxyProtocol
		if proxied && !l.edge.trusted(ip) {
			// Only a trusted proxy may say who its client is; anyone else
			// is closed without a word, before a byte is read.
			_ = nc.Close()
			l.edge.stats.refusal(http.StatusBadRequest)
			if n, ok := l.untrusted.Note(time.Now()); ok {
				l.edge.log.Warn("refusing sockets from an address not in -trusted-proxies: with -proxy-protocol every socket must come from a trusted proxy", "latest_ip", ip.String(), "refused", n)
			}
			continue
		}
		// A trusted proxy's socket carries many clients: it counts in
		// total only, and its client per IP once known (the PROXY
		// header, or the upgrade request's X-Forwarded-For).
		perIP := !proxied && !l.edge.trusted(ip)
		switch l.edge.addSocket(ip, perIP) {
		case 0:
			s := &socket{Conn: nc, edge: l.edge, ip: ip, perIP: perIP}
			if proxied {
				s.Conn = l.proxied(nc, s)
			}
			return s, nil
		case http.StatusServiceUnavailable:
			l.refuse(nc, http.StatusServiceUnavailable, fmt.Sprintf("server at its limit of %d connections", l.edge.cfg.MaxConns))
			if n, ok := l.atLimit.Note(time.Now()); ok {
				l.edge.log.Warn("public listener at -max-conns: refusing new connections", "max_conns", l.edge.cfg.MaxConns, "refused", n)
			}
		default:
			l.refuse(nc, http.StatusTooManyRequests, perIPRefusal(ip, l.edge.cfg.MaxConnsPerIP))
			l.edge.noteIPLimit(&l.atIPLimit, ip)
		}
	}
}

// perIPRefusal is what a client over MaxConnsPerIP is told, at accept or at
// upgrade.
func perIPRefusal(ip netip.Addr, limit int) string {
	return fmt.Sprintf("too many connections from %s (limit %d)", ip, limit)
}

// noteIPLimit logs a refusal at MaxConnsPerIP, at most once per
// logInterval with the count since.
func (e *Edge) noteIPLimit(r *RateLog, ip netip.Addr) {
	if n, ok := r.Note(time.Now()); ok {
		e.log.Warn("refusing connections at -max-conns-per-ip", "latest_ip", ip.String(), "max_conns_per_ip", e.cfg.MaxConnsPerIP, "refused", n)
	}
}

// refuse answers a socket over a limit, when it can, and closes it. The
// socket is new, so its send buffer is empty and the write cannot block.
func (l *listener) refuse(nc net.Conn, status int, why string) {
	l.edge.stats.refusal(status)
	if !l.overTLS {
		_, _ = io.WriteString(nc, bareResponse(status, why))
	}
	_ = nc.Close()
}

// bareResponse is a whole HTTP response saying why, for a socket refused
// before its request is read.
func bareResponse(status int, why string) string {
	body := why + "\n"
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// addSocket counts a new socket from ip, in total and, if perIP, by ip,
// or refuses it with the status to answer: 503 over MaxConns, 429 over
// MaxConnsPerIP.
func (e *Edge) addSocket(ip netip.Addr, perIP bool) int {
	s := &e.sockets
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case e.cfg.MaxConns > 0 && s.total >= e.cfg.MaxConns:
		return http.StatusServiceUnavailable
	case perIP && e.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= e.cfg.MaxConnsPerIP:
		return http.StatusTooManyRequests
	}
	s.total++
	if perIP {
		s.perIP[ip]++
	}
	return 0
}

// removeSocket gives back what sock holds: its place in the total, and
// its IP's count if it has one.
func (e *Edge) removeSocket(sock *socket) {
	s := &e.sockets
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if sock.perIP {
		s.dropIPLocked(sock.ip)
	}
}

// countIP counts one more socket or connection from ip against
// MaxConnsPerIP, once the client behind a trusted proxy is known; false
// means ip is at its limit. Whoever counted gives it back with uncountIP.
func (e *Edge) countIP(ip netip.Addr) bool {
	s := &e.sockets
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= e.cfg.MaxConnsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

func (e *Edge) uncountIP(ip netip.Addr) {
	s := &e.sockets
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropIPLocked(ip)
}

// dropIPLocked takes one count of ip away. s.mu must be held.
func (s *sockets) dropIPLocked(ip netip.Addr) {
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// peerIP is what MaxConnsPerIP counts a socket by: the TCP peer's address,
// an IPv4 client of a dual-stack listener as IPv4; for a trusted proxy's
// socket, see clientaddr.go.
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
	edge *Edge
	// ip and perIP say which IP the socket counts against MaxConnsPerIP,
	// if any. A PROXY header's client is counted (proxied.go) after
	// Accept (proxyproto.go), so they are guarded by edge.sockets.mu.
	ip       netip.Addr
	perIP    bool
	released atomic.Bool
}

// Close closes the socket and gives its place back, once: the count
// follows the file, which is closed first.
func (s *socket) Close() error {
	err := s.Conn.Close()
	if s.released.CompareAndSwap(false, true) {
		s.edge.removeSocket(s)
	}
	return err
}

// SyscallConn exposes the descriptor for the flusher's non-blocking writes.
func (s *socket) SyscallConn() (syscall.RawConn, error) { return syscallConnOf(s.Conn) }

// CloseWrite lets net/http send its FIN before closing, as it does on a
// bare TCP connection.
func (s *socket) CloseWrite() error { return closeWriteOf(s.Conn) }

// syscallConnOf is the descriptor of the connection a wrapper wraps.
func syscallConnOf(c net.Conn) (syscall.RawConn, error) {
	if sc, ok := c.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// closeWriteOf half-closes the connection a wrapper wraps.
func closeWriteOf(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
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
