package main

// Behind proxies: -trusted-proxies and X-Forwarded-For, -proxy-protocol,
// end to end through ListClients and the per-IP limit.

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	roomdv1 "roomd/gen/roomd/v1"
)

func TestTrustedProxiesFlags(t *testing.T) {
	cfg, err := parseConfig(nil, func(k string) string {
		return map[string]string{"ROOMD_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7", "ROOMD_PROXY_PROTOCOL": "true"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.proxies(); len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.7/32" || !cfg.proxyProtocol {
		t.Errorf("from the environment: %v, proxy protocol %v", got, cfg.proxyProtocol)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-trusted-proxies", "10.0.0.0/8,10.0.0.300"}, `roomd: -trusted-proxies: "10.0.0.300" is not an IP address or CIDR prefix`},
		{[]string{"-trusted-proxies", "proxy.internal"}, `roomd: -trusted-proxies: "proxy.internal" is not`},
		{[]string{"-proxy-protocol"}, "roomd: -proxy-protocol needs -trusted-proxies"},
	} {
		var stderr bytes.Buffer
		code := roomd(context.Background(), tc.args, func(string) string { return "" }, io.Discard, &stderr)
		if code != exitCannotStart || !strings.HasPrefix(stderr.String(), tc.want) {
			t.Errorf("roomd %q: exit %d, %q; want %d and %q", tc.args, code, stderr.String(), exitCannotStart, tc.want)
		}
	}
}

// dialVia opens a raw relay WebSocket to room as if through a proxy that
// sent these X-Forwarded-For values.
func (s *testServer) dialVia(room string, xff ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	for _, v := range xff {
		h.Add("X-Forwarded-For", v)
	}
	u := url.URL{Scheme: "ws", Host: s.public, Path: "/ws/" + room}
	return websocket.DefaultDialer.Dial(u.String(), h)
}

// remoteAddrs is what ListClients says of room's clients, sorted.
func remoteAddrs(t *testing.T, s *testServer, room string) []string {
	t.Helper()
	resp, err := s.admin.ListClients(adminContext(t), &roomdv1.ListClientsRequest{RoomId: room})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, c := range resp.GetClients() {
		addrs = append(addrs, c.GetRemoteAddr())
	}
	slices.Sort(addrs)
	return addrs
}

// refusedWith checks a dial was refused with status and body.
func refusedWith(t *testing.T, what string, resp *http.Response, err error, status int, body string) {
	t.Helper()
	if resp == nil {
		t.Fatalf("%s: %v, want HTTP %d", what, err, status)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || string(got) != body {
		t.Errorf("%s: HTTP %d %q, want %d %q", what, resp.StatusCode, got, status, body)
	}
}

// From a trusted proxy, X-Forwarded-For names the client: ListClients
// shows it, and -max-conns-per-ip counts it, so two users behind one proxy
// are two, and one user twice is refused as a direct client would be.
func TestTrustedProxiesHonourXForwardedFor(t *testing.T) {
	s := startServer(t, "-trusted-proxies", "127.0.0.1, 10.0.0.0/8", "-max-conns-per-ip", "1")
	ann, _, err := s.dialVia("lobby", "198.51.100.1")
	if err != nil {
		t.Fatalf("ann through the proxy: %v", err)
	}
	defer ann.Close()
	// bob's request came through two proxies; what he sent himself, left
	// of his address, is not believed.
	bob, _, err := s.dialVia("lobby", "203.0.113.66, 198.51.100.2", "10.1.2.3")
	if err != nil {
		t.Fatalf("bob through the same proxy: %v", err)
	}
	defer bob.Close()
	if got, want := remoteAddrs(t, s, "lobby"), []string{"198.51.100.1", "198.51.100.2"}; !slices.Equal(got, want) {
		t.Errorf("ListClients remoteAddr %q, want %q", got, want)
	}
	_, resp, err := s.dialVia("lobby", "198.51.100.1")
	refusedWith(t, "ann's second connection", resp, err, http.StatusTooManyRequests, "too many connections from 198.51.100.1 (limit 1)\n")
	if n := s.scrape(t)["roomd_upgrade_refusals_total{status=429}"]; n != 1 {
		t.Errorf("roomd_upgrade_refusals_total{status=429} is %v after one refusal", n)
	}

	// Closed connections give their count back, however many come and go.
	ann.Close()
	for i := range 10 {
		var ws *websocket.Conn
		eventually(t, "ann may connect again", func() bool {
			ws, _, err = s.dialVia("lobby", "198.51.100.1")
			return err == nil
		})
		if i == 0 && !slices.Contains(remoteAddrs(t, s, "lobby"), "198.51.100.1") {
			t.Errorf("ann reconnected, but ListClients has %q", remoteAddrs(t, s, "lobby"))
		}
		ws.Close()
	}
	eventually(t, "ann may connect once more", func() bool {
		ws, _, err := s.dialVia("lobby", "198.51.100.1")
		if err == nil {
			ws.Close()
		}
		return err == nil
	})
}

// From a peer that is not a trusted proxy X-Forwarded-For is ignored: a
// client cannot rename itself nor escape its limit by sending one.
func TestTrustedProxiesIgnoreXForwardedForFromOthers(t *testing.T) {
	s := startServer(t, "-trusted-proxies", "192.0.2.0/24", "-max-conns-per-ip", "1")
	ws, _, err := s.dialVia("lobby", "198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := remoteAddrs(t, s, "lobby"); len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.1:") {
		t.Errorf("ListClients remoteAddr %q, want the TCP peer 127.0.0.1:port", got)
	}
	_, resp, err := s.dialVia("lobby", "198.51.100.2")
	refusedWith(t, "a second socket claiming another address", resp, err, http.StatusTooManyRequests, "too many connections from 127.0.0.1 (limit 1)\n")
}

// proxyHeaderV2 is a PROXY protocol version 2 header for a TCP client src
// connecting to dst.
func proxyHeaderV2(src, dst netip.AddrPort) []byte {
	// The signature, version 2 and PROXY, then TCP over IPv4 or IPv6.
	h := []byte("\r\n\r\n\x00\r\nQUIT\n\x21")
	family, size := byte(0x11), 12
	if src.Addr().Is6() {
		family, size = 0x21, 36
	}
	h = binary.BigEndian.AppendUint16(append(h, family), uint16(size))
	h = append(append(h, src.Addr().AsSlice()...), dst.Addr().AsSlice()...)
	h = binary.BigEndian.AppendUint16(h, src.Port())
	return binary.BigEndian.AppendUint16(h, dst.Port())
}

// dialProxied opens a TCP connection, writes header on it raw, then does
// a WebSocket handshake over it.
func (s *testServer) dialProxied(room string, header []byte) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_, err = c.Write(header)
		}
		return c, err
	}}
	return d.Dial("ws://"+s.public+"/ws/"+room+"?user=u", nil)
}

