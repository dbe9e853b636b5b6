package wsedge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"roomd/rooms"
)

// Benchmarks of the edge's hot paths. They run only with -bench; a quick
// check that they still work:
//
//	go test -run '^$' -bench . -benchtime 100x ./wsedge/

// BenchmarkMessageFrame is encoding one room message into a server frame,
// which happens once per message whatever the number of members.
func BenchmarkMessageFrame(b *testing.B) {
	for _, n := range []int{16, 128, 4096, 65536} {
		b.Run("payload="+strconv.Itoa(n), func(b *testing.B) {
			m := &rooms.Message{Kind: rooms.Binary, Payload: make([]byte, n)}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				_ = messageFrame(m)
			}
		})
	}
}

// BenchmarkFrameShared is what every member's writer pays for a message
// that is already encoded: the sync.Once fast path and the type assertion.
func BenchmarkFrameShared(b *testing.B) {
	m := &rooms.Message{Kind: rooms.Binary, Payload: make([]byte, 128)}
	_ = m.Frame(rawFormat, messageFrame)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Frame(rawFormat, messageFrame).([]byte)
	}
}

// broadcastWindow is how many publishes may be in flight before the
// benchmark waits for every member to have received them, so writers get
// to batch as they do under load, while memory stays bounded.
const broadcastWindow = 32

// BenchmarkBroadcastLoopback is the whole path of a room message over real
// sockets: Hub.Publish, the fan-out into member queues, the wake, each
// member's writer and its writev on a loopback TCP socket, to N gorilla
// clients in this process that read every frame. ns/delivery includes the
// clients' reading; a CPU profile separates the two sides (the clients run
// in websocket.(*Conn).NextReader, the server in wsedge and rooms).
func BenchmarkBroadcastLoopback(b *testing.B) {
	for _, n := range []int{1, 100, 1_000} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) { benchBroadcast(b, n) })
	}
}

