package wsedge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"roomd/rooms"
)

// proxyV2 builds a version 2 header: command (0 LOCAL, 1 PROXY), the
// family of src and dst (or 0 with neither), and tlvs after the addresses.
func proxyV2(command byte, src, dst netip.AddrPort, tlvs []byte) []byte {
	var addrs []byte
	family := byte(v2FamilyUnspec)
	switch {
	case src.Addr().Is4():
		family = v2FamilyInet
		addrs = append(append(addrs, src.Addr().AsSlice()...), dst.Addr().AsSlice()...)
	case src.Addr().Is6():
		family = v2FamilyInet6
		addrs = append(append(addrs, src.Addr().AsSlice()...), dst.Addr().AsSlice()...)
	}
	if src.IsValid() {
		addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
		addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	}
	h := append([]byte(nil), v2Signature...)
	h = append(h, 0x20|command, family<<4|v2TransStream)
	h = binary.BigEndian.AppendUint16(h, uint16(len(addrs)+len(tlvs)))
	return append(append(h, addrs...), tlvs...)
}

func TestReadProxyHeader(t *testing.T) {
	src4, dst4 := netip.MustParseAddrPort("198.51.100.7:4242"), netip.MustParseAddrPort("192.0.2.1:443")
	src6, dst6 := netip.MustParseAddrPort("[2001:db8::7]:4243"), netip.MustParseAddrPort("[2001:db8::1]:443")
	longTLV := append([]byte{0x04, 0x03, 0x00}, bytes.Repeat([]byte("x"), 768)...)
	for _, tc := range []struct {
		name   string
		header []byte
		want   string // the client; "local" for none; "" for a refusal
	}{
		{"v1 TCP4", []byte("PROXY TCP4 198.51.100.7 192.0.2.1 4242 443\r\n"), "198.51.100.7:4242"},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 4243 443\r\n"), "[2001:db8::7]:4243"},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), "local"},
		{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), "local"},
		{"v1 TCP4 with an IPv6 address", []byte("PROXY TCP4 2001:db8::7 192.0.2.1 4242 443\r\n"), ""},
		{"v1 TCP6 with an IPv4 address", []byte("PROXY TCP6 198.51.100.7 2001:db8::1 4242 443\r\n"), ""},
		{"v1 two spaces", []byte("PROXY TCP4  198.51.100.7 192.0.2.1 4242 443\r\n"), ""},
		{"v1 missing a port", []byte("PROXY TCP4 198.51.100.7 192.0.2.1 4242\r\n"), ""},
		{"v1 port with a leading zero", []byte("PROXY TCP4 198.51.100.7 192.0.2.1 04242 443\r\n"), ""},
		{"v1 port out of range", []byte("PROXY TCP4 198.51.100.7 192.0.2.1 65536 443\r\n"), ""},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 2001:db8::1 4242 443\r\n"), ""},
		{"v1 no CR", []byte("PROXY TCP4 198.51.100.7 192.0.2.1 4242 443\n"), ""},
		{"v1 lowercase", []byte("PROXY tcp4 198.51.100.7 192.0.2.1 4242 443\r\n"), ""},
		{"v1 too long", []byte("PROXY TCP4 198.51.100.7 192.0.2.1 4242 443" + strings.Repeat(" ", 80) + "\r\n"), ""},
		{"v1 never ends", []byte("PROXY TCP4 198.51.100.7 " + strings.Repeat("1", 300)), ""},
		{"v2 IPv4", proxyV2(v2CmdProxy, src4, dst4, nil), "198.51.100.7:4242"},
		{"v2 IPv6", proxyV2(v2CmdProxy, src6, dst6, nil), "[2001:db8::7]:4243"},
		{"v2 IPv4-mapped IPv6", proxyV2(v2CmdProxy, netip.MustParseAddrPort("[::ffff:198.51.100.7]:80"), dst6, nil), "198.51.100.7:80"},
		{"v2 with TLVs longer than the buffer", proxyV2(v2CmdProxy, src4, dst4, longTLV), "198.51.100.7:4242"},
		{"v2 LOCAL", proxyV2(v2CmdLocal, netip.AddrPort{}, netip.AddrPort{}, nil), "local"},
		{"v2 LOCAL with addresses", proxyV2(v2CmdLocal, src4, dst4, nil), "local"},
		{"v2 unspecified family", proxyV2(v2CmdProxy, netip.AddrPort{}, netip.AddrPort{}, []byte{1, 2, 3}), "local"},
		{"v2 version 1", func() []byte { h := proxyV2(v2CmdProxy, src4, dst4, nil); h[12] = 0x11; return h }(), ""},
		{"v2 command 2", func() []byte { h := proxyV2(v2CmdProxy, src4, dst4, nil); h[12] = 0x22; return h }(), ""},
		{"v2 datagram", func() []byte { h := proxyV2(v2CmdProxy, src4, dst4, nil); h[13] = 0x12; return h }(), ""},
		{"v2 family 4", func() []byte { h := proxyV2(v2CmdProxy, src4, dst4, nil); h[13] = 0x41; return h }(), ""},
		{"v2 address block too short", func() []byte { h := proxyV2(v2CmdProxy, src6, dst6, nil); h[15] = 20; return h[:16+20] }(), ""},
		{"v2 cut short", proxyV2(v2CmdProxy, src6, dst6, nil)[:30], ""},
		{"v2 length beyond what comes", func() []byte { h := proxyV2(v2CmdProxy, src4, dst4, nil); h[14] = 0xff; return h }(), ""},
		{"no header: HTTP", []byte("GET /ws/r HTTP/1.1\r\nHost: x\r\n\r\n"), ""},
		{"no header: TLS", []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x00, 0x00}, ""},
		{"nothing", nil, ""},
	} {
		const after = "GET /ws/r HTTP/1.1\r\n"
		input := tc.header
		if tc.want != "" {
			input = append(slices.Clip(input), after...)
		}
		br := bufio.NewReaderSize(bytes.NewReader(input), proxyBufSize)
		src, local, err := readProxyHeader(br)
		got := ""
		switch {
		case err != nil:
			if !errors.Is(err, errBadProxyHeader) {
				t.Errorf("%s: error %v does not wrap errBadProxyHeader", tc.name, err)
			}
		case local:
			got = "local"
		default:
			got = src.String()
		}
		if got != tc.want {
			t.Errorf("%s: got %q (%v), want %q", tc.name, got, err, tc.want)
			continue
		}
		if tc.want != "" {
			if rest, _ := io.ReadAll(br); string(rest) != after {
				t.Errorf("%s: %q follows the header, want %q", tc.name, rest, after)
			}
		}
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.7 192.0.2.1 4242 443\r\nGET"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(v2CmdProxy, netip.MustParseAddrPort("[2001:db8::7]:1"), netip.MustParseAddrPort("[2001:db8::1]:2"), []byte{1, 0, 1, 'x'}))
	f.Add(proxyV2(v2CmdLocal, netip.AddrPort{}, netip.AddrPort{}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), proxyBufSize)
		src, local, err := readProxyHeader(br)
		if err != nil || local {
			return
		}
		if !src.Addr().IsValid() || src.Addr().Is4In6() || src.Addr().Zone() != "" {
			t.Errorf("%q gave %v", data, src)
		}
	})
}

