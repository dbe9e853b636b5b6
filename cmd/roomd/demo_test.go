package main

// The demo page's state follows its room's: the pill, the Send button, the
// member list and the banner with its way back, in every state a newcomer
// meets. With ROOMD_SCREENSHOTS=dir, each state is also saved as a PNG at
// a desktop and a phone size, to be looked at.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
)

// pageView is what the demo page shows about its room.
type pageView struct {
	State        string   `json:"state"` // the pill's data-state
	Pill         string   `json:"pill"`
	Banner       string   `json:"banner"` // empty while hidden
	Actions      []string `json:"actions"`
	SendDisabled bool     `json:"sendDisabled"`
	Members      string   `json:"members"` // sorted, comma-separated
	Count        string   `json:"count"`   // the member count beside the heading
	More         string   `json:"more"`    // below the list ("and N more"); empty while hidden
	Stale        bool     `json:"stale"`   // the member list is marked as the last known
	Notes        []string `json:"notes"`
}

const pageViewJS = `(() => {
	const $ = (id) => document.getElementById(id);
	return {
		state: $('state').dataset.state,
		pill: $('state').textContent,
		banner: $('banner').hidden ? '' : $('banner-text').textContent,
		actions: [...document.querySelectorAll('#actions button')].map((b) => b.id.replace('action-', '')),
		sendDisabled: $('send').disabled,
		members: [...document.querySelectorAll('#members li')].map((li) => li.textContent).sort().join(','),
		count: $('member-count').textContent,
		more: $('members-more').hidden ? '' : $('members-more').textContent,
		stale: $('members').classList.contains('stale'),
		notes: [...document.querySelectorAll('#log li.note')].map((li) => li.textContent),
	};
})()`

// waitView waits until the pill is in state and returns what the page shows.
func waitView(t *testing.T, tab context.Context, who, state string) pageView {
	t.Helper()
	waitJS(t, tab, who+"'s page is "+state, `document.getElementById('state').dataset.state === '`+state+`'`)
	return evalJS[pageView](t, tab, pageViewJS)
}

// checkOut requires what a page out of its room shows: a red pill, no
// Send, no members, a banner that says why, and ways back.
func checkOut(t *testing.T, who string, v pageView, state, pill, why string, actions ...string) {
	t.Helper()
	if v.State != state || v.Pill != pill || !v.SendDisabled || v.Members != "" || v.Count != "" || v.More != "" || !strings.Contains(v.Banner, why) || !slices.Equal(v.Actions, actions) {
		t.Errorf("%s's page shows %+v; want pill %q (%s), Send disabled, no members, a banner saying %q, actions %q", who, v, pill, state, why, actions)
	}
}

// checkJoined requires a page in its room: green pill, Send, the members
// and their count, and nobody more.
func checkJoined(t *testing.T, who string, v pageView, members string) {
	t.Helper()
	count := fmt.Sprintf("(%d)", strings.Count(members, ",")+1)
	if v.State != "joined" || v.Pill != "joined" || v.SendDisabled || v.Banner != "" || v.Stale || v.Members != members || v.Count != count || v.More != "" {
		t.Errorf("%s's page shows %+v; want joined, Send enabled, no banner, members %q", who, v, members)
	}
}

// openPage opens the demo page for name in room without waiting for
// anything.
func openPage(t *testing.T, browser context.Context, base, name, room string) context.Context {
	t.Helper()
	tab := newTab(t, browser)
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/?name="+url.QueryEscape(name)+"&room="+url.QueryEscape(room)+"&autojoin")); err != nil {
		t.Fatal(err)
	}
	return tab
}

func click(t *testing.T, tab context.Context, id string) {
	t.Helper()
	ctx, cancel := within(tab, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))); err != nil {
		t.Fatalf("click #%s: %v", id, err)
	}
}

// sendText types text and clicks Send.
func sendText(t *testing.T, tab context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.SetValue(chromedp.ID("text"), text), chromedp.Click(chromedp.ID("send"))); err != nil {
		t.Fatal(err)
	}
}

