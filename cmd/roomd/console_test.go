package main

// The admin console (/ui/ on the admin HTTP listener) in Chromium, driven as
// a person would: the room list follows joins, Kick closes the member with
// 4000, Publish reaches a member and shows in the event log, Kick + ban
// lands in the bans, with and without an admin token. With
// ROOMD_SCREENSHOTS=dir each step is also saved as a PNG (screenshot in
// demo_test.go), to be looked at.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc/codes"

	roomdv1 "roomd/gen/roomd/v1"
)

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// openConsole opens the console in a new tab at a laptop's size.
func openConsole(t *testing.T, browser context.Context, s *testServer) context.Context {
	t.Helper()
	tab := newTab(t, browser)
	ctx, cancel := within(tab, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.adminURL+"/ui/")); err != nil {
		t.Fatal(err)
	}
	return tab
}

// consoleShot saves what the console shows (see screenshot), then puts the
// tab back at a laptop's size.
func consoleShot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	screenshot(t, tab, name)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
}

func clickCSS(t *testing.T, tab context.Context, selector string) {
	t.Helper()
	ctx, cancel := within(tab, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		t.Fatalf("click %s: %v", selector, err)
	}
}

func setValue(t *testing.T, tab context.Context, id, value string) {
	t.Helper()
	ctx, cancel := within(tab, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID(id), value)); err != nil {
		t.Fatalf("set #%s: %v", id, err)
	}
}

// roomCountJS is the member count the room list shows beside room, or
// null while the room is not listed.
func roomCountJS(room string) string {
	return `(() => { const li = [...document.querySelectorAll('#rooms li')].find((li) => li.dataset.room === ` + jsString(room) + `);
		return li ? li.querySelector('.count').textContent : null; })()`
}

// memberJS is the member row of user, or undefined.
func memberJS(user string) string {
	return `[...document.querySelectorAll('#members tbody tr')].find((tr) => tr.dataset.userId === ` + jsString(user) + `)`
}

// eventsJS is the event log's lines of one kind, as text.
func eventsJS(kind string) string {
	return `[...document.querySelectorAll('#events li[data-kind=` + jsString(kind) + `]')].map((li) => li.textContent)`
}

const bannerJS = `(document.getElementById('banner').hidden ? '' : document.getElementById('banner-text').textContent)`

// driveConsole goes through what an operator does in the console of s
// (open in tab, past any token form): watch a member join, kick it,
// publish to another, kick and ban that one, then lift the ban.
func driveConsole(t *testing.T, s *testServer, tab context.Context) {
	if _, err := s.admin.CreateRoom(adminContext(t), &roomdv1.CreateRoomRequest{RoomId: "lobby", Metadata: map[string]string{"topic": "general"}}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, "the room list shows lobby, empty", roomCountJS("lobby")+` === '0'`)

	ann := s.dial(t, "lobby", "user=ann")
	waitJS(t, tab, "the room list counts ann", roomCountJS("lobby")+` === '1'`)
	waitJS(t, tab, "the overview lists this node", `[...document.querySelectorAll('#nodes tbody tr')].some((tr) => tr.dataset.node === `+jsString(s.node)+`)`)

	clickCSS(t, tab, `#rooms li[data-room="lobby"]`)
	waitJS(t, tab, "the room pane lists ann on her node", memberJS("ann")+`?.querySelector('.node').textContent === `+jsString(s.node))
	waitJS(t, tab, "the room's events are live", `document.getElementById('watch').dataset.state === 'live'`)

	t.Run("kick closes the member with 4000", func(t *testing.T) {
		clickCSS(t, tab, `#members tr[data-user-id="ann"] button.kick`)
		expectClose(t, ann, 4000, "")
		waitJS(t, tab, "the event log shows ann kicked", eventsJS("left")+`.some((t) => t.includes('ann') && t.includes('was kicked (4000)'))`)
		waitJS(t, tab, "ann is gone from the members", memberJS("ann")+` === undefined`)
		waitJS(t, tab, "the room list counts nobody", roomCountJS("lobby")+` === '0'`)
	})

	bob := s.dial(t, "lobby", "user=bob")
	waitJS(t, tab, "the room pane lists bob", memberJS("bob")+` !== undefined`)
	waitJS(t, tab, "the event log shows bob joining", eventsJS("joined")+`.some((t) => t.includes('bob'))`)

	t.Run("publish reaches a member and shows in the log", func(t *testing.T) {
		setValue(t, tab, "publish-text", "hello from the console")
		clickCSS(t, tab, "#publish")
		expectFrame(t, bob, websocket.TextMessage, "hello from the console")
		waitJS(t, tab, "the event log shows the message", eventsJS("message")+`.some((t) => t.includes('admin API') && t.endsWith('hello from the console'))`)
		waitJS(t, tab, "the banner says where it went", bannerJS+`.includes('handed to 1 member')`)
		consoleShot(t, tab, "console-room")
	})

	t.Run("kick and ban, then lift the ban", func(t *testing.T) {
		clickCSS(t, tab, `#members tr[data-user-id="bob"] button.ban`)
		waitJS(t, tab, "the ban dialog is open", `document.getElementById('ban-dialog').open`)
		setValue(t, tab, "ban-reason", "spam")
		consoleShot(t, tab, "console-ban")
		clickCSS(t, tab, "#ban-confirm")
		expectClose(t, bob, 4000, "spam")
		waitJS(t, tab, "the dialog closes", `!document.getElementById('ban-dialog').open`)
		expectDialRefused(t, s, "lobby", "bob")

		// A second ban of bob's, from another room: Lift lifts one row's.
		if _, err := s.admin.KickUser(adminContext(t), &roomdv1.KickUserRequest{UserId: "bob", RoomId: "elsewhere", BanSeconds: 600}); err != nil {
			t.Fatal(err)
		}
		clickCSS(t, tab, "#nav-overview")
		banRow := func(room string) string {
			return `[...document.querySelectorAll('#bans tbody tr')].find((tr) => tr.dataset.userId === 'bob' && tr.dataset.roomId === '` + room + `')`
		}
		waitJS(t, tab, "the bans list bob's two", banRow("lobby")+`?.querySelector('.reason').textContent === 'spam' && !!`+banRow("elsewhere"))
		consoleShot(t, tab, "console-overview")
		evalJS[any](t, tab, banRow("lobby")+`.querySelector('button.lift').click()`)
		waitJS(t, tab, "the lobby's ban is gone, the other stays", `!`+banRow("lobby")+` && !!`+banRow("elsewhere"))
		s.dial(t, "lobby", "user=bob")
		eventually(t, "bob is back in lobby", func() bool { return slices.Contains(userIDs(t, s, "lobby"), "bob") })
	})

	if msg := evalJS[string](t, tab, bannerJS); strings.Contains(msg, "HTTP") {
		t.Errorf("the console shows an error: %s", msg)
	}
}

