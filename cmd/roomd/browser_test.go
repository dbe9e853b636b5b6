package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	roomdv1 "roomd/gen/roomd/v1"
)

// requireBrowserEnv turns a missing Chromium from a skip into a failure;
// CI sets it so that browser tests cannot silently stop running.
const requireBrowserEnv = "ROOMD_REQUIRE_BROWSER"

// newBrowser starts headless Chromium with a fresh profile and returns a
// context for one tab; everything stops when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("ROOMD_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		msg := "Chromium not found at " + path + ": install it (apt-get install -y chromium) or set ROOMD_CHROMIUM to run the browser tests"
		if os.Getenv(requireBrowserEnv) != "" {
			t.Fatal(msg)
		}
		browserSkipped.Store(&msg)
		t.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, with a context that has no timeout (the
	// first Do binds the browser's life to it), so a broken install fails
	// here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// newTab opens another tab in the same browser.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// within bounds one browser step.
func within(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// The README's snippet, pasted into a page of roomd's, talks to a Go
// client through /ws/{room}.
func TestBrowserPlainWebSocketSnippet(t *testing.T) {
	s := startServer(t)
	browser := newBrowser(t)
	goClient := s.dial(t, "lobby", "user=go")

	ctx, cancel := within(browser, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+s.public+"/"),
		chromedp.Evaluate[chromedp.Void](`window.got = [];
			const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws/lobby?user=ann');
			ws.onmessage = (e) => window.got.push(e.data);
			ws.onopen = () => ws.send('Hello');
			window.ws = ws;`),
	); err != nil {
		t.Fatal(err)
	}
	echoed, err := chromedp.Run(ctx, chromedp.Poll[string](`window.got.length > 0 ? window.got[0] : null`))
	if err != nil {
		t.Fatal(err)
	}
	if echoed != "Hello" {
		t.Fatalf("the page got %q back, want its own Hello (echo is on)", echoed)
	}
	expectFrame(t, goClient, websocket.TextMessage, "Hello")
	send(t, goClient, websocket.TextMessage, "hi from Go")
	second, err := chromedp.Run(ctx, chromedp.Poll[string](`window.got.length > 1 ? window.got[1] : null`))
	if err != nil {
		t.Fatal(err)
	}
	if second != "hi from Go" {
		t.Fatalf("the page got %q, want the Go client's message", second)
	}
}

// waitJS polls a JavaScript condition in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	wctx, cancel := within(ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](cond)); err != nil {
		t.Fatalf("waiting until %s (%s): %v", what, cond, err)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// openChat opens the demo page in a new tab, joined as name to room.
func openChat(t *testing.T, browser context.Context, base, name, room string) context.Context {
	t.Helper()
	tab := newTab(t, browser)
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/?name="+name+"&room="+room+"&autojoin")); err != nil {
		t.Fatal(err)
	}
	// The pill turns green with the join's ack: from then on the page
	// receives everything published to the room.
	waitJS(t, tab, name+"'s page has joined", `document.getElementById('state').dataset.state === 'joined'`)
	waitJS(t, tab, name+"'s page has joined", `[...document.querySelectorAll('#members li')].some(li => li.textContent === '`+name+`')`)
	return tab
}

const logTexts = `[...document.querySelectorAll('#log li:not(.note)')].map(li => li.textContent)`
const memberNames = `[...document.querySelectorAll('#members li')].map(li => li.textContent).sort().join(',')`

func TestBrowserDemoChat(t *testing.T) {
	s := startServer(t)
	browser := newBrowser(t)
	base := "http://" + s.public
	ann := openChat(t, browser, base, "ann", "lobby")
	bob := openChat(t, browser, base, "bob", "lobby")

	t.Run("members update on join and leave", func(t *testing.T) {
		waitJS(t, ann, "ann sees bob", memberNames+` === 'ann,bob'`)
		waitJS(t, bob, "bob sees ann", memberNames+` === 'ann,bob'`)
	})

	t.Run("two pages chat", func(t *testing.T) {
		if err := chromedp.Do(ann, chromedp.SetValue(chromedp.ID("text"), "hello bob"), chromedp.Click(chromedp.ID("send"))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, bob, "bob reads ann's message", logTexts+`.includes('annhello bob')`)
		waitJS(t, ann, "ann sees her own message", logTexts+`.includes('annhello bob')`)
	})

	t.Run("an admin publish shows up", func(t *testing.T) {
		if _, err := s.admin.Publish(context.Background(), &roomdv1.PublishRequest{RoomId: "lobby", Payload: &roomdv1.PublishRequest_Text{Text: "server notice"}}); err != nil {
			t.Fatal(err)
		}
		waitJS(t, bob, "bob sees the server's message", logTexts+`.includes('serverserver notice')`)
	})

	t.Run("a kick shows the kicked state and the page stays away", func(t *testing.T) {
		id := evalJS[string](t, bob, `window.roomdClient.clientId`)
		if _, err := s.admin.KickClient(context.Background(), &roomdv1.KickClientRequest{ClientId: id, Reason: "be nice"}); err != nil {
			t.Fatal(err)
		}
		waitJS(t, bob, "bob's page says kicked", `document.getElementById('state').dataset.state === 'kicked'`)
		if txt := evalJS[string](t, bob, `document.getElementById('banner-text').textContent`); !strings.Contains(txt, "be nice") {
			t.Errorf("the banner says %q, want the reason", txt)
		}
		// No reconnect is scheduled, and none arrived.
		if evalJS[bool](t, bob, `window.roomdClient.stopped && window.roomdClient.timer === undefined`) != true {
			t.Error("the kicked page scheduled a reconnect")
		}
		waitJS(t, ann, "ann sees bob leave", memberNames+` === 'ann'`)
		if s.clientCount(t, "lobby") != 1 {
			t.Errorf("lobby has %d clients, want only ann", s.clientCount(t, "lobby"))
		}
	})
}