// screenshot saves the page as dir/name-WxH.png at a desktop and a phone
// size when ROOMD_SCREENSHOTS names a directory.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ROOMD_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sizes := []struct {
		w, h   int64
		mobile bool
	}{{1280, 800, false}, {390, 844, true}}
	for _, size := range sizes {
		var opts []chromedp.EmulateViewportOption
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
		}
		if err := chromedp.Do(tab, chromedp.EmulateViewport(size.w, size.h, opts...)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", name, size.w, size.h))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(tab, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserDemoJoinRefused(t *testing.T) {
	s := startServer(t)
	browser := newBrowser(t)
	base := "http://" + s.public

	t.Run("banned", func(t *testing.T) {
		if _, err := s.admin.KickUser(context.Background(), &roomdv1.KickUserRequest{UserId: "eve", RoomId: "lobby", Reason: "spam", BanSeconds: 3600}); err != nil {
			t.Fatal(err)
		}
		eve := openPage(t, browser, base, "eve", "lobby")
		checkOut(t, "eve", waitView(t, eve, "eve", "not-joined"), "not-joined", "not joined", `user "eve" is banned from room "lobby"`, "rejoin", "other")
		screenshot(t, eve, "banned")
		// Send is disabled: nothing goes out, nothing fails.
		if evalJS[bool](t, eve, `(document.getElementById('send').click(), document.querySelectorAll('#log li').length === 1)`) != true {
			t.Errorf("the log changed after clicking a disabled Send: %q", evalJS[pageView](t, eve, pageViewJS).Notes)
		}
		// The way back: once the ban is lifted, Join again works in place.
		if _, err := s.admin.Unban(context.Background(), &roomdv1.UnbanRequest{UserId: "eve"}); err != nil {
			t.Fatal(err)
		}
		click(t, eve, "action-rejoin")
		checkJoined(t, "eve", waitView(t, eve, "eve", "joined"), "eve")
		sendText(t, eve, "sorry")
		waitJS(t, eve, "eve's message is shown", logTexts+`.includes('evesorry')`)
	})

	t.Run("invalid room id", func(t *testing.T) {
		ann := openPage(t, browser, base, "ann", "no spaces")
		checkOut(t, "ann", waitView(t, ann, "ann", "not-joined"), "not-joined", "not joined", "invalid room id", "other")
		// The way back: another room, from the join form, without a reload.
		click(t, ann, "action-other")
		waitJS(t, ann, "the join form is back", `!document.getElementById('join-form').hidden && document.getElementById('chat').hidden`)
		if err := chromedp.Do(ann, chromedp.SetValue(chromedp.ID("room"), "lobby"), chromedp.Click(chromedp.ID("join"))); err != nil {
			t.Fatal(err)
		}
		checkJoined(t, "ann", waitView(t, ann, "ann", "joined"), "ann") // eve's tab closed with its subtest
	})
}

func TestBrowserDemoRoomDeleted(t *testing.T) {
	s := startServer(t)
	browser := newBrowser(t)
	base := "http://" + s.public
	ann := openChat(t, browser, base, "ann", "garden")
	bob := openChat(t, browser, base, "bob", "garden")
	waitJS(t, ann, "ann sees bob", memberNames+` === 'ann,bob'`)

	if _, err := s.admin.DeleteRoom(context.Background(), &roomdv1.DeleteRoomRequest{RoomId: "garden"}); err != nil {
		t.Fatal(err)
	}
	for who, tab := range map[string]context.Context{"ann": ann, "bob": bob} {
		checkOut(t, who, waitView(t, tab, who, "not-joined"), "not-joined", "not joined", "#garden was deleted", "rejoin", "other")
	}
	screenshot(t, ann, "room-deleted")

	// Join again makes the room anew; each page sees the other come back.
	click(t, ann, "action-rejoin")
	checkJoined(t, "ann", waitView(t, ann, "ann", "joined"), "ann")
	click(t, bob, "action-rejoin")
	checkJoined(t, "bob", waitView(t, bob, "bob", "joined"), "ann,bob")
	waitJS(t, ann, "ann sees bob back", memberNames+` === 'ann,bob'`)
}

