package main

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// heapInUse is the live heap after a full collection (twice, so that what
// sync.Pools let go is gone too).
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// The attack of issue 10: many raw connections, each in its own room,
// send large messages within every limit. What the rooms keep for resumers
// stays within -history-bytes, frames included, while they are still
// connected; without the bound the heap would grow by everything sent.
func TestHistoryBytesBoundTheHeap(t *testing.T) {
	const (
		rooms, perRoom = 32, 10 // 32 rooms × 10 × 60 KiB sent
		size           = 60 << 10
		total          = 2 << 20
	)
	// Each room could keep 512 KiB, 16 MiB in all: the total is what binds.
	s := startServer(t, "-history-bytes", strconv.Itoa(total), "-history-bytes-per-room", strconv.Itoa(512<<10))
	conns := make([]*websocket.Conn, rooms)
	for i := range conns {
		conns[i] = s.dial(t, "big-"+strconv.Itoa(i), "")
	}
	before := heapInUse()
	payload := []byte(strings.Repeat("x", size))
	for _, ws := range conns {
		for range perRoom {
			send(t, ws, websocket.BinaryMessage, string(payload))
			if f := read(t, ws); len(f.data) != size { // the echo: the room took it
				t.Fatalf("echo of %d bytes, want %d", len(f.data), size)
			}
		}
	}
	grown := int64(heapInUse()) - int64(before)
	const margin = 6 << 20
	t.Logf("sent %d MiB to %d rooms; the heap grew by %.1f MiB (-history-bytes %d MiB)", rooms*perRoom*size>>20, rooms, float64(grown)/(1<<20), total>>20)
	if grown > total+margin {
		t.Errorf("the heap grew by %d bytes with every room still open; want at most -history-bytes %d + %d", grown, total, margin)
	}
	for i, ws := range conns { // the rooms were alive while measured
		send(t, ws, websocket.TextMessage, "still here")
		if f := read(t, ws); f.data != "still here" {
			t.Fatalf("room %d: got %q", i, f.data)
		}
	}
}

// A resumer whose last message was evicted to keep the room within
// -history-bytes-per-room is told it has a gap; one whose last message is
// still kept gets exactly the rest.
func TestHistoryEvictedByBytesIsAGap(t *testing.T) {
	s := startServer(t, "-history-bytes-per-room", strconv.Itoa(256<<10))
	pub := dialSession(t, s, "user=pub")
	pub.mustAck(join("r"))
	sub := dialSession(t, s, "user=sub")
	epoch := sub.mustAck(join("r")).str("epoch")
	first := pub.mustAck(publish("r", "small")).num("seq")
	if m := sub.nextOf("message"); m.num("seq") != first {
		t.Fatalf("got %v, want seq %d", m, first)
	}
	sub.ws.Close() // the network drops

	big := strings.Repeat("x", 60<<10)
	var seqs []uint64
	for range 10 { // 600 KiB, far less than -history-size's 100 messages
		seqs = append(seqs, pub.mustAck(publish("r", big)).num("seq"))
	}

	back := dialSession(t, s, "user=sub")
	gap := back.mustFail(map[string]any{"op": "join", "room": "r", "since": first, "epoch": epoch}, "gap")
	if !strings.Contains(gap.str("message"), "keeps history back to message") {
		t.Errorf("gap message %q does not say how far back the history reaches", gap.str("message"))
	}
	ack, between := back.do(map[string]any{"op": "join", "room": "r", "since": seqs[8], "epoch": epoch})
	if ack.str("type") != "ack" || ack.num("replayed") != 1 || len(between) != 0 {
		t.Fatalf("resume from a kept message: %v (after %v), want an ack replaying 1", ack, between)
	}
	if m := back.nextOf("message"); m.num("seq") != seqs[9] || m.str("data") != big {
		t.Fatalf("replayed seq %d, want %d with its data", m.num("seq"), seqs[9])
	}
}