// With -proxy-protocol the PROXY header names the client, version 1 or 2;
// a socket without one is refused, and so is one from a peer that is not
// a trusted proxy.
func TestProxyProtocol(t *testing.T) {
	s := startServer(t, "-trusted-proxies", "127.0.0.1", "-proxy-protocol", "-max-conns-per-ip", "1")
	v1, _, err := s.dialProxied("lobby", []byte("PROXY TCP4 198.51.100.7 127.0.0.1 4242 8080\r\n"))
	if err != nil {
		t.Fatalf("version 1: %v", err)
	}
	defer v1.Close()
	v2, _, err := s.dialProxied("lobby", proxyHeaderV2(netip.MustParseAddrPort("[2001:db8::7]:4243"), netip.MustParseAddrPort("[2001:db8::1]:8080")))
	if err != nil {
		t.Fatalf("version 2: %v", err)
	}
	defer v2.Close()
	if got, want := remoteAddrs(t, s, "lobby"), []string{"198.51.100.7:4242", "[2001:db8::7]:4243"}; !slices.Equal(got, want) {
		t.Errorf("ListClients remoteAddr %q, want %q", got, want)
	}
	_, resp, err := s.dialProxied("lobby", []byte("PROXY TCP4 198.51.100.7 127.0.0.1 4343 8080\r\n"))
	refusedWith(t, "198.51.100.7 again", resp, err, http.StatusTooManyRequests, "too many connections from 198.51.100.7 (limit 1)\n")
	if ws, _, err := s.dialVia("lobby"); err == nil {
		ws.Close()
		t.Error("a socket without a PROXY header was upgraded")
	}

	// Only -trusted-proxies may send the header: here 127.0.0.1 is not.
	other := startServer(t, "-trusted-proxies", "127.0.0.2", "-proxy-protocol")
	if ws, _, err := other.dialProxied("lobby", []byte("PROXY TCP4 198.51.100.8 127.0.0.1 4242 8080\r\n")); err == nil {
		ws.Close()
		t.Error("a PROXY header from an untrusted peer was believed")
	}
	eventually(t, "the refusal is logged", func() bool {
		return strings.Contains(other.logs.String(), `msg="refusing sockets from an address not in -trusted-proxies: with -proxy-protocol every socket must come from a trusted proxy" latest_ip=127.0.0.1`)
	})
}