func benchBroadcast(b *testing.B, members int) {
	hub := rooms.NewHub(rooms.Config{})
	edge := New(Config{Hub: hub, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(edge.Handler())
	defer srv.Close()
	if _, err := hub.CreateRoom("bench", rooms.RoomOptions{Echo: true}); err != nil {
		b.Fatal(err)
	}

	var (
		received atomic.Int64
		target   atomic.Int64
		reached  = make(chan struct{}, 1)
		readers  sync.WaitGroup
		clients  []*websocket.Conn
	)
	defer func() {
		for _, ws := range clients {
			ws.Close()
		}
		readers.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := edge.Shutdown(ctx); err != nil {
			b.Errorf("edge shutdown: %v", err)
		}
	}()
	dialer := &websocket.Dialer{ReadBufferSize: 4096, WriteBufferSize: 256}
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/bench"
	for range members {
		ws, _, err := dialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, ws)
		readers.Go(func() {
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
				if received.Add(1) == target.Load() {
					select {
					case reached <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	waitFor := func(want int64) {
		target.Store(want)
		timeout := time.After(10 * time.Second)
		for received.Load() < want { // a signal may be left over from an earlier window
			select {
			case <-reached:
			case <-timeout:
				b.Fatalf("after 10 s: %d of %d deliveries", received.Load(), want)
			}
		}
	}

	payload := make([]byte, 128)
	b.ResetTimer()
	published := 0
	for b.Loop() {
		if _, err := hub.Publish(&rooms.Message{RoomID: "bench", Kind: rooms.Binary, Payload: payload}); err != nil {
			b.Fatal(err)
		}
		published++
		if published%broadcastWindow == 0 {
			waitFor(int64(published * members))
		}
	}
	waitFor(int64(published * members))
	b.StopTimer()
	deliveries := float64(published) * float64(members)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkKernelFloor measures what no server on this machine can go
// under, so that benchmark results can be read against it: one system call
// that does nothing, and one frame-sized write to a loopback TCP socket
// whose peer reads it (a delivery to a member whose queue held one message
// is one such write). Writes go round-robin over N sockets, as a fan-out's
// do; ns/op includes the readers' share of the two cores.
func BenchmarkKernelFloor(b *testing.B) {
	b.Run("getppid", func(b *testing.B) {
		for b.Loop() {
			syscall.Getppid()
		}
	})
	for _, n := range []int{1, 1_000} {
		b.Run("write/sockets="+strconv.Itoa(n), func(b *testing.B) { benchLoopbackWrites(b, n) })
	}
	b.Run("handshake", benchLoopbackHandshakes)
}

// benchLoopbackHandshakes is the least a WebSocket upgrade costs on this
// machine: a loopback TCP connect and accept, and a request and a reply of a
// handshake's size, both ends in this process, many at once (as a load
// client dials), so ns/op is the inverse of the most connections per second
// the two cores can set up with no HTTP or WebSocket work at all. The
// connections stay open, as members' do.
func benchLoopbackHandshakes(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	const requestSize, replySize = 220, 130
	var (
		mu   sync.Mutex
		open []net.Conn
		wg   sync.WaitGroup
	)
	keep := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			server, err := ln.Accept()
			if err != nil {
				return // the listener is closed
			}
			keep(server)
			wg.Go(func() {
				if _, err := io.ReadFull(server, make([]byte, requestSize)); err == nil {
					_, _ = server.Write(make([]byte, replySize))
				}
			})
		}
	})
	defer func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Error(err)
				return
			}
			keep(client)
			if _, err := client.Write(make([]byte, requestSize)); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(client, make([]byte, replySize)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchLoopbackWrites(b *testing.B, sockets int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var (
		servers []net.Conn
		readers sync.WaitGroup
	)
	defer func() {
		for _, s := range servers {
			s.Close()
		}
		readers.Wait()
	}()
	for range sockets {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		servers = append(servers, server)
		readers.Go(func() {
			_, _ = io.Copy(io.Discard, client)
			client.Close()
		})
	}
	frame := messageFrame(&rooms.Message{Kind: rooms.Binary, Payload: make([]byte, 128)}).([]byte)
	i := 0
	for b.Loop() {
		if _, err := servers[i%sockets].Write(frame); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkConnectionSetup is one client's upgrade and join over a real
// loopback socket, through the Listener that counts sockets as roomd's
// public one does, the client (gorilla, in this process) included; the
// connections stay open until the end, as a room's members do.
func BenchmarkConnectionSetup(b *testing.B) {
	hub := rooms.NewHub(rooms.Config{})
	edge := New(Config{Hub: hub, MaxConns: 1 << 20, MaxConnsPerIP: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewUnstartedServer(edge.Handler())
	srv.Listener = edge.Listener(srv.Listener, false)
	srv.Start()
	defer srv.Close()
	if _, err := hub.CreateRoom("bench", rooms.RoomOptions{}); err != nil {
		b.Fatal(err)
	}
	var clients []*websocket.Conn
	defer func() {
		for _, ws := range clients {
			ws.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := edge.Shutdown(ctx); err != nil {
			b.Errorf("edge shutdown: %v", err)
		}
	}()
	dialer := &websocket.Dialer{ReadBufferSize: 512, WriteBufferSize: 256}
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/bench"
	for b.Loop() {
		ws, _, err := dialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, ws)
	}
}

// BenchmarkClientMessage is a client's message on its way in: the frame
// read off a loopback socket, unmasked, published, and delivered to one
// other member (gorilla clients in this process on both ends).
func BenchmarkClientMessage(b *testing.B) {
	for _, n := range []int{128, 4096, 65536} {
		b.Run("payload="+strconv.Itoa(n), func(b *testing.B) { benchClientMessage(b, n) })
	}
}

func benchClientMessage(b *testing.B, size int) {
	hub := rooms.NewHub(rooms.Config{})
	edge := New(Config{Hub: hub, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(edge.Handler())
	defer srv.Close()
	if _, err := hub.CreateRoom("bench", rooms.RoomOptions{}); err != nil { // no echo
		b.Fatal(err)
	}
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/bench"
	sender, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	receiver, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	arrived := make(chan struct{}, 1)
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			if _, _, err := receiver.NextReader(); err != nil {
				return
			}
			received.Add(1)
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	})
	defer func() {
		sender.Close()
		receiver.Close()
		reader.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := edge.Shutdown(ctx); err != nil {
			b.Errorf("edge shutdown: %v", err)
		}
	}()
	waitFor := func(want int64) {
		timeout := time.After(10 * time.Second)
		for received.Load() < want {
			select {
			case <-arrived:
			case <-timeout:
				b.Fatalf("after 10 s: %d of %d messages", received.Load(), want)
			}
		}
	}

	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	// Big messages get a smaller window, well inside the receiver's queue.
	window := int64(min(broadcastWindow, max(1, (256<<10)/size)))
	var sent int64
	for b.Loop() {
		if err := sender.WriteMessage(websocket.BinaryMessage, payload); err != nil {
			b.Fatal(err)
		}
		if sent++; sent%window == 0 {
			waitFor(sent)
		}
	}
	waitFor(sent)
}
