package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// errNotLoopback is returned for any target or source address outside
// 127.0.0.0/8 and ::1: roombench floods whatever it is pointed at, so it
// only ever points at this machine.
var errNotLoopback = errors.New("roombench only targets loopback (127.0.0.0/8 or ::1)")

// loopbackHost checks that host (an IP literal or "localhost") is loopback.
func loopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return fmt.Errorf("%q: want an IP address or localhost: %w", host, errNotLoopback)
	}
	if !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%s: %w", ip, errNotLoopback)
	}
	return nil
}

// checkURL parses a ws:// or http:// base URL and refuses non-loopback hosts.
func checkURL(flagName, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-%s %q: %w", flagName, raw, err)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return nil, fmt.Errorf("-%s %q: scheme must be one of %v", flagName, raw, schemes)
	}
	if err := loopbackHost(u.Hostname()); err != nil {
		return nil, fmt.Errorf("-%s %q: %w", flagName, raw, err)
	}
	return u, nil
}

// checkHostPort refuses a host:port that is not loopback.
func checkHostPort(flagName, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-%s %q: %w", flagName, addr, err)
	}
	if err := loopbackHost(host); err != nil {
		return fmt.Errorf("-%s %q: %w", flagName, addr, err)
	}
	return nil
}

// maxNodes bounds the addresses in one list flag (-url, -admin,
// -admin-grpc, -server-pid).
const maxNodes = 256

// splitList splits a comma-separated flag value into its trimmed entries;
// an empty entry is a mistake.
func splitList(flagName, raw string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("-%s %q: an empty entry in the list", flagName, raw)
		}
		out = append(out, part)
		if len(out) > maxNodes {
			return nil, fmt.Errorf("-%s: more than %d entries", flagName, maxNodes)
		}
	}
	return out, nil
}

// checkURLs is checkURL over a comma-separated list.
func checkURLs(flagName, raw string, schemes ...string) ([]*url.URL, error) {
	parts, err := splitList(flagName, raw)
	if err != nil {
		return nil, err
	}
	out := make([]*url.URL, len(parts))
	for i, part := range parts {
		if out[i], err = checkURL(flagName, part, schemes...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkHostPorts is checkHostPort over a comma-separated list.
func checkHostPorts(flagName, raw string) ([]string, error) {
	parts, err := splitList(flagName, raw)
	if err != nil {
		return nil, err
	}
	for _, part := range parts {
		if err := checkHostPort(flagName, part); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// place is where client i of a run goes: its room, its node (an index into
// -url) and its source address (an index into -source-addrs; srcs 0 is
// none). Clients are round-robin over the rooms, and each room's members
// round-robin over the nodes, so that every room has members on every node
// (with at least rooms*nodes clients) whatever the two counts; with one
// room, client i is on node i%nodes. Each node's clients take the source
// addresses in turn, so that every node sees each address about equally
// often (roomd bounds the sockets per remote IP on each node). With one
// node this is room i%rooms and source i%srcs, as before there were nodes.
func place(i, rooms, nodes, srcs int) (room, node, src int) {
	room = i % rooms
	node = (i / rooms) % nodes
	if srcs > 0 {
		k := room + rooms*(i/(rooms*nodes)) // i's index among its node's clients
		src = k % srcs
	}
	return room, node, src
}

// publishNode is the admin address (an index into -admin-grpc or -admin)
// publisher p publishes through: the publishers of each room, which are p,
// p+rooms, p+2*rooms, ..., are round-robin over the addresses, so that with
// as many publishers per room as addresses every room is published to from
// every node; with one room, publisher p uses address p%addrs.
func publishNode(p, rooms, addrs int) int { return (p / rooms) % addrs }

// maxSourceAddrs bounds a -source-addrs range.
const maxSourceAddrs = 1024

// parseSourceAddrs reads "" (let the kernel choose), a comma-separated list
// of loopback IPs, or IPv4 ranges such as 127.0.0.1-127.0.0.50.
func parseSourceAddrs(spec string) ([]netip.Addr, error) {
	if spec == "" {
		return nil, nil
	}
	var out []netip.Addr
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, fmt.Errorf("-source-addrs: %q: %w", part, err)
		}
		last := first
		if isRange {
			if last, err = netip.ParseAddr(hi); err != nil {
				return nil, fmt.Errorf("-source-addrs: %q: %w", part, err)
			}
			if !first.Is4() || !last.Is4() || last.Less(first) {
				return nil, fmt.Errorf("-source-addrs: %q: a range is two IPv4 addresses, low-high", part)
			}
		}
		for a := first; ; a = a.Next() {
			if !a.IsLoopback() {
				return nil, fmt.Errorf("-source-addrs: %s: %w", a, errNotLoopback)
			}
			out = append(out, a)
			if len(out) > maxSourceAddrs {
				return nil, fmt.Errorf("-source-addrs: more than %d addresses", maxSourceAddrs)
			}
			if a == last {
				break
			}
		}
	}
	return out, nil
}