// proxyDialer is a WebSocket dialer that sends header first on each
// socket, from the loopback address from (nil: any).
func proxyDialer(header []byte, from net.IP) *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{}
		if from != nil {
			d.LocalAddr = &net.TCPAddr{IP: from}
		}
		c, err := d.DialContext(ctx, network, addr)
		if err == nil && header != nil {
			_, err = c.Write(header)
		}
		return c, err
	}}
}

func startProxied(t *testing.T, trusted string, cfg Config) *listenedEdge {
	t.Helper()
	prefixes, err := ParseTrustedProxies(trusted)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TrustedProxies, cfg.ProxyProtocol = prefixes, true
	if cfg.ProxyTimeout == 0 {
		cfg.ProxyTimeout = 5 * time.Second
	}
	return startListened(t, cfg, 5*time.Second)
}

// With the PROXY protocol the header's client is the socket's: what the
// edge reports and what -max-conns-per-ip counts, from accept on.
func TestProxyProtocolNamesTheClient(t *testing.T) {
	l := startProxied(t, "127.0.0.1", Config{MaxConnsPerIP: 1})
	v1 := []byte("PROXY TCP4 198.51.100.7 127.0.0.1 4242 80\r\n")
	v2 := proxyV2(v2CmdProxy, netip.MustParseAddrPort("[2001:db8::7]:4243"), netip.MustParseAddrPort("[::1]:80"), []byte{0x04, 0x00, 0x02, 'h', 'i'})
	first, _, err := proxyDialer(v1, nil).Dial("ws://"+l.addr+"/ws/r", nil)
	if err != nil {
		t.Fatalf("v1: %v", err)
	}
	defer first.Close()
	sessionDialer := proxyDialer(v2, nil)
	sessionDialer.Subprotocols = []string{"roomd.v1.json"}
	second, _, err := sessionDialer.Dial("ws://"+l.addr+"/ws?user=bob", nil)
	if err != nil {
		t.Fatalf("v2: %v", err)
	}
	defer second.Close()
	if got, want := l.clientAddrs(), []string{"198.51.100.7:4242", "[2001:db8::7]:4243"}; !slices.Equal(got, want) {
		t.Errorf("client addresses %q, want %q", got, want)
	}
	// The upgraded socket still takes the flusher's non-blocking writes.
	first.WriteMessage(websocket.TextMessage, []byte("echo"))
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := first.ReadMessage(); err != nil || string(data) != "echo" {
		t.Fatalf("echo: %q %v", data, err)
	}
	// The session's welcome is written once its socket is attached: only
	// then does the server hold the descriptor checked below.
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := second.ReadMessage(); err != nil || !strings.Contains(string(data), `"welcome"`) {
		t.Fatalf("welcome: %q %v", data, err)
	}
	l.edge.mu.Lock()
	for c := range l.edge.conns {
		c.mu.Lock()
		if c.raw == nil {
			t.Errorf("%s: no raw descriptor behind the PROXY header", c.ClientAddr())
		}
		c.mu.Unlock()
	}
	l.edge.mu.Unlock()

	// The same client again, at its limit: the bare 429, as at accept.
	_, resp, err := proxyDialer(v1, nil).Dial("ws://"+l.addr+"/ws/r", nil)
	expectRefused(t, "a second socket of 198.51.100.7", resp, err, http.StatusTooManyRequests, "too many connections from 198.51.100.7 (limit 1)\n")

	// LOCAL (the proxy's own connection): the peer stands, and the peer
	// being a trusted proxy, its X-Forwarded-For names the client.
	local := proxyV2(v2CmdLocal, netip.AddrPort{}, netip.AddrPort{}, nil)
	third, _, err := proxyDialer(local, nil).Dial("ws://"+l.addr+"/ws/r", forwarded("203.0.113.9"))
	if err != nil {
		t.Fatalf("LOCAL: %v", err)
	}
	defer third.Close()
	if got := l.clientAddrs(); !slices.Contains(got, "203.0.113.9") {
		t.Errorf("client addresses %q, want 203.0.113.9 among them", got)
	}
	first.Close()
	second.Close()
	third.Close()
	l.waitForCounts(t, 0, 0)
}

