// Package console is roomd's admin console: a page, one script and one
// style sheet, embedded in the binary and served on the admin HTTP
// listener at Path. The page is static and needs no token to load; it
// drives the REST API of the same listener (/v1/...) from the browser,
// sending the admin token the user types in, which it keeps in a script
// variable only. Nothing here calls the API or holds state.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Path is where the admin HTTP listener serves the console.
const Path = "/ui/"

//go:embed index.html console.js console.css favicon.svg
var files embed.FS

// contentTypes names what each served file is; the header is set, never
// sniffed.
var contentTypes = map[string]string{
	"index.html":  "text/html; charset=utf-8",
	"console.js":  "text/javascript; charset=utf-8",
	"console.css": "text/css; charset=utf-8",
	"favicon.svg": "image/svg+xml",
}

// securityPolicy lets the page load only its own files and call only its
// own origin: no inline script or style, no frames around it, and no form
// that could carry the token anywhere (the forms are handled by script).
const securityPolicy = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"

type file struct {
	data        []byte
	contentType string
	etag        string
}

// Handler serves the console under Path: Path itself is the page, the
// files beside it are its script, style sheet and icon, and Path without
// its slash is redirected to Path. Any other path under Path goes to
// notFound. Every answer is revalidated (Cache-Control: no-cache) against
// an ETag of the file's contents, so a new binary's console is seen at once
// and an unchanged one costs a 304.
func Handler(notFound http.Handler) http.Handler {
	served := map[string]file{}
	for name, contentType := range contentTypes {
		data, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded at build time
		}
		sum := sha256.Sum256(data)
		f := file{data: data, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		served[Path+name] = f
		if name == "index.html" {
			served[Path] = f
		}
	}
	root := strings.TrimSuffix(Path, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == root {
			http.Redirect(w, r, Path, http.StatusMovedPermanently)
			return
		}
		f, ok := served[r.URL.Path]
		if !ok {
			notFound.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Content-Security-Policy", securityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
	})
}
