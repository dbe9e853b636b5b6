package wsedge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a
// load balancer that passes TCP through, rather than HTTP, says who its
// client is in a header it sends before anything of the client's. With
// Config.ProxyProtocol every socket on the public listener must come from
// a trusted proxy (others are closed at accept) and begin with a header;
// the address the header carries is the socket's client: its RemoteAddr,
// and what MaxConnsPerIP counts it by.
//
// The header is read in the connection's own goroutine, when net/http
// first asks for the socket's address or reads it, never in Accept: a
// proxy that is slow to send one holds up nobody else. It gets
// Config.ProxyTimeout, and at most 256 bytes of it are held in memory
// (the rest of a long version 2 header, its TLVs, is read and dropped).

// v2Signature opens every version 2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	v1MaxLine      = 107 // "PROXY TCP6 <39> <39> <5> <5>\r\n", the spec's bound
	proxyBufSize   = 256
	v2HeaderLen    = 16
	v2AddrsInet    = 12 // two IPv4 addresses and two ports
	v2AddrsInet6   = 36 // two IPv6 addresses and two ports
	v2CmdLocal     = 0x0
	v2CmdProxy     = 0x1
	v2FamilyUnspec = 0x0
	v2FamilyInet   = 0x1
	v2FamilyInet6  = 0x2
	v2FamilyUnix   = 0x3
	v2TransUnspec  = 0x0
	v2TransStream  = 0x1
)

// errBadProxyHeader wraps every reason a header is refused.
var errBadProxyHeader = errors.New("bad PROXY protocol header")

func badHeader(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadProxyHeader, fmt.Sprintf(format, args...))
}

// readProxyHeader reads one PROXY header, version 1 or 2, from br. src is
// the client it names; local (a version 1 UNKNOWN, a version 2 LOCAL
// command, or an address family other than IPv4 and IPv6) means the proxy
// names no client, and the socket's own peer stands.
func readProxyHeader(br *bufio.Reader) (src netip.AddrPort, local bool, err error) {
	start, err := br.Peek(len(v2Signature))
	if err != nil {
		return src, false, fmt.Errorf("%w: %w", errBadProxyHeader, err)
	}
	switch {
	case bytes.Equal(start, v2Signature):
		return readProxyV2(br)
	case bytes.HasPrefix(start, []byte("PROXY ")):
		return readProxyV1(br)
	}
	return src, false, badHeader("the socket did not start with one")
}

// readProxyV1 reads "PROXY TCP4 src dst srcport dstport\r\n" (or TCP6, or
// "PROXY UNKNOWN ...\r\n"), strictly: single spaces, the address family
// the protocol names, decimal ports without leading zeros.
func readProxyV1(br *bufio.Reader) (src netip.AddrPort, local bool, err error) {
	line, err := br.ReadSlice('\n')
	if len(line) > v1MaxLine || errors.Is(err, bufio.ErrBufferFull) {
		return src, false, badHeader("version 1 line longer than %d bytes", v1MaxLine)
	}
	if err != nil {
		return src, false, fmt.Errorf("%w: %w", errBadProxyHeader, err)
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return src, false, badHeader("version 1 line not ended by CRLF")
	}
	fields := bytes.Split(line[:len(line)-2], []byte(" "))
	if len(fields) >= 2 && string(fields[1]) == "UNKNOWN" {
		return src, true, nil // the rest of the line is to be ignored
	}
	if len(fields) != 6 {
		return src, false, badHeader("version 1 line has %d fields, want 6", len(fields))
	}
	var want6 bool
	switch string(fields[1]) {
	case "TCP4":
	case "TCP6":
		want6 = true
	default:
		return src, false, badHeader("version 1 protocol %.8q", fields[1])
	}
	ip, err := netip.ParseAddr(string(fields[2]))
	if err != nil || ip.Is6() != want6 || ip.Zone() != "" {
		return src, false, badHeader("version 1 source address %.40q", fields[2])
	}
	if dst, err := netip.ParseAddr(string(fields[3])); err != nil || dst.Is6() != want6 || dst.Zone() != "" {
		return src, false, badHeader("version 1 destination address %.40q", fields[3])
	}
	port, ok := parseV1Port(fields[4])
	if _, dstOK := parseV1Port(fields[5]); !ok || !dstOK {
		return src, false, badHeader("version 1 ports %.6q %.6q", fields[4], fields[5])
	}
	return netip.AddrPortFrom(ip.Unmap(), port), false, nil
}

