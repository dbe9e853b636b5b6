// Package web holds what roomd serves to browsers: the SDK (roomd.js, a
// plain ES module), the demo chat page and its icon, embedded in the binary.
package web

import (
	"embed"
	"net/http"
)

//go:embed roomd.js index.html favicon.png
var files embed.FS

// SDK serves roomd.js. Any page may import it (a module script from
// another origin needs CORS); which pages may connect is -allowed-origins'
// business, at the WebSocket.
func SDK() http.Handler {
	h := serveFile("roomd.js", "text/javascript; charset=utf-8")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		h.ServeHTTP(w, r)
	})
}

// DemoPage serves the chat page.
func DemoPage() http.Handler { return serveFile("index.html", "text/html; charset=utf-8") }

// Favicon serves the icon browsers ask every page of the host for at
// /favicon.ico (a PNG: browsers take any image format there), so loading
// the demo page logs no 404.
func Favicon() http.Handler { return serveFile("favicon.png", "image/png") }

func serveFile(name, contentType string) http.Handler {
	data, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(data)
	})
}
