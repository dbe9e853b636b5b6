package wsedge

import (
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestForwardedClientIsTheRightmostUntrustedAddress(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	e := &Edge{cfg: Config{TrustedProxies: trusted}}
	for _, tc := range []struct {
		name   string
		values []string
		want   string // "" means no client: the peer's address stands
	}{
		{"no header", nil, ""},
		{"one client", []string{"203.0.113.5"}, "203.0.113.5"},
		{"client, then a trusted hop", []string{"203.0.113.5, 10.0.0.2"}, "203.0.113.5"},
		{"what the client sent is left of it", []string{"198.51.100.9, 203.0.113.5, 10.0.0.2"}, "203.0.113.5"},
		{"garbage the client sent is never read", []string{"garbage, ,unknown, 203.0.113.5"}, "203.0.113.5"},
		{"a spoofed trusted address left of the client", []string{"10.0.0.9, 203.0.113.5, 192.0.2.1"}, "203.0.113.5"},
		{"several header lines, in order", []string{"198.51.100.9", "203.0.113.5, 10.0.0.2", "192.0.2.1"}, "203.0.113.5"},
		{"the client in the first line", []string{"203.0.113.5", "10.0.0.3,10.0.0.4"}, "203.0.113.5"},
		{"every hop trusted: the leftmost", []string{"10.0.0.1, 10.0.0.2", "192.0.2.1"}, "10.0.0.1"},
		{"with a port", []string{"203.0.113.5:4711, 10.0.0.2"}, "203.0.113.5:4711"},
		{"IPv6 with a port", []string{"[2001:db9::1]:443"}, "[2001:db9::1]:443"},
		{"IPv6", []string{"2001:db9::1, 2001:db8::5"}, "2001:db9::1"},
		{"IPv6 in brackets", []string{"[2001:db9::1]"}, "2001:db9::1"},
		{"IPv4-mapped IPv6", []string{"::ffff:203.0.113.5"}, "203.0.113.5"},
		{"tabs and spaces around entries", []string{" \t203.0.113.5\t , 10.0.0.2 "}, "203.0.113.5"},
		{"unknown where the walk reads", []string{"203.0.113.5, unknown"}, ""},
		{"obfuscated identifier", []string{"_hidden"}, ""},
		{"an empty entry past a trusted hop", []string{"203.0.113.5,, 10.0.0.2"}, ""},
		{"an empty header", []string{""}, ""},
		{"an empty line after the client's", []string{"203.0.113.5", " "}, ""},
		{"a zone", []string{"fe80::1%eth0"}, ""},
		{"IPv4 in brackets", []string{"[203.0.113.5]"}, ""},
		{"IPv6 without brackets but a port", []string{"2001:db9::1:443x"}, ""},
		{"port out of range", []string{"203.0.113.5:99999"}, ""},
		{"empty port", []string{"203.0.113.5:"}, ""},
		{"three octets", []string{"203.0.113"}, ""},
		{"space-separated", []string{"203.0.113.5 10.0.0.2"}, ""},
		{"a host name", []string{"client.example.com"}, ""},
	} {
		got, ok := forwardedClient(tc.values, e.trusted)
		gotText := ""
		if ok {
			gotText = got.Addr().String()
			if got.Port() != 0 {
				gotText = got.String()
			}
		}
		if gotText != tc.want {
			t.Errorf("%s: X-Forwarded-For %q gave %q (ok %v), want %q", tc.name, tc.values, gotText, ok, tc.want)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.1.2.3/8, 192.0.2.7 ,2001:db8::/32,,::ffff:172.16.0.0/108, ::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("::1/128"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf("empty list: %v %v, want nothing", got, err)
	}
	for _, bad := range []string{"10.0.0.300", "10.0.0.0/33", "fe80::1%eth0", "proxy.example.com", "10.0.0.0/8/8", "10.0.0.1-10.0.0.9"} {
		_, err := ParseTrustedProxies("10.0.0.1," + bad)
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("%q: %v, want an error naming it", bad, err)
		}
	}
}

// clientAddrs lists what the edge's connections report as their client's
// address, sorted.
func (l *listenedEdge) clientAddrs() []string {
	l.edge.mu.Lock()
	defer l.edge.mu.Unlock()
	var addrs []string
	for c := range l.edge.conns {
		addrs = append(addrs, c.client.Info().RemoteAddr)
	}
	slices.Sort(addrs)
	return addrs
}

func forwarded(addrs ...string) http.Header {
	h := http.Header{}
	for _, a := range addrs {
		h.Add("X-Forwarded-For", a)
	}
	return h
}

// expectRefused checks an upgrade was refused with status and body.
func expectRefused(t *testing.T, what string, resp *http.Response, err error, status int, body string) {
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

// From a trusted proxy, the client X-Forwarded-For names is what the edge
// reports and what -max-conns-per-ip counts: clients behind one proxy each
// get their own limit, and every count is given back.
func TestTrustedProxyForwardsTheClient(t *testing.T) {
	l := startListened(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxConnsPerIP: 1}, time.Minute)
	ann, _, err := l.dialWS("/ws/r", forwarded("198.51.100.1"))
	if err != nil {
		t.Fatalf("first client: %v", err)
	}
	defer ann.Close()
	bob, _, err := l.dialWS("/ws?user=bob", forwarded("203.0.113.250, 198.51.100.2:5555", "127.0.0.1"))
	if err != nil {
		t.Fatalf("second client through the same proxy: %v", err)
	}
	defer bob.Close()
	if got, want := l.clientAddrs(), []string{"198.51.100.1", "198.51.100.2:5555"}; !slices.Equal(got, want) {
		t.Errorf("client addresses %q, want %q", got, want)
	}

	// ann again, by raw relay or client protocol: over her limit.
	_, resp, err := l.dialWS("/ws/r", forwarded("10.1.1.1, 198.51.100.1"))
	expectRefused(t, "a second socket of 198.51.100.1", resp, err, http.StatusTooManyRequests, "too many connections from 198.51.100.1 (limit 1)\n")
	_, resp, err = l.dialWS("/ws?user=ann", forwarded("198.51.100.1"))
	expectRefused(t, "a second session of 198.51.100.1", resp, err, http.StatusTooManyRequests, "too many connections from 198.51.100.1 (limit 1)\n")

	// No X-Forwarded-For: the proxy itself is the client, counted alike.
	self, _, err := l.dialWS("/ws/r", nil)
	if err != nil {
		t.Fatalf("the proxy's own request: %v", err)
	}
	if got := l.clientAddrs(); len(got) != 3 || !strings.HasPrefix(got[0], "127.0.0.1:") {
		t.Errorf("client addresses %q, want the proxy's own among them", got)
	}
	self.Close()
	ann.Close()
	bob.Close()
	l.waitForCounts(t, 0, 0)

	// Many connects and closes leave nothing counted: the next one fits.
	for i := range 20 {
		ws, _, err := l.dialWS("/ws/r", forwarded("198.51.100.1"))
		if err != nil {
			t.Fatalf("connect %d of 198.51.100.1: %v", i, err)
		}
		ws.Close()
		l.waitForCounts(t, 0, 0)
	}
}

// From a peer that is not a trusted proxy, X-Forwarded-For is ignored: it
// changes neither the reported address nor the per-IP count.
func TestUntrustedPeerCannotForward(t *testing.T) {
	l := startListened(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, MaxConnsPerIP: 1}, time.Minute)
	ws, _, err := l.dialWS("/ws/r", forwarded("198.51.100.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := l.clientAddrs(); len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.1:") {
		t.Errorf("client addresses %q, want the TCP peer's", got)
	}
	_, resp, err := l.dialWS("/ws/r", forwarded("198.51.100.2"))
	expectRefused(t, "a second socket with another X-Forwarded-For", resp, err, http.StatusTooManyRequests, "too many connections from 127.0.0.1 (limit 1)\n")
}

// Room quotas count the forwarded client too.
func TestTrustedProxyClientsHaveTheirOwnRoomQuota(t *testing.T) {
	l := startListened(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, MaxRoomsPerIP: 1}, time.Minute)
	for _, tc := range []struct{ room, client string }{{"a1", "198.51.100.1"}, {"b1", "198.51.100.2"}} {
		ws, _, err := l.dialWS("/ws/"+tc.room, forwarded(tc.client))
		if err != nil {
			t.Fatalf("%s making %s: %v", tc.client, tc.room, err)
		}
		defer ws.Close()
	}
	_, resp, err := l.dialWS("/ws/a2", forwarded("198.51.100.1"))
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("198.51.100.1 making a second room: %v %v, want 429", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "address 198.51.100.1") {
		t.Errorf("429 body %q, want it to name the forwarded address", body)
	}
}

func FuzzForwardedFor(f *testing.F) {
	for _, seed := range []string{"203.0.113.5, 10.0.0.2", "[2001:db9::1]:443,10.0.0.1", "unknown", "", ",,,", "::ffff:1.2.3.4:80"} {
		f.Add(seed)
	}
	e := &Edge{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	f.Fuzz(func(t *testing.T, header string) {
		got, ok := forwardedClient([]string{header}, e.trusted)
		if !ok {
			return
		}
		if !got.Addr().IsValid() || got.Addr().Is4In6() || got.Addr().Zone() != "" {
			t.Errorf("%q gave %v", header, got)
		}
		if again, ok := parseForwardedAddr(got.String()); !ok || again != got {
			t.Errorf("%q gave %v, which parses back as %v (%v)", header, got, again, ok)
		}
	})
}