// cutProxy forwards TCP to roomd and can drop every connection at once, as
// a network failure would, refuse new ones while it is down, drop each
// connection as soon as its client sends a WebSocket frame, and count
// them.
type cutProxy struct {
	ln         net.Listener
	mu         sync.Mutex
	target     string
	down       bool
	dropFrames bool
	conns      []net.Conn
	accepts    []time.Time
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); p.cut(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.accepts = append(p.accepts, time.Now())
			target, down, dropFrames := p.target, p.down, p.dropFrames
			p.mu.Unlock()
			if down {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				if dropFrames {
					forwardRequestHead(out, in)
					in.Close()
				} else {
					io.Copy(out, in)
				}
				out.Close()
			}()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

// base is the proxy's URL: pages loaded from it connect through it.
func (p *cutProxy) base() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// setDown makes the proxy close every new connection at once (down) or
// forward them again.
func (p *cutProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// setDropFrames makes the proxy let new connections upgrade and hear the
// server, but drop each the moment its client sends anything more.
func (p *cutProxy) setDropFrames(drop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropFrames = drop
}

// forwardRequestHead forwards the client's HTTP request head (the
// upgrade) and returns when the client sends anything after it, without
// passing that on, or when either side fails.
func forwardRequestHead(out io.Writer, in io.Reader) {
	var head []byte
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		if err != nil {
			return
		}
		head = append(head, buf[:n]...)
		if end := strings.Index(string(head), "\r\n\r\n"); end >= 0 {
			if _, err := out.Write(head[:end+4]); err != nil || len(head) > end+4 {
				return
			}
			break
		}
	}
	in.Read(buf) // the client's first frame, or the end of the connection
}

// setTarget sends new connections to another server.
func (p *cutProxy) setTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// acceptsSince lists the connections accepted since t.
func (p *cutProxy) acceptsSince(t time.Time) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var since []time.Time
	for _, at := range p.accepts {
		if !at.Before(t) {
			since = append(since, at)
		}
	}
	return since
}

// The network drops while messages are published: the page reconnects by
// itself, resumes, and shows every message once, in order.
func TestBrowserResumeAfterConnectionCut(t *testing.T) {
	s := startServer(t)
	// Made by the admin API, so it outlives its members and keeps its
	// history while the page is away.
	if _, err := s.admin.CreateRoom(context.Background(), &roomdv1.CreateRoomRequest{RoomId: "news"}); err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, s.public)
	browser := newBrowser(t)
	page := openChat(t, browser, proxy.base(), "ann", "news")
	publish := func(text string) {
		t.Helper()
		if _, err := s.admin.Publish(context.Background(), &roomdv1.PublishRequest{RoomId: "news", Payload: &roomdv1.PublishRequest_Text{Text: text}}); err != nil {
			t.Fatal(err)
		}
	}
	publish("m1")
	publish("m2")
	waitJS(t, page, "the first messages arrive", logTexts+`.length === 2`)

	proxy.cut()
	waitJS(t, page, "the page notices the drop", `document.getElementById('state').dataset.state === 'reconnecting'`)
	eventually(t, "the server notices the drop", func() bool { return s.clientCount(t, "news") <= 0 })
	for i := 3; i <= 6; i++ {
		publish(fmt.Sprintf("m%d", i))
	}
	waitJS(t, page, "the page is back", `document.getElementById('state').dataset.state === 'joined'`)
	publish("m7")
	waitJS(t, page, "every message is shown", logTexts+`.length === 7`)
	got := evalJS[[]string](t, page, logTexts)
	want := []string{"serverm1", "serverm2", "serverm3", "serverm4", "serverm5", "serverm6", "serverm7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the page shows %q, want %q", got, want)
	}
	seqs := evalJS[[]float64](t, page, `[...document.querySelectorAll('#log li[data-seq]')].map(li => Number(li.dataset.seq))`)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("sequences %v are not increasing", seqs)
		}
	}
}
