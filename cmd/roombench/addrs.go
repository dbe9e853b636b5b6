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
