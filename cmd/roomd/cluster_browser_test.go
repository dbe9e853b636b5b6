package main

// The cluster's failover as a person sees it: a demo page whose
// connection goes through a proxy to node A chats with a page on node B;
// the proxy is switched to B while A is killed, and the first page shows
// every message once, in the room's order.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/protobuf/encoding/protojson"

	roomdv1 "roomd/gen/roomd/v1"
	"roomd/rooms/cluster/natstest"
)

func TestBrowserClusterFailover(t *testing.T) {
	browser := newBrowser(t) // first: a skip starts nothing else
	nats := natstest.Start(t)
	procA := startProcess(t, "-nats-url", nats.URL(), "-node-name", "a", "-cluster-call-timeout", "1s")
	a := procA.server("a")
	b := startNode(t, nats.URL(), "b")
	waitNodes(t, a, 2)
	waitNodes(t, b, 2)

	proxy := startCutProxy(t, a.public)
	// The whole browser part is bounded: after a minute the tabs end and
	// every wait on them fails.
	bounded, cancel := context.WithTimeout(browser, 60*time.Second)
	t.Cleanup(cancel)
	ann := openChat(t, bounded, proxy.base(), "ann", "hall")
	bob := openChat(t, bounded, "http://"+b.public, "bob", "hall")
	t.Cleanup(func() {
		if t.Failed() {
			showPage(t, "ann", ann)
			showPage(t, "bob", bob)
		}
	})
	waitJS(t, ann, "ann sees bob", memberNames+` === 'ann,bob'`)
	waitJS(t, bob, "bob sees ann", memberNames+` === 'ann,bob'`)
	if id := evalJS[string](t, ann, `window.roomdClient.clientId`); !strings.HasPrefix(id, "a_") {
		t.Fatalf("ann's page is client %q, want one of node a (through the proxy)", id)
	}

	// want is every message published, as the demo page shows it (the
	// sender, then the text); seqOf holds the position of those whose
	// publish said it.
	var mu sync.Mutex
	var want []string
	seqOf := map[string]uint64{}
	published := func(shown string, seq uint64) {
		mu.Lock()
		defer mu.Unlock()
		want = append(want, shown)
		if seq != 0 {
			seqOf[shown] = seq
		}
	}
	say := func(tab context.Context, who, text string) {
		t.Helper()
		chat(t, tab, text)
		published(who+text, 0)
	}
	announce := func(text string) {
		t.Helper()
		seq, err := restPublish(b, "hall", text)
		if err != nil {
			t.Fatal(err)
		}
		published("server"+text, seq)
	}

	// Both pages and B's admin API, interleaved.
	for i := 1; i <= 3; i++ {
		say(ann, "ann", fmt.Sprintf("hi %d", i))
		say(bob, "bob", fmt.Sprintf("hey %d", i))
		announce(fmt.Sprintf("notice %d", i))
	}
	// Every publish of ann's page is answered before A goes: none is in
	// doubt when the connection is cut.
	waitJS(t, ann, "ann's page shows the chat", logTexts+`.length === 9`)

	// Messages keep flowing through B's admin API from here until ann's
	// page is back and has heard some more: one every 100 ms, at most
	// maxFlow, so that all the time ann is away stays well within the 100
	// messages a room keeps by default.
	const maxFlow = 80
	flowCtx, stopFlow := context.WithCancel(bounded)
	defer stopFlow()
	var flowed sync.WaitGroup
	var flowErr error
	var flowN int
	flowState := func() (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return flowN, flowErr
	}
	flowed.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for k := 1; k <= maxFlow; k++ {
			text := fmt.Sprintf("flow %d", k)
			seq, err := restPublish(b, "hall", text)
			mu.Lock()
			flowN, flowErr = k, err
			mu.Unlock()
			if err != nil {
				return
			}
			published("server"+text, seq)
			select {
			case <-tick.C:
			case <-flowCtx.Done():
				return
			}
		}
	})
	waitJS(t, ann, "ann's page hears the flow through A", logTexts+`.filter(s => s.startsWith('serverflow ')).length >= 2`)

	// The switch: new connections go to B, and none gets through until
	// the messages of the time away are out; A dies, cutting ann's page.
	proxy.setTarget(b.public)
	proxy.setDown(true)
	mu.Lock()
	beforeKill := len(want)
	mu.Unlock()
	procA.signal(syscall.SIGKILL)
	procA.wait(t, 10*time.Second)
	waitJS(t, ann, "ann's page notices A is gone", `document.getElementById('state').dataset.state === 'reconnecting'`)
	for i := 1; i <= 3; i++ {
		say(bob, "bob", fmt.Sprintf("while you were away %d", i))
		announce(fmt.Sprintf("away notice %d", i))
	}
	waitJS(t, bob, "bob's page shows what ann missed", logTexts+`.includes('serveraway notice 3') && `+logTexts+`.includes('bobwhile you were away 3')`)
	if state := evalJS[string](t, ann, `document.getElementById('state').dataset.state`); state != "reconnecting" {
		t.Fatalf("ann's page is %q with the proxy down, want reconnecting", state)
	}
	proxy.setDown(false)

	// The SDK's backoff may be at several seconds by now.
	waitPage(t, ann, 20*time.Second, "ann's page is back", `document.getElementById('state').dataset.state === 'joined'`)
	if id := evalJS[string](t, ann, `window.roomdClient.clientId`); !strings.HasPrefix(id, "b_") {
		t.Fatalf("ann's page is back as client %q, want one of node b", id)
	}
	back, _ := flowState()
	mu.Lock()
	whileAway := len(want) - beforeKill
	mu.Unlock()
	eventually(t, "more messages flow with ann's page back", func() bool {
		n, err := flowState()
		return n >= min(back+5, maxFlow) || err != nil
	})
	stopFlow()
	flowed.Wait()
	if flowErr != nil {
		t.Fatalf("publishing through B: %v", flowErr)
	}
	say(ann, "ann", "back on b")
	say(bob, "bob", "welcome back")

	mu.Lock()
	all := slices.Clone(want)
	seqs := maps.Clone(seqOf)
	mu.Unlock()
	annShows := waitLog(t, ann, len(all))
	bobShows := waitLog(t, bob, len(all))

	// What ann's page shows: each message once, nothing missing, in the
	// room's order (bob's page's, and the positions the room gave).
	count := map[string]int{}
	for _, s := range annShows.Texts {
		count[s]++
	}
	for _, w := range all {
		if count[w] != 1 {
			t.Errorf("ann's page shows %q %d times, want once", w, count[w])
		}
	}
	for s := range count {
		if !slices.Contains(all, s) {
			t.Errorf("ann's page shows %q, which nobody published", s)
		}
	}
	if !slices.Equal(annShows.Texts, bobShows.Texts) || !slices.Equal(annShows.Seqs, bobShows.Seqs) {
		t.Errorf("ann's and bob's pages show different orders:\nann %q\n    %v\nbob %q\n    %v", annShows.Texts, annShows.Seqs, bobShows.Texts, bobShows.Seqs)
	}
	for i, s := range annShows.Texts {
		if i > 0 && annShows.Seqs[i] <= annShows.Seqs[i-1] {
			t.Errorf("ann's page shows %q at seq %d after seq %d", s, annShows.Seqs[i], annShows.Seqs[i-1])
		}
		if want, ok := seqs[s]; ok && annShows.Seqs[i] != want {
			t.Errorf("ann's page shows %q at seq %d, the publish said %d", s, annShows.Seqs[i], want)
		}
	}
	for _, n := range annShows.Notes {
		if strings.Contains(n, "missing") || strings.Contains(n, "not shown") || strings.HasPrefix(n, "Not sent") {
			t.Errorf("ann's page says %q", n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("ann's page shows the %d messages once, in order; %d were published between A's death and the page being back on B", len(all), whileAway)

	// A's members leave every room once A is known dead: both pages end
	// up listing the two people there are, not ann's old connection too.
	waitPage(t, ann, 20*time.Second, "ann's page lists the two of them", memberNames+` === 'ann,bob'`)
	waitPage(t, bob, 5*time.Second, "bob's page lists the two of them", memberNames+` === 'ann,bob'`)
}

// restPublish publishes text to room through s's REST API and returns the
// position the message got; it may be called from any goroutine.
func restPublish(s *testServer, room, text string) (uint64, error) {
	body, _ := json.Marshal(map[string]string{"text": text})
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(s.adminURL+"/v1/rooms/"+room+"/messages", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("publish %q: HTTP %d: %s", text, resp.StatusCode, data)
	}
	var out roomdv1.PublishResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &out); err != nil {
		return 0, fmt.Errorf("publish %q: %v in %s", text, err, data)
	}
	return out.GetSeq(), nil
}

// chat types text into the page's message field and presses Enter, and
// requires that the page took it (it empties the field as it publishes).
// Not a click on Send: while messages arrive the log grows and pushes the
// button down, so a click aimed where it was can miss it.
func chat(t *testing.T, tab context.Context, text string) {
	t.Helper()
	ctx, cancel := within(tab, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("text"), text+kb.Enter)); err != nil {
		t.Fatalf("typing %q: %v", text, err)
	}
	if left := evalJS[string](t, tab, `document.getElementById('text').value`); left != "" {
		t.Fatalf("the page did not send %q: the field still holds %q", text, left)
	}
}