func TestBrowserDemoKicked(t *testing.T) {
	s := startServer(t)
	browser := newBrowser(t)
	base := "http://" + s.public
	ann := openChat(t, browser, base, "ann", "lobby")
	bob := openChat(t, browser, base, "bob", "lobby")
	waitJS(t, ann, "ann sees bob", memberNames+` === 'ann,bob'`)
	screenshot(t, ann, "joined")

	t.Run("from the connection", func(t *testing.T) {
		id := evalJS[string](t, bob, `window.roomdClient.clientId`)
		if _, err := s.admin.KickClient(context.Background(), &roomdv1.KickClientRequest{ClientId: id, Reason: "be nice"}); err != nil {
			t.Fatal(err)
		}
		checkOut(t, "bob", waitView(t, bob, "bob", "kicked"), "kicked", "kicked", "You were removed from the chat: be nice.", "reconnect", "other")
		screenshot(t, bob, "kicked")
		waitJS(t, ann, "ann sees bob leave", memberNames+` === 'ann'`)
		click(t, bob, "action-reconnect")
		checkJoined(t, "bob", waitView(t, bob, "bob", "joined"), "ann,bob")
		waitJS(t, ann, "ann sees bob back", memberNames+` === 'ann,bob'`)
	})

	t.Run("from the room", func(t *testing.T) {
		if _, err := s.admin.KickUser(context.Background(), &roomdv1.KickUserRequest{UserId: "bob", RoomId: "lobby", Reason: "cool off"}); err != nil {
			t.Fatal(err)
		}
		checkOut(t, "bob", waitView(t, bob, "bob", "not-joined"), "not-joined", "not joined", "You were removed from #lobby: cool off.", "rejoin", "other")
		waitJS(t, ann, "ann sees bob leave", memberNames+` === 'ann'`)
		click(t, bob, "action-rejoin")
		checkJoined(t, "bob", waitView(t, bob, "bob", "joined"), "ann,bob")
	})
}

func TestBrowserDemoReconnecting(t *testing.T) {
	s := startServer(t)
	if _, err := s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "news"}); err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, s.public)
	browser := newBrowser(t)
	ann := openChat(t, browser, proxy.base(), "ann", "news")
	bob := openChat(t, browser, "http://"+s.public, "bob", "news")
	waitJS(t, ann, "ann sees bob", memberNames+` === 'ann,bob'`)

	proxy.setDown(true)
	proxy.cut()
	v := waitView(t, ann, "ann", "reconnecting")
	if v.Pill != "reconnecting…" || !v.SendDisabled || v.Members != "ann,bob" || !v.Stale || !strings.Contains(v.Banner, "The connection was lost") {
		t.Errorf("ann's page shows %+v; want reconnecting, Send disabled, the last known members marked stale, and a banner", v)
	}
	screenshot(t, ann, "reconnecting")
	// Retries that fail before the server's welcome say so.
	waitJS(t, ann, "a retry has failed", `document.getElementById('banner-text').textContent.includes('cannot be reached')`)

	// Bob leaves while ann is away: the list ann gets back is the room's.
	evalJS[bool](t, bob, `window.roomdClient.close(), true`)
	eventually(t, "bob is gone", func() bool { return s.clientCount(t, "news") == 0 })
	proxy.setDown(false)
	checkJoined(t, "ann", waitView(t, ann, "ann", "joined"), "ann")
}

