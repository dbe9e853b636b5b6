package wsedge

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Who a client is, behind proxies.
//
// A socket's TCP peer is its client, unless the peer is in
// Config.TrustedProxies: then the client is the one the proxy names in
// X-Forwarded-For (or, with Config.ProxyProtocol, in the PROXY header it
// sent first; see proxyproto.go). Per-IP limits count the client, not the
// proxy: a socket from a trusted proxy is counted in total at accept but
// not per IP, and a connection that upgrades over it is counted per IP, by
// its forwarded address, from admit until it is untracked.

// clientAddr is who a connection's client is: what ListClients shows,
// what logs name, and what -max-conns-per-ip and room quotas count by.
type clientAddr struct {
	ip netip.Addr // the client's IP, IPv4 unmapped; invalid if the request's RemoteAddr was no IP:port
	// text is the address as ListClients and logs show it: the request's
	// RemoteAddr (IP:port), or a forwarded address as the proxy gave it,
	// the IP alone unless the proxy also gave a port.
	text string
	// fromProxy says the TCP peer is a trusted proxy: its socket was not
	// counted per IP at accept, so the connection is, by ip, at upgrade.
	fromProxy bool
	// countedIP says the connection holds a count in the per-IP sockets
	// map, which untrack gives back.
	countedIP bool
}

// ClientAddr is the client's address as ListClients shows it and logs
// should name it: the TCP peer's IP:port, or, when the peer is a trusted
// proxy, the address it forwarded (X-Forwarded-For or the PROXY header).
func (c *conn) ClientAddr() string { return c.addr.text }

// quotaKey is what room quotas count the client by: its IP.
func (a clientAddr) quotaKey() string {
	if a.ip.IsValid() {
		return a.ip.String()
	}
	return a.text
}

// clientAddrOf finds out who sent r. RemoteAddr is the socket's peer (the
// address a PROXY header carried, with Config.ProxyProtocol); only when
// that is a trusted proxy is X-Forwarded-For read.
func (e *Edge) clientAddrOf(r *http.Request) clientAddr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return clientAddr{text: r.RemoteAddr}
	}
	a := clientAddr{ip: peer.Addr().Unmap(), text: r.RemoteAddr}
	if !e.trusted(a.ip) {
		return a
	}
	a.fromProxy = true
	if fwd, ok := forwardedClient(r.Header.Values("X-Forwarded-For"), e.trusted); ok {
		a.ip, a.text = fwd.Addr(), fwd.Addr().String()
		if fwd.Port() != 0 {
			a.text = fwd.String()
		}
	}
	return a
}

// countForwarded counts a client behind a trusted proxy against
// MaxConnsPerIP, as its socket would have been at accept had it come
// straight; over the limit it answers the same 429 and returns false.
func (e *Edge) countForwarded(w http.ResponseWriter, c *conn) bool {
	if !c.addr.fromProxy || !c.addr.ip.IsValid() || e.cfg.MaxConnsPerIP <= 0 {
		return true
	}
	if !e.countIP(c.addr.ip) {
		e.refuse(w, perIPRefusal(c.addr.ip, e.cfg.MaxConnsPerIP), http.StatusTooManyRequests)
		e.noteIPLimit(&e.sockets.atForwardedLimit, c.addr.ip)
		return false
	}
	c.addr.countedIP = true
	return true
}

// trusted reports whether ip is one of Config.TrustedProxies.
func (e *Edge) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range e.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedClient picks the client out of the X-Forwarded-For values a
// trusted proxy sent: every proxy appends the address it received from,
// so walking the list from the right (the header's instances in order,
// each a comma list), past the addresses of trusted proxies, the first
// untrusted address is the client; anything left of it is whatever the
// client chose to send and is not looked at. When every address is
// trusted, the client is the leftmost. ok is false when there is no
// address, or an entry the walk has to read is not an address (such as
// "unknown" or an obfuscated identifier): then nothing in the header can
// be believed, and the caller keeps the peer's address.
func forwardedClient(values []string, trusted func(netip.Addr) bool) (client netip.AddrPort, ok bool) {
	var leftmost netip.AddrPort
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			comma := strings.LastIndexByte(v, ',')
			a, ok := parseForwardedAddr(strings.Trim(v[comma+1:], " \t"))
			if !ok {
				return netip.AddrPort{}, false
			}
			if !trusted(a.Addr()) {
				return a, true
			}
			leftmost = a
			if comma < 0 {
				break
			}
			v = v[:comma]
		}
	}
	return leftmost, leftmost.IsValid()
}

// parseForwardedAddr parses one X-Forwarded-For entry: an IPv4 or IPv6
// address, optionally with a port (1.2.3.4:80, [2001:db8::1]:80), or an
// IPv6 address in brackets. Zones and anything else are refused. An
// absent port is 0; an IPv4-mapped IPv6 address comes back as IPv4.
func parseForwardedAddr(s string) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	var err error
	switch {
	case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
		var a netip.Addr
		if a, err = netip.ParseAddr(s[1 : len(s)-1]); err == nil && !a.Is6() {
			return ap, false
		}
		ap = netip.AddrPortFrom(a, 0)
	case strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1:
		ap, err = netip.ParseAddrPort(s)
	default:
		var a netip.Addr
		a, err = netip.ParseAddr(s)
		ap = netip.AddrPortFrom(a, 0)
	}
	if err != nil || !ap.Addr().IsValid() || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes
// (10.0.0.0/8, 2001:db8::/32) and bare IP addresses (192.0.2.7, as /32 or
// /128) for Config.TrustedProxies. Spaces around entries and empty entries
// are ignored; an entry that is neither, or has a zone, is an error that
// names it. Host bits are cleared (10.1.2.3/8 is 10.0.0.0/8), and an
// IPv4-mapped IPv6 prefix becomes the IPv4 prefix it stands for, since
// peers are compared as IPv4.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(entry, "/") {
			p, err = netip.ParsePrefix(entry)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(entry); err == nil && a.Zone() != "" {
				err = errors.New("zone")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix (such as 192.0.2.7 or 10.0.0.0/8)", entry)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes, nil
}
