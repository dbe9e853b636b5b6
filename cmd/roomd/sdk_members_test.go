package main

// The SDK in rooms too big to list whole: the count, the bounded list that
// onPresence reports, paging with room.members(), a room without presence,
// and a join refused for the rate limit being tried again.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"

	roomdv1 "roomd/gen/roomd/v1"
)

func TestSDKBigRoomCountsListsAndPages(t *testing.T) {
	s := startServer(t)
	for i := range 150 {
		s.dial(t, "town", fmt.Sprintf("user=m%03d", i))
	}
	browser := newBrowser(t)
	tab := sdkPage(t, browser, "http://"+s.public)
	evalJS[bool](t, tab, `window.seen = [];
		window.town = sdk.connect(location.origin.replace(/^http/, 'ws') + '/ws', { user: 'ann' }).join('town', {
			onPresence: (event, members, count) => seen.push({ event: event.event, listed: members.length, count }),
		}); true`)
	waitJS(t, tab, "the page has joined", `town.state === 'joined'`)
	type seenEvent struct {
		Event  string `json:"event"`
		Listed int    `json:"listed"`
		Count  int    `json:"count"`
	}
	if got := evalJS[[]seenEvent](t, tab, `seen`); len(got) != 1 || got[0] != (seenEvent{"members", 100, 151}) || evalJS[float64](t, tab, `town.memberCount`) != 151 {
		t.Fatalf("onPresence saw %+v, want the members event listing 100 of 151", got)
	}

	// room.members() pages through all 151, each once.
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		var page struct {
			MemberCount int `json:"memberCount"`
			Members     []struct {
				ClientID string `json:"clientId"`
			} `json:"members"`
			Next string `json:"next"`
		}
		raw := evalJSAwait[string](t, tab, fmt.Sprintf(`town.members({ after: %q, limit: 60 }).then((p) => JSON.stringify(p))`, after))
		if err := json.Unmarshal([]byte(raw), &page); err != nil {
			t.Fatal(err)
		}
		if page.MemberCount != 151 || len(page.Members) > 60 || pages > 3 {
			t.Fatalf("page %d after %q: %s", pages, after, raw)
		}
		for _, m := range page.Members {
			all = append(all, m.ClientID)
		}
		if after = page.Next; after == "" {
			break
		}
	}
	var want []string
	for _, c := range mustListClients(t, s, "town") {
		want = append(want, c.GetClientId())
	}
	if !slices.Equal(all, want) {
		t.Fatalf("room.members() listed %d members, want the room's %d in order, each once", len(all), len(want))
	}

	// Presence keeps the count; a partial list stays as the join listed it
	// (less those who leave), never growing past the server's bound.
	s.dial(t, "town", "user=late")
	waitJS(t, tab, "the count grows", `town.memberCount === 152`)
	if got := evalJS[[]seenEvent](t, tab, `seen`); got[len(got)-1] != (seenEvent{"joined", 100, 152}) {
		t.Errorf("after a join onPresence saw %+v, want 100 listed of 152", got[len(got)-1])
	}
}

func TestSDKRoomWithoutPresence(t *testing.T) {
	s := startServer(t)
	mustCreateRoom(t, s, &roomdv1.CreateRoomRequest{RoomId: "audience", Presence: proto.Bool(false)})
	s.dial(t, "audience", "user=bob")
	browser := newBrowser(t)
	tab := sdkPage(t, browser, "http://"+s.public)
	evalJS[bool](t, tab, `window.seen = [];
		window.audience = sdk.connect(location.origin.replace(/^http/, 'ws') + '/ws', { user: 'ann' }).join('audience', {
			onPresence: (event, members, count) => seen.push([event.event, members.length, count]),
		}); true`)
	waitJS(t, tab, "the page has joined", `audience.state === 'joined'`)
	if got := evalJS[string](t, tab, `JSON.stringify([audience.presence, audience.memberCount, seen])`); got != `[false,2,[["members",0,2]]]` {
		t.Errorf("presence, memberCount, onPresence calls: %s; want false, 2, one members event listing nobody of 2", got)
	}
	if got := settleJS(t, tab, `audience.members()`); got.OK || got.Code != "presence_off" {
		t.Errorf("room.members() in a room without presence: %+v, want presence_off", got)
	}
}

// A join refused for the rate limit is not a failure: the SDK tries again
// once the budget has refilled, and the room ends up joined. The page
// spends its budget (6, refilled at 2 a second) on a join and five
// publishes, then joins another room at once.
func TestSDKRetriesARateLimitedJoin(t *testing.T) {
	s := startServer(t, "-max-message-rate", "2", "-max-message-burst", "6")
	browser := newBrowser(t)
	tab := sdkPage(t, browser, "http://"+s.public)
	evalJS[bool](t, tab, `window.frames_ = [];
		class Spy extends WebSocket {
			constructor(url, protocol) { super(url, protocol); this.addEventListener('message', (e) => frames_.push(JSON.parse(e.data))); }
		}
		window.c = sdk.connect(location.origin.replace(/^http/, 'ws') + '/ws', { user: 'ann', WebSocket: Spy });
		window.a = c.join('a'); window.bStates = []; true`)
	for i := range 5 {
		if got := settleJS(t, tab, fmt.Sprintf(`a.publish(%d)`, i)); !got.OK {
			t.Fatalf("publish %d: %+v", i, got)
		}
	}
	evalJS[bool](t, tab, `window.b = c.join('b', { onState: (s) => bStates.push(s) }); true`)
	waitJS(t, tab, "room b is joined", `b.state === 'joined'`)
	if states := evalJS[string](t, tab, `bStates.join(',')`); strings.Contains(states, "failed") || !strings.HasSuffix(states, "joined") {
		t.Errorf("room b went through %q, want joined without failing", states)
	}
	if got := evalJS[float64](t, tab, `frames_.filter((f) => f.type === 'error' && f.code === 'rate_limited' && f.room === 'b').length`); got < 1 {
		t.Errorf("no join of b was refused for the rate limit (%v): this test spends too little of the budget", got)
	}
}

// evalJSAwait evaluates a promise-valued expression and returns what it
// resolves to.
func evalJSAwait[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := within(tab, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}