// waitPage polls a JavaScript condition in the page until it is true, for
// at most d.
func waitPage(t *testing.T, tab context.Context, d time.Duration, what, cond string) {
	t.Helper()
	ctx, cancel := within(tab, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond)); err != nil {
		t.Fatalf("waiting until %s (%s): %v", what, cond, err)
	}
}

// shownLog is the demo page's message list: each message's text (sender
// first) and position, and the page's notes.
type shownLog struct {
	Texts []string `json:"texts"`
	Seqs  []uint64 `json:"seqs"`
	Notes []string `json:"notes"`
}

const shownLogJS = `(() => {
	const items = [...document.querySelectorAll('#log li:not(.note)')];
	return {
		texts: items.map((li) => li.textContent),
		seqs: items.map((li) => Number(li.dataset.seq || 0)),
		notes: [...document.querySelectorAll('#log li.note')].map((li) => li.textContent),
	};
})()`

// showPage logs what a page shows, for a failing test.
func showPage(t *testing.T, who string, tab context.Context) {
	ctx, cancel := within(tab, 5*time.Second)
	defer cancel()
	log, err := chromedp.Run(ctx, chromedp.Evaluate[shownLog](shownLogJS))
	state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('state').dataset.state + ' ' + window.roomdClient.clientId`))
	t.Logf("%s's page (%s, %v):", who, state, err)
	for i, text := range log.Texts {
		t.Logf("  %d %q", log.Seqs[i], text)
	}
	for _, n := range log.Notes {
		t.Logf("  note %q", n)
	}
}

// waitLog waits until the page shows at least n messages, for at most
// 15 s, and returns what it shows then (fewer if it never got there).
func waitLog(t *testing.T, tab context.Context, n int) shownLog {
	t.Helper()
	ctx, cancel := within(tab, 15*time.Second)
	defer cancel()
	_, _ = chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s.length >= %d`, logTexts, n)))
	return evalJS[shownLog](t, tab, shownLogJS)
}
