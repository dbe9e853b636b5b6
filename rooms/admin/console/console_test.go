package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// get asks h for path as a browser would and returns the answer and its body.
func get(t *testing.T, h http.Handler, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the listener's own 404", http.StatusNotFound)
	})
}

func TestServesTheFilesWithStrictHeaders(t *testing.T) {
	h := Handler(notFound())
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", "<title>roomd admin</title>"},
		{"/ui/index.html", "text/html; charset=utf-8", "<title>roomd admin</title>"},
		{"/ui/console.js", "text/javascript; charset=utf-8", "Authorization"},
		{"/ui/console.css", "text/css; charset=utf-8", "#rooms"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, body := get(t, h, http.MethodGet, tc.path, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: HTTP %d, body without %q", tc.path, resp.StatusCode, tc.contains)
			continue
		}
		for header, want := range map[string]string{
			"Content-Type":            tc.contentType,
			"Content-Security-Policy": securityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-cache",
		} {
			if got := resp.Header.Get(header); got != want {
				t.Errorf("GET %s: %s %q, want %q", tc.path, header, got, want)
			}
		}
		if !strings.HasPrefix(resp.Header.Get("ETag"), `"`) {
			t.Errorf("GET %s: ETag %q, want a strong one", tc.path, resp.Header.Get("ETag"))
		}
	}
}

// The page may load and call its own origin only: no inline script, no
// inline style, nothing from elsewhere.
func TestPolicyAllowsOnlyTheConsolesOwnFiles(t *testing.T) {
	for _, directive := range []string{"default-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(securityPolicy, directive) {
			t.Errorf("the policy %q lacks %q", securityPolicy, directive)
		}
	}
	if strings.Contains(securityPolicy, "unsafe") {
		t.Errorf("the policy %q allows something unsafe", securityPolicy)
	}
	page, _ := files.ReadFile("index.html")
	scripts := regexp.MustCompile(`<script[^>]*>[^<]*</script>`).FindAll(page, -1)
	for _, script := range scripts {
		if !regexp.MustCompile(`^<script [^>]*src="[a-z]+\.js"[^>]*></script>$`).Match(script) {
			t.Errorf("index.html has %s: a script that is not a file of the console", script)
		}
	}
	if n := strings.Count(string(page), "<script"); n != len(scripts) || n == 0 {
		t.Errorf("index.html has %d script tags, %d of them files", n, len(scripts))
	}
	for _, re := range []string{`\sstyle=`, `<style`, `\son[a-z]+=`, `(?i)(?:src|href)="(?:[a-z]+:|//)`} {
		if regexp.MustCompile(re).Match(page) {
			t.Errorf("index.html matches %s: inline style or script, or a resource from elsewhere", re)
		}
	}
}

// The script shows data as text only and keeps the token out of every
// store a browser has.
func TestScriptKeepsTheTokenInMemoryAndWritesTextOnly(t *testing.T) {
	script, _ := files.ReadFile("console.js")
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "localStorage", "sessionStorage", "document.cookie", "indexedDB", "eval("} {
		if strings.Contains(string(script), banned) {
			t.Errorf("console.js uses %s", banned)
		}
	}
}

func TestRedirectsTheBarePathAndRevalidates(t *testing.T) {
	h := Handler(notFound())
	resp, _ := get(t, h, http.MethodGet, "/ui", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: HTTP %d to %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}

	first, _ := get(t, h, http.MethodGet, "/ui/console.js", nil)
	again, body := get(t, h, http.MethodGet, "/ui/console.js", http.Header{"If-None-Match": {first.Header.Get("ETag")}})
	if again.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("GET with the ETag: HTTP %d with %d bytes, want 304 and none", again.StatusCode, len(body))
	}
	head, body := get(t, h, http.MethodHead, "/ui/", nil)
	if head.StatusCode != http.StatusOK || body != "" || head.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD /ui/: HTTP %d %q with %d bytes", head.StatusCode, head.Header.Get("Content-Type"), len(body))
	}
}

func TestUnknownFilesAreTheListenersNotFound(t *testing.T) {
	h := Handler(notFound())
	for _, path := range []string{"/ui/nope.js", "/ui/console.go", "/ui/../ui/", "/ui/index.html/", "/ui/sub/console.js", "/uix"} {
		resp, body := get(t, h, http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "the listener's own 404") {
			t.Errorf("GET %s: HTTP %d %q, want the 404 it was given", path, resp.StatusCode, body)
		}
	}
}
