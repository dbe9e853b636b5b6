package admin

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// A response whose reader stops reading fails its next write once the
// socket is full and writeDeadlines' bound has passed, instead of blocking
// the handler (a WatchRoom stream) for as long as the reader stays away.
func TestWriteDeadlinesLetAStalledReaderGo(t *testing.T) {
	failed := make(chan error, 1)
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				failed <- err
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: writeDeadlines(stream, 200*time.Millisecond)}
	go srv.Serve(ln)
	defer srv.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := conn.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Read the status line only, then stop reading.
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status line %q, %v", line, err)
	}
	select {
	case err := <-failed:
		t.Logf("the handler's write failed: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the handler is still writing to a reader that stopped 20 s ago")
	}
}
