// Command baseline is a plain gorilla/websocket room server in the style of
// gorilla's chat example, kept only as a yardstick for roombench: one hub
// goroutine per room that owns its members, a reader and a writer goroutine
// per connection, a send channel of 256 messages, and one WebSocket frame
// (one write system call) per message per member. It serves the same
// GET /ws/{room} as roomd and the three REST endpoints roombench -via rest
// uses, so the same load can be run against both.
//
//	go run ./cmd/roombench/baseline -listen 127.0.0.1:28080 -admin 127.0.0.1:29091
//	go run ./cmd/roombench -url ws://127.0.0.1:28080 -admin http://127.0.0.1:29091 -via rest ...
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// As in gorilla's chat example.
const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 64 << 10
	sendBuffer     = 256
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(*http.Request) bool { return true },
}

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

type broadcast struct {
	msg   []byte
	reply chan int // how many members it was queued for
}

// hub is one room: its goroutine alone touches clients.
type hub struct {
	clients    map[*client]bool
	register   chan *client
	unregister chan *client
	broadcast  chan broadcast
	stop       chan struct{}
}

func newHub() *hub {
	return &hub{
		clients:    make(map[*client]bool),
		register:   make(chan *client),
		unregister: make(chan *client),
		broadcast:  make(chan broadcast),
		stop:       make(chan struct{}),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case b := <-h.broadcast:
			n := 0
			for c := range h.clients {
				select {
				case c.send <- b.msg:
					n++
				default: // slow consumer: drop it
					close(c.send)
					delete(h.clients, c)
				}
			}
			b.reply <- n
		case <-h.stop:
			for c := range h.clients {
				close(c.send)
				delete(h.clients, c)
			}
			return
		}
	}
}

func (c *client) readPump() {
	defer func() {
		select {
		case c.hub.unregister <- c:
		case <-c.hub.stop:
		}
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
	}
}

func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// server is the rooms, made on first use.
type server struct {
	mu    sync.Mutex
	rooms map[string]*hub
}

func (s *server) room(id string, create bool) *hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.rooms[id]
	if h == nil && create {
		h = newHub()
		s.rooms[id] = h
		go h.run()
	}
	return h
}

func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	h := s.room(r.PathValue("room"), true)
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{hub: h, conn: conn, send: make(chan []byte, sendBuffer)}
	select {
	case h.register <- c:
	case <-h.stop:
		conn.Close()
		return
	}
	go c.writePump()
	go c.readPump()
}

func (s *server) createRoom(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RoomID string `json:"roomId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.RoomID == "" {
		http.Error(w, "want {\"roomId\": ...}", http.StatusBadRequest)
		return
	}
	s.room(req.RoomID, true)
	fmt.Fprintf(w, "{\"room\":{\"roomId\":%q}}", req.RoomID)
}

func (s *server) deleteRoom(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	s.mu.Lock()
	h := s.rooms[id]
	delete(s.rooms, id)
	s.mu.Unlock()
	if h == nil {
		http.Error(w, "room not found", http.StatusNotFound)
		return
	}
	close(h.stop)
	fmt.Fprint(w, "{}")
}

func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	h := s.room(r.PathValue("room"), false)
	if h == nil {
		http.Error(w, "room not found", http.StatusNotFound)
		return
	}
	var req struct {
		Text   *string `json:"text"`
		Binary []byte  `json:"binary"` // base64, as in roomd's REST API
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg := req.Binary
	if req.Text != nil {
		msg = []byte(*req.Text)
	}
	b := broadcast{msg: msg, reply: make(chan int, 1)}
	select {
	case h.broadcast <- b:
	case <-h.stop:
		http.Error(w, "room deleted", http.StatusNotFound)
		return
	}
	fmt.Fprintf(w, "{\"recipientCount\":%d}", <-b.reply)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:28080", "WebSocket address (GET /ws/{room})")
	adminAddr := flag.String("admin", "127.0.0.1:29091", "REST address (POST /v1/rooms, POST /v1/rooms/{room}/messages, DELETE /v1/rooms/{room})")
	flag.Parse()
	s := &server{rooms: map[string]*hub{}}
	pub := http.NewServeMux()
	pub.HandleFunc("GET /ws/{room}", s.serveWS)
	adm := http.NewServeMux()
	adm.HandleFunc("POST /v1/rooms", s.createRoom)
	adm.HandleFunc("DELETE /v1/rooms/{room}", s.deleteRoom)
	adm.HandleFunc("POST /v1/rooms/{room}/messages", s.publish)
	adm.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	servers := []*http.Server{
		{Addr: *listen, Handler: pub, ReadHeaderTimeout: 10 * time.Second},
		{Addr: *adminAddr, Handler: adm, ReadHeaderTimeout: 10 * time.Second},
	}
	for _, srv := range servers {
		go func() {
			if err := srv.ListenAndServe(); err != http.ErrServerClosed {
				log.Fatal(err)
			}
		}()
	}
	log.Printf("baseline serving ws://%s/ws/{room}, REST http://%s/v1/rooms", *listen, *adminAddr)
	<-ctx.Done()
	// A yardstick, not a product: connections are simply cut.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
}
