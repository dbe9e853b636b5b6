package main

// The browser SDK (wsedge/web/roomd.js) in Chromium: the README's example
// as printed, requests that wait for the connection and the join or fail
// at once, and the reconnect backoff.

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	roomdv1 "roomd/gen/roomd/v1"
)

// readmeSDKExample is the html block of the README's "Client protocol and
// SDK" section, read at test time so that the README and this test cannot
// drift apart.
func readmeSDKExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Client protocol and SDK\n")
	if !ok {
		t.Fatal(`README.md has no "## Client protocol and SDK" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```html\n")
	if !ok {
		t.Fatal("the SDK section of README.md has no html block")
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatal("the SDK section's html block does not end")
	}
	return block + "\n"
}

// recorder collects what a subscription to the browser yields, for tests
// to poll.
type recorder[T any] struct {
	mu    sync.Mutex
	items []T
}

// record subscribes now (before the page does anything) and collects until
// the test ends.
func record[T any](t *testing.T, tab context.Context, subscribe func(context.Context) iter.Seq2[T, error]) *recorder[T] {
	ctx, cancel := context.WithCancel(tab)
	events := subscribe(ctx)
	r := &recorder[T]{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			r.mu.Lock()
			r.items = append(r.items, ev)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// The README's SDK example, run exactly as printed from a page of another
// origin (only localhost:8080 becomes the test server's address), connects,
// joins and publishes: the publish is acked with a sequence, nothing throws,
// and another member receives 'hi'.
func TestBrowserREADMESDKExample(t *testing.T) {
	example := readmeSDKExample(t)
	if n := strings.Count(example, "localhost:8080"); n != 2 {
		t.Fatalf("the README's example names localhost:8080 %d times, want 2 (the import and the socket): update this test with it", n)
	}
	// The page's origin must be known before roomd starts (it goes into
	// -allowed-origins), and roomd's address before the page is served.
	var page string
	pages := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	origin := "http://" + pages.Listener.Addr().String()
	s := startServer(t, "-allowed-origins", origin)
	page = strings.ReplaceAll(example, "localhost:8080", s.public)
	pages.Start()
	t.Cleanup(pages.Close)

	bob := dialSession(t, s, "user=bob")
	bob.mustAck(join("lobby"))

	browser := newBrowser(t)
	console := record(t, browser, chromedp.Console)
	sent := record(t, browser, func(ctx context.Context) iter.Seq2[network.EventWebSocketFrameSent, error] {
		return chromedp.Events(ctx, network.WebSocketFrameSent)
	})
	received := record(t, browser, func(ctx context.Context) iter.Seq2[network.EventWebSocketFrameReceived, error] {
		return chromedp.Events(ctx, network.WebSocketFrameReceived)
	})
	ctx, cancel := within(browser, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	exceptions := func() []string {
		var texts []string
		for _, m := range console.all() {
			if m.IsException() {
				texts = append(texts, m.String())
			}
		}
		return texts
	}

	// The page's publish is acked with a sequence: the promise the example
	// awaits settles with it.
	var publishID string
	var ackSeq uint64
	eventually(t, "the page's publish is acked (or the page throws)", func() bool {
		if len(exceptions()) > 0 {
			return true
		}
		for _, f := range sent.all() {
			var req struct{ Op, ID string }
			if json.Unmarshal(f.Response.PayloadData, &req) == nil && req.Op == "publish" {
				publishID = req.ID
			}
		}
		for _, f := range received.all() {
			var ack struct {
				Type, ID string
				Seq      uint64
			}
			if json.Unmarshal(f.Response.PayloadData, &ack) == nil && ack.Type == "ack" && publishID != "" && ack.ID == publishID {
				ackSeq = ack.Seq
				return true
			}
		}
		return false
	})
	if ex := exceptions(); len(ex) > 0 {
		t.Fatalf("the example threw: %v", ex)
	}
	if ackSeq == 0 {
		t.Fatalf("the publish (request %q) was acked without a sequence", publishID)
	}
	// Another member receives the page's 'hi' with that sequence.
	msg := bob.nextOf("message")
	data, _ := json.Marshal(msg["data"])
	from, _ := msg["from"].(map[string]any)
	if string(data) != `{"text":"hi"}` || from["userId"] != "ann" || msg.num("seq") != ackSeq {
		t.Fatalf("bob got %v, want ann's {text: 'hi'} with seq %d", msg, ackSeq)
	}
	// A round trip to the page, so that anything it reported while the ack
	// was handled has arrived.
	evalJS[bool](t, ctx, `true`)
	if ex := exceptions(); len(ex) > 0 {
		t.Fatalf("the example threw: %v", ex)
	}
	var logged []string
	for _, m := range console.all() {
		logged = append(logged, m.Text)
	}
	want := []string{"connecting", "open", "members", "ann"}
	for _, w := range want {
		if !strings.Contains(strings.Join(logged, "\n"), w) {
			t.Errorf("the example's console %q lacks %q", logged, w)
		}
	}
}

// sdkPage opens a page of roomd's (so the default origin rule lets it
// connect) with the SDK imported as window.sdk.
func sdkPage(t *testing.T, browser context.Context, base string) context.Context {
	t.Helper()
	tab := newTab(t, browser)
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`import('/v1/roomd.js').then((m) => { window.sdk = m; return true; })`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	return tab
}

// settled is how a request's promise ended, as the page saw it.
type settled struct {
	OK      bool    `json:"ok"`
	Seq     float64 `json:"seq"`
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Ms      float64 `json:"ms"` // from the call until it settled
}

// settleJS evaluates a promise-valued expression and reports how it ended.
func settleJS(t *testing.T, tab context.Context, promise string) settled {
	t.Helper()
	ctx, cancel := within(tab, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[settled](`(async () => {
		const t0 = performance.now();
		try {
			const r = await (`+promise+`);
			return { ok: true, seq: r.seq || 0, ms: performance.now() - t0 };
		} catch (e) {
			return { ok: false, code: e.code || e.name, message: e.message, ms: performance.now() - t0 };
		}
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", promise, err)
	}
	return v
}

func TestSDKRequestsWaitForTheJoinOrFailAtOnce(t *testing.T) {
	s := startServer(t)
	browser := newBrowser(t)
	tab := sdkPage(t, browser, "http://"+s.public)
	evalJS[bool](t, tab, `window.connectAs = (user, opts = {}) => sdk.connect(location.origin.replace(/^http/, 'ws') + '/ws', { user, ...opts }); true`)

	t.Run("a publish before the connection waits for it and the join", func(t *testing.T) {
		got := settleJS(t, tab, `connectAs('ann').join('early').publish('first')`)
		if !got.OK || got.Seq == 0 {
			t.Fatalf("publish right after connect: %+v, want an ack with a sequence", got)
		}
	})

	t.Run("a publish that cannot connect times out clearly", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nowhere := ln.Addr().String()
		ln.Close()
		got := settleJS(t, tab, `(() => {
			const c = sdk.connect('ws://`+nowhere+`/ws', { user: 'ann', requestTimeoutMs: 800 });
			window.unreachable = c;
			return c.join('lobby').publish('lost?');
		})()`)
		evalJS[bool](t, tab, `unreachable.close(); true`)
		if got.OK || got.Code != "timeout" || !strings.Contains(got.Message, "waiting for a connection") || got.Ms < 700 || got.Ms > 5000 {
			t.Fatalf("publish with no server: %+v, want a timeout after 0.8 s that says it waited for a connection", got)
		}
	})

	t.Run("a join that fails rejects waiting and later requests at once", func(t *testing.T) {
		evalJS[bool](t, tab, `window.bad = connectAs('ann').join('no spaces'); window.badStates = [];
			bad.handlers.onState = (s, d) => badStates.push([s, d.code]); true`)
		// Made before the join's answer: it waited, and fails with it.
		waiting := settleJS(t, tab, `bad.publish('x')`)
		later := settleJS(t, tab, `bad.publish('y')`)
		for _, got := range []settled{waiting, later} {
			if got.OK || got.Code != "invalid_room" || !strings.Contains(got.Message, "invalid room id") || got.Ms > 3000 {
				t.Errorf("publish to a room that cannot be joined: %+v, want invalid_room at once", got)
			}
		}
		if states := evalJS[string](t, tab, `JSON.stringify(badStates)`); states != `[["failed","invalid_room"]]` {
			t.Errorf("room states %s, want failed with invalid_room", states)
		}
	})

	t.Run("banned: forbidden at once, and rejoin works once the ban is lifted", func(t *testing.T) {
		if _, err := s.admin.KickUser(context.Background(), &roomdv1.KickUserRequest{UserId: "eve", RoomId: "lobby", Reason: "spam", BanSeconds: 3600}); err != nil {
			t.Fatal(err)
		}
		got := settleJS(t, tab, `(window.eve = connectAs('eve').join('lobby')).publish('let me in')`)
		if got.OK || got.Code != "forbidden" || !strings.Contains(got.Message, `"eve" is banned from room "lobby"`) {
			t.Fatalf("publish while banned: %+v, want forbidden saying so", got)
		}
		if _, err := s.admin.Unban(context.Background(), &roomdv1.UnbanRequest{UserId: "eve"}); err != nil {
			t.Fatal(err)
		}
		if got := settleJS(t, tab, `eve.rejoin().publish('thanks')`); !got.OK || got.Seq == 0 {
			t.Fatalf("publish after rejoin: %+v, want an ack", got)
		}
	})

	t.Run("a deleted room and a kick from one room reject at once", func(t *testing.T) {
		evalJS[bool](t, tab, `window.bo = connectAs('bo'); window.doomed = bo.join('doomed'); window.stays = bo.join('stays'); true`)
		for _, room := range []string{"doomed", "stays"} {
			if got := settleJS(t, tab, room+`.publish('hello')`); !got.OK {
				t.Fatalf("publish to %s: %+v", room, got)
			}
		}
		if _, err := s.admin.DeleteRoom(context.Background(), &roomdv1.DeleteRoomRequest{RoomId: "doomed"}); err != nil {
			t.Fatal(err)
		}
		waitJS(t, tab, "the room is deleted", `doomed.state === 'deleted'`)
		if got := settleJS(t, tab, `doomed.publish('anyone?')`); got.OK || got.Code != "room_deleted" || got.Ms > 100 {
			t.Errorf("publish to a deleted room: %+v, want room_deleted at once", got)
		}
		if _, err := s.admin.KickUser(context.Background(), &roomdv1.KickUserRequest{UserId: "bo", RoomId: "stays", Reason: "cool off"}); err != nil {
			t.Fatal(err)
		}
		waitJS(t, tab, "bo is out of stays", `stays.state === 'kicked'`)
		if got := settleJS(t, tab, `stays.publish('sorry')`); got.OK || got.Code != "kicked" || !strings.Contains(got.Message, "cool off") {
			t.Errorf("publish after a kick from the room: %+v, want kicked with the reason", got)
		}
		// The connection is fine: a deleted room can be joined (made) again.
		if got := settleJS(t, tab, `doomed.rejoin().publish('back')`); !got.OK {
			t.Errorf("publish after rejoining a deleted room: %+v", got)
		}
	})
}

// A client whose connection fails with every join must back off like any
// other failing client: the backoff starts over only once its rooms are
// joined, never on welcome alone. Here the network fails it: a proxy lets
// the upgrade and the server's welcome through, then drops the connection
// the moment the client sends its join, as a middlebox that kills
// connections once the client speaks would (the browser sees 1006 after a
// welcome, so not "unreachable").
func TestSDKBacksOffWhileJoinsKeepFailing(t *testing.T) {
	s := startServer(t)
	proxy := startCutProxy(t, s.public)
	browser := newBrowser(t)
	tab := sdkPage(t, browser, proxy.base())
	proxy.setDropFrames(true) // after the page and the SDK have loaded through it
	start := time.Now()
	evalJS[bool](t, tab, `window.states = [];
		window.failing = sdk.connect(location.origin.replace(/^http/, 'ws') + '/ws', {
			user: 'ann', onState: (state, d) => states.push({ state, code: d.code || 0, unreachable: !!d.unreachable, attempt: d.attempt || 0, delayMs: d.delayMs || 0 }),
		});
		failing.join('lobby'); true`)
	const window = 4 * time.Second
	deadline := time.Now().Add(window)
	// Counting connections needs the whole window: this waits for it by
	// polling for the first one over the bound.
	for time.Now().Before(deadline) {
		if n := len(proxy.acceptsSince(start)); n > 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	attempts := proxy.acceptsSince(start)
	evalJS[bool](t, tab, `failing.close(); true`)
	var states []struct {
		State       string  `json:"state"`
		Code        int     `json:"code"`
		Unreachable bool    `json:"unreachable"`
		Attempt     int     `json:"attempt"`
		DelayMs     float64 `json:"delayMs"`
	}
	if err := json.Unmarshal([]byte(evalJS[string](t, tab, `JSON.stringify(states)`)), &states); err != nil {
		t.Fatal(err)
	}
	reconnects := 0
	for _, st := range states {
		if st.State != "reconnecting" || st.DelayMs == 0 {
			continue // not a failure: the retry starting
		}
		reconnects++
		if st.Code != 1006 || st.Unreachable {
			t.Fatalf("reconnecting after close %d (unreachable %v), want 1006 after a welcome (the dropped join this test relies on): %+v", st.Code, st.Unreachable, states)
		}
		if st.Attempt != reconnects {
			t.Fatalf("reconnect %d reported attempt %d: the backoff started over before any join succeeded (%+v)", reconnects, st.Attempt, states)
		}
		if floor := 250 * float64(int(1)<<(st.Attempt-1)); st.Attempt <= 6 && st.DelayMs < floor {
			t.Errorf("attempt %d waits %v ms, want at least %v", st.Attempt, st.DelayMs, floor)
		}
	}
	if reconnects < 2 {
		t.Fatalf("only %d reconnects in %v: %+v", reconnects, window, states)
	}
	// 250+500+1000+2000 ms of minimum delays: at most 5 connections in 4 s.
	if len(attempts) > 5 {
		t.Errorf("%d connections in %v, want at most 5 with a growing backoff", len(attempts), window)
	}
}

// A server that answers every upgrade with a plain HTTP refusal (as roomd
// did for a refused origin before it closed those with 4403) looks to a
// browser like a network failure: the SDK backs off and says the server
// refuses or cannot be reached.
func TestSDKSaysWhenTheServerRefusesBeforeAnyWelcome(t *testing.T) {
	s := startServer(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(refusing.Close)
	browser := newBrowser(t)
	tab := sdkPage(t, browser, "http://"+s.public)
	evalJS[bool](t, tab, `window.states = [];
		window.refused = sdk.connect('`+strings.Replace(refusing.URL, "http", "ws", 1)+`/ws', {
			user: 'ann', onState: (state, d) => states.push({ state, ...d }),
		}); true`)
	waitJS(t, tab, "three attempts failed", `states.filter((s) => s.state === 'reconnecting' && s.delayMs).length >= 3`)
	evalJS[bool](t, tab, `refused.close(); true`)
	var states []struct {
		State       string  `json:"state"`
		Code        int     `json:"code"`
		Reason      string  `json:"reason"`
		Unreachable bool    `json:"unreachable"`
		Attempt     int     `json:"attempt"`
		DelayMs     float64 `json:"delayMs"`
	}
	if err := json.Unmarshal([]byte(evalJS[string](t, tab, `JSON.stringify(states)`)), &states); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, st := range states {
		if st.State != "reconnecting" || st.DelayMs == 0 {
			continue // not a failure: the retry starting
		}
		n++
		if st.Code != 1006 || !st.Unreachable || st.Reason != "the server refused the connection or could not be reached" {
			t.Errorf("reconnecting detail %+v, want 1006, unreachable and the reason", st)
		}
		if floor := 250 * float64(int(1)<<(n-1)); st.Attempt != n || st.DelayMs < floor {
			t.Errorf("reconnect %d: %+v, want attempt %d waiting at least %v ms", n, st, n, floor)
		}
	}
}
