package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
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