// Without a header, with a bad one or from a peer that is no trusted
// proxy, a socket is closed without an answer; a header that does not
// come in time is cut off; and nothing stays counted.
func TestProxyProtocolRefusals(t *testing.T) {
	l := startProxied(t, "127.0.0.2", Config{ProxyTimeout: 300 * time.Millisecond})
	from2 := net.IPv4(127, 0, 0, 2)
	dial := func(from net.IP, data string) net.Conn {
		t.Helper()
		d := net.Dialer{}
		if from != nil {
			d.LocalAddr = &net.TCPAddr{IP: from}
		}
		c, err := d.Dial("tcp", l.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, data)
		return c
	}
	const upgrade = "GET /ws/r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	const header = "PROXY TCP4 198.51.100.7 127.0.0.1 4242 80\r\n"

	// The trusted proxy with a header is served.
	if got := readSome(t, dial(from2, header+upgrade)); !strings.HasPrefix(got, "HTTP/1.1 101") {
		t.Fatalf("trusted proxy with a header: %.40q, want a 101", got)
	}
	for name, c := range map[string]net.Conn{
		"a valid header from an untrusted peer": dial(net.IPv4(127, 0, 0, 1), header+upgrade),
		"no header":                             dial(from2, upgrade),
		"a malformed header":                    dial(from2, "PROXY TCP4 198.51.100.7 127.0.0.1 4242\r\n"+upgrade),
	} {
		if got := waitClosedByServer(t, c); got != "" {
			t.Errorf("%s: got %.40q, want the socket closed without a byte", name, got)
		}
	}
	start := time.Now()
	if got := waitClosedByServer(t, dial(from2, "PROXY TCP4 198.51.1")); got != "" {
		t.Errorf("a slow header: got %.40q, want the socket closed without a byte", got)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a slow header was cut after %v, want about 300ms", took)
	}
	l.waitForCounts(t, 1, 1) // the upgraded one
}

// readSome reads what the server sends first.
func readSome(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil && n == 0 {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

// Over TLS the PROXY header comes before the handshake, and a client over
// its limit is closed without an answer.
func TestProxyProtocolUnderTLSListener(t *testing.T) {
	edge := New(Config{Hub: rooms.NewHub(rooms.Config{}), ProxyProtocol: true, MaxConnsPerIP: 1,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wrapped := edge.Listener(ln, true)
	defer wrapped.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := wrapped.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	header := "PROXY TCP4 198.51.100.7 127.0.0.1 4242 443\r\n"
	var clients []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, header+"hello")
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	defer first.Close()
	defer second.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "hello" || first.RemoteAddr().String() != "198.51.100.7:4242" {
		t.Errorf("first: read %q %v from %v, want hello from 198.51.100.7:4242", buf, err, first.RemoteAddr())
	}
	if n, err := second.Read(buf); n != 0 || err == nil || !strings.Contains(err.Error(), "too many connections from 198.51.100.7") {
		t.Errorf("second: read %d bytes, %v; want the per-IP refusal", n, err)
	}
	second.Close()
	clients[1].SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, _ := io.ReadAll(clients[1]); len(got) != 0 {
		t.Errorf("over TLS the refused client read %q, want nothing", got)
	}
}