func parseV1Port(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(n), err == nil
}

// readProxyV2 reads the binary header: the signature, version and
// command, family and transport, the length of what follows, the
// addresses, and TLVs, which are skipped.
func readProxyV2(br *bufio.Reader) (src netip.AddrPort, local bool, err error) {
	var hdr [v2HeaderLen]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return src, false, fmt.Errorf("%w: %w", errBadProxyHeader, err)
	}
	version, command := hdr[12]>>4, hdr[12]&0x0f
	family, transport := hdr[13]>>4, hdr[13]&0x0f
	length := int(binary.BigEndian.Uint16(hdr[14:16]))
	switch {
	case version != 2:
		return src, false, badHeader("version 2 signature with version %d", version)
	case command != v2CmdLocal && command != v2CmdProxy:
		return src, false, badHeader("version 2 command %#x", command)
	case family > v2FamilyUnix || (transport != v2TransUnspec && transport != v2TransStream && command == v2CmdProxy):
		return src, false, badHeader("version 2 family and transport %#x", hdr[13])
	}
	var addrs [v2AddrsInet6]byte
	need := 0
	if command == v2CmdProxy {
		switch family {
		case v2FamilyInet:
			need = v2AddrsInet
		case v2FamilyInet6:
			need = v2AddrsInet6
		}
	}
	if length < need {
		return src, false, badHeader("version 2 address block of %d bytes, want %d", length, need)
	}
	if _, err := io.ReadFull(br, addrs[:need]); err != nil {
		return src, false, fmt.Errorf("%w: %w", errBadProxyHeader, err)
	}
	if _, err := br.Discard(length - need); err != nil {
		return src, false, fmt.Errorf("%w: %w", errBadProxyHeader, err)
	}
	switch need {
	case v2AddrsInet:
		ip := netip.AddrFrom4([4]byte(addrs[0:4]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(addrs[8:10])), false, nil
	case v2AddrsInet6:
		ip := netip.AddrFrom16([16]byte(addrs[0:16])).Unmap()
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(addrs[32:34])), false, nil
	}
	// LOCAL (the proxy's own health check), or an unspecified or Unix
	// family: the spec says to use the real connection's endpoints.
	return src, true, nil
}

// proxied wraps a trusted proxy's socket, s's connection, so that its
// PROXY header is read on first use and its client counted.
func (l *listener) proxied(nc net.Conn, s *socket) net.Conn {
	peer := s.ip
	return &proxiedConn{Conn: nc, timeout: l.edge.cfg.ProxyTimeout, client: func(src netip.AddrPort, local bool, err error) error {
		if err != nil {
			// A proxy's TCP health check connects and hangs up without a
			// byte, and shutdown closes sockets still waiting: no news.
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				l.edge.stats.refusal(http.StatusBadRequest)
				if n, ok := l.badHeader.Note(time.Now()); ok {
					l.edge.log.Warn("refusing sockets without a valid PROXY protocol header (-proxy-protocol)", "latest_ip", peer.String(), "error", err, "refused", n)
				}
			}
			return err
		}
		if local || l.edge.trusted(src.Addr()) {
			return nil // the socket's peer, or a proxy again: its upgrade counts
		}
		err = l.edge.countSocketIP(s, src.Addr())
		if errors.Is(err, errOverIPLimit) {
			// As at accept; closing nc here leaves the socket's count to
			// its own Close, which net/http calls on the error.
			why := perIPRefusal(src.Addr(), l.edge.cfg.MaxConnsPerIP)
			l.refuse(nc, http.StatusTooManyRequests, why)
			l.edge.noteIPLimit(&l.atIPLimit, src.Addr())
			return errors.New(why)
		}
		return err
	}}
}