// A server restarted with nothing published meanwhile: the page says what
// it knows, not that messages were lost.
func TestBrowserDemoServerRestart(t *testing.T) {
	first := startServer(t)
	proxy := startCutProxy(t, first.public)
	browser := newBrowser(t)
	ann := openChat(t, browser, proxy.base(), "ann", "news")

	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	waitView(t, ann, "ann", "reconnecting")
	second := startServer(t)
	proxy.setTarget(second.public)
	v := waitView(t, ann, "ann", "joined")
	checkJoined(t, "ann", v, "ann")
	want := "The server restarted (or the room was made anew) while you were away: messages sent in that time may be missing."
	if !slices.Contains(v.Notes, want) {
		t.Errorf("notes %q, want %q", v.Notes, want)
	}
	for _, n := range v.Notes {
		if strings.Contains(n, "could not be recovered") {
			t.Errorf("note %q", n)
		}
	}
}

// A page whose origin may not connect is told so (4403 and the reason),
// shows it, and does not retry. roomd's own pages always may connect, so
// the page comes through a reverse proxy that, like nginx by default, sends
// roomd its own address as Host: to roomd the page's origin is foreign.
func TestBrowserDemoOriginRefused(t *testing.T) {
	s := startServer(t)
	target := &url.URL{Scheme: "http", Host: s.public}
	var mu sync.Mutex
	var upgrades int
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target) // Host becomes roomd's
		if r.In.URL.Path == "/ws" {
			mu.Lock()
			upgrades++
			mu.Unlock()
		}
	}})
	t.Cleanup(proxy.Close)
	countUpgrades := func() int {
		mu.Lock()
		defer mu.Unlock()
		return upgrades
	}

	browser := newBrowser(t)
	ann := openPage(t, browser, proxy.URL, "ann", "lobby")
	want := fmt.Sprintf("The server refused this page: origin %q may not connect: not in -allowed-origins.", proxy.URL)
	checkOut(t, "ann", waitView(t, ann, "ann", "forbidden"), "forbidden", "refused", want, "retry")
	screenshot(t, ann, "origin-refused")
	states := evalJS[[]string](t, ann, `[window.roomdClient.state, String(window.roomdClient.stopped), String(window.roomdClient.timer)]`)
	if !slices.Equal(states, []string{"forbidden", "true", "undefined"}) {
		t.Errorf("client state, stopped, timer: %q; want forbidden, stopped, no retry scheduled", states)
	}
	// Nothing retries: no second upgrade in a few seconds (more than the
	// backoff's first steps), watched until then.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if n := countUpgrades(); n != 1 {
			t.Fatalf("%d upgrades, want the one refused", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := evalJS[pageView](t, ann, pageViewJS); v.State != "forbidden" {
		t.Errorf("the page moved on to %+v", v)
	}
}

// A room bigger than a join lists: the page shows the count, the 100
// members the SDK lists and how many more there are, and keeps the count
// as people come and go; a room that does not list its members says so.
func TestBrowserDemoBigRoom(t *testing.T) {
	s := startServer(t)
	for i := range 120 {
		s.dial(t, "town", fmt.Sprintf("user=m%03d", i))
	}
	browser := newBrowser(t)
	base := "http://" + s.public
	ann := openPage(t, browser, base, "ann", "town")
	v := waitView(t, ann, "ann", "joined")
	if listed := strings.Count(v.Members, ",") + 1; v.Count != "(121)" || listed != 100 || v.More != "and 21 more" {
		t.Errorf("ann's page shows %+v (%d listed); want (121), 100 listed and 21 more", v, listed)
	}
	screenshot(t, ann, "big-room")
	s.dial(t, "town", "user=late")
	waitJS(t, ann, "the count grows", `document.getElementById('member-count').textContent === '(122)'`)
	if v := evalJS[pageView](t, ann, pageViewJS); strings.Count(v.Members, ",")+1 != 100 || v.More != "and 22 more" {
		t.Errorf("after one more joined ann's page shows %+v; want 100 listed and 22 more", v)
	}

	if _, err := s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "audience", Presence: proto.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	s.dial(t, "audience", "user=bob")
	cy := openPage(t, browser, base, "cy", "audience")
	if v := waitView(t, cy, "cy", "joined"); v.Count != "(2)" || v.Members != "" || v.More != "This room does not list its members." {
		t.Errorf("cy's page in a room without presence shows %+v; want (2), nobody listed, and why", v)
	}
}