// The console is static: with an admin token it loads without one, and the
// index links to it.
func TestConsoleServedWithoutTheToken(t *testing.T) {
	s := startServer(t, "-admin-token", testAdminToken)
	s.token = ""
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.adminURL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: HTTP %d to %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/ui/", "/ui/console.js", "/ui/console.css"} {
		resp, _ := restRaw(t, s, "GET", path, "", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s without the token: HTTP %d, CSP %q; want 200 with the console's policy", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	resp, body := restRaw(t, s, "GET", "/ui/nothing.js", "", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nothing.js: HTTP %d, want 404", resp.StatusCode)
	}
	checkErrorShape(t, "GET /ui/nothing.js", body, codes.NotFound)
	if _, index := restRaw(t, s, "GET", "/", "", ""); !strings.Contains(string(index), `href="/ui/"`) {
		t.Errorf("the index does not link the console:\n%s", index)
	}
}

// One browser for both servers: starting Chromium is most of the time.
func TestConsole(t *testing.T) {
	browser := newBrowser(t)

	t.Run("without a token", func(t *testing.T) {
		s := startServer(t)
		tab := openConsole(t, browser, s)
		waitJS(t, tab, "the console shows its rooms", `!document.getElementById('app').hidden`)
		if evalJS[bool](t, tab, `!document.getElementById('token-form').hidden || !document.getElementById('forget').hidden`) {
			t.Error("the console asks for a token the server does not have")
		}
		driveConsole(t, s, tab)
	})

	t.Run("with a token", func(t *testing.T) {
		s := startServer(t, "-admin-token", testAdminToken)
		tab := openConsole(t, browser, s)
		tokenForm := `!document.getElementById('token-form').hidden && document.getElementById('app').hidden`
		waitJS(t, tab, "the console asks for the token", tokenForm)
		consoleShot(t, tab, "console-token")

		const wrong = "not-" + testAdminToken
		setValue(t, tab, "token", wrong)
		clickCSS(t, tab, "#token-submit")
		waitJS(t, tab, "the console says the token was refused", `!document.getElementById('token-error').hidden && document.getElementById('token-error').textContent.includes('did not accept')`)
		if !evalJS[bool](t, tab, tokenForm) {
			t.Error("a wrong token let the console in")
		}
		consoleShot(t, tab, "console-token-refused")

		setValue(t, tab, "token", testAdminToken)
		clickCSS(t, tab, "#token-submit")
		waitJS(t, tab, "the console shows its rooms", `!document.getElementById('app').hidden && document.getElementById('token-form').hidden`)
		driveConsole(t, s, tab)

		// The token lives in a script variable only: nowhere a later user
		// of the browser, the URL bar or the page's markup could read it.
		kept := evalJS[string](t, tab, `[JSON.stringify({...localStorage}), JSON.stringify({...sessionStorage}), document.cookie,
			location.href, JSON.stringify(history.state), document.documentElement.outerHTML].join('\n')`)
		for _, token := range []string{testAdminToken, wrong} {
			if strings.Contains(kept, token) {
				t.Errorf("the page keeps the token %q in storage, a cookie, the URL or the DOM", token)
			}
		}

		clickCSS(t, tab, "#forget")
		waitJS(t, tab, "forgetting the token asks for it again", tokenForm+` && document.getElementById('token-error').hidden`)
	})
}