// errOverIPLimit is countSocketIP's refusal.
var errOverIPLimit = errors.New("over -max-conns-per-ip")

// countSocketIP counts s by the client ip its PROXY header named. It fails
// with errOverIPLimit over MaxConnsPerIP, and with net.ErrClosed when s is
// closed already: it holds no count any more.
func (e *Edge) countSocketIP(sock *socket, ip netip.Addr) error {
	s := &e.sockets
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case sock.released.Load():
		return net.ErrClosed
	case e.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= e.cfg.MaxConnsPerIP:
		return errOverIPLimit
	}
	s.perIP[ip]++
	sock.ip, sock.perIP = ip, true
	return nil
}

// proxiedConn is a socket that starts with a PROXY header, read on the
// first Read or RemoteAddr (both come from the connection's goroutine;
// net/http asks for RemoteAddr first). Until the header is read the
// caller's read deadlines are only noted, then applied: the header has a
// deadline of its own.
type proxiedConn struct {
	net.Conn
	timeout time.Duration
	// client is told what the header said (or why it was refused) and
	// may refuse the client; its error fails every Read.
	client func(src netip.AddrPort, local bool, err error) error

	once   sync.Once
	err    error    // why the header was refused, as a *net.OpError
	remote net.Addr // the client the header named, or the peer
	// buf holds what was read past the header until Read has passed it
	// on; then it is dropped. Only Read (one caller at a time) uses it
	// after the header.
	buf *bufio.Reader

	mu           sync.Mutex
	headerDone   bool
	readDeadline time.Time // the caller's, applied once the header is read
}

func (c *proxiedConn) header() error {
	c.once.Do(c.readHeader)
	return c.err
}

func (c *proxiedConn) readHeader() {
	timeout := c.timeout
	if timeout <= 0 {
		timeout = DefaultProxyTimeout
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	c.buf = bufio.NewReaderSize(c.Conn, proxyBufSize)
	src, local, err := readProxyHeader(c.buf)
	c.remote = c.Conn.RemoteAddr()
	if err == nil && !local {
		c.remote = net.TCPAddrFromAddrPort(src)
	}
	if err := c.client(src, local, err); err != nil {
		// As a read error, so that net/http closes the socket without a
		// word (it answers other errors with a 400).
		c.err = &net.OpError{Op: "read", Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.Conn.RemoteAddr(), Err: err}
	}
	c.mu.Lock()
	c.headerDone = true
	_ = c.Conn.SetReadDeadline(c.readDeadline)
	c.mu.Unlock()
}

func (c *proxiedConn) Read(p []byte) (int, error) {
	if err := c.header(); err != nil {
		return 0, err
	}
	if c.buf != nil {
		if c.buf.Buffered() > 0 {
			return c.buf.Read(p)
		}
		c.buf = nil
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client the PROXY header named; the proxy's own
// address when it named none or the header was refused.
func (c *proxiedConn) RemoteAddr() net.Addr {
	if c.header() != nil {
		return c.Conn.RemoteAddr()
	}
	return c.remote
}

func (c *proxiedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	if !c.headerDone {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *proxiedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// SyscallConn exposes the descriptor for the flusher's writes, which do
// not care what was read.
func (c *proxiedConn) SyscallConn() (syscall.RawConn, error) { return syscallConnOf(c.Conn) }

// CloseWrite lets net/http send its FIN before closing.
func (c *proxiedConn) CloseWrite() error { return closeWriteOf(c.Conn) }
