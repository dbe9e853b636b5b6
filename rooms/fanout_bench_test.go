package rooms

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// Benchmarks of the hot paths that the rooms package owns. They run only
// with -bench; a quick check that they still work:
//
//	go test -run '^$' -bench . -benchtime 100x ./rooms/

// nopTransport is a connection that takes wakes and closes and does nothing.
type nopTransport struct{}

func (nopTransport) Wake()                   {}
func (nopTransport) Close(CloseCode, string) {}

var benchPayload = make([]byte, 128)

// fanoutRoom makes a hub with one room of n members on nopTransports.
func fanoutRoom(b *testing.B, n int) (*Hub, []*Client) {
	b.Helper()
	h := NewHub(Config{})
	if _, err := h.CreateRoom("bench", RoomOptions{Echo: true}); err != nil {
		b.Fatal(err)
	}
	members := make([]*Client, n)
	for i := range members {
		c, err := h.Join("bench", ClientInfo{}, nopTransport{}, JoinOptions{})
		if err != nil {
			b.Fatal(err)
		}
		members[i] = c
	}
	return h, members
}

// drainEvery is how many publishes the fan-out benchmarks let queue up
// before emptying the queues (with the timer stopped): well under the 1 MiB
// bound, and under the 1024 entries a Queue keeps its array for.
const drainEvery = 256

// BenchmarkFanout is Hub.Publish through the MemoryBroker to Deliver, for a
// room of 1 to 10,000 members whose transports do nothing: the cost of the
// registry lookup, ordering, and one queue push (and, every drainEvery
// messages, one Wake) per member. Socket writes are not included; see
// wsedge's BenchmarkBroadcastLoopback for those.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1_000, 10_000} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			h, members := fanoutRoom(b, n)
			var batch []*Message
			drain := func() {
				for _, c := range members {
					batch = c.Queue().Take(batch[:0])
				}
				clear(batch)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := h.Publish(&Message{RoomID: "bench", Kind: Binary, Payload: benchPayload}); err != nil {
					b.Fatal(err)
				}
				if i%drainEvery == drainEvery-1 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/deliveries, "B/delivery")
		})
	}
}

// BenchmarkFanoutParallelRooms publishes from all Ps at once, each to its
// own rooms of 100 members: contention on the broker's topic map and the
// registry shards, not on one room.
func BenchmarkFanoutParallelRooms(b *testing.B) {
	const rooms, members = 64, 100
	h := NewHub(Config{})
	all := make([][]*Client, rooms)
	for r := range rooms {
		id := fmt.Sprintf("room-%d", r)
		if _, err := h.CreateRoom(id, RoomOptions{Echo: true}); err != nil {
			b.Fatal(err)
		}
		for range members {
			c, err := h.Join(id, ClientInfo{}, nopTransport{}, JoinOptions{})
			if err != nil {
				b.Fatal(err)
			}
			all[r] = append(all[r], c)
		}
	}
	var worker atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each worker owns the rooms w, w+P, ... so it alone drains them.
		w := int(worker.Add(1) - 1)
		var mine []int
		for r := w; r < rooms; r += runtime.GOMAXPROCS(0) {
			mine = append(mine, r)
		}
		if len(mine) == 0 {
			mine = []int{w % rooms} // more workers than rooms: share (drains race harmlessly)
		}
		ids := make([]string, len(mine))
		for i, r := range mine {
			ids[i] = fmt.Sprintf("room-%d", r)
		}
		var batch []*Message
		for i := 0; pb.Next(); i++ {
			k := i % len(mine)
			if _, err := h.Publish(&Message{RoomID: ids[k], Kind: Binary, Payload: benchPayload}); err != nil {
				b.Error(err)
				return
			}
			if i%drainEvery == drainEvery-1 {
				for _, r := range mine {
					for _, c := range all[r] {
						batch = c.Queue().Take(batch[:0])
					}
				}
				clear(batch)
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*members), "ns/delivery")
}

// BenchmarkQueue is one member's queue: push a batch of messages, then take
// them all at once as the transport's writer does.
func BenchmarkQueue(b *testing.B) {
	m := &Message{RoomID: "bench", Kind: Binary, Payload: benchPayload}
	for _, batchLen := range []int{1, 16, 256} {
		b.Run("batch="+strconv.Itoa(batchLen), func(b *testing.B) {
			q := &Queue{maxBytes: DefaultMaxQueueBytes}
			var dst []*Message
			b.ReportAllocs()
			for b.Loop() {
				for range batchLen {
					if q.push(m) == pushOverflow {
						b.Fatal("overflow")
					}
				}
				dst = q.Take(dst[:0])
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchLen), "ns/msg")
		})
	}
}

// BenchmarkQueueContended is pushes from the fan-out racing Takes from the
// writer on another P, the shape of a busy member.
func BenchmarkQueueContended(b *testing.B) {
	m := &Message{RoomID: "bench", Kind: Binary, Payload: benchPayload}
	q := &Queue{maxBytes: 1 << 30}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var dst []*Message
		for {
			select {
			case <-stop:
				return
			default:
			}
			dst = q.Take(dst[:0])
			clear(dst)
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		q.push(m)
	}
	close(stop)
	<-done
}

// registryHub makes a hub with rooms rooms of one member each.
func registryHub(b *testing.B, rooms int) (*Hub, []string) {
	b.Helper()
	h := NewHub(Config{})
	ids := make([]string, rooms)
	for i := range ids {
		ids[i] = fmt.Sprintf("room-%d", i)
		if _, err := h.CreateRoom(ids[i], RoomOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := h.Join(ids[i], ClientInfo{}, nopTransport{}, JoinOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return h, ids
}

// BenchmarkRegistry is lookups and membership changes from every P at
// once, spread over 1,000 rooms: the sharded registry under contention.
func BenchmarkRegistry(b *testing.B) {
	const rooms = 1_000
	b.Run("lookup", func(b *testing.B) {
		h, ids := registryHub(b, rooms)
		var seed atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				if h.lookup(ids[i%rooms]) == nil {
					b.Error("room missing")
					return
				}
				i++
			}
		})
	})
	b.Run("GetRoom", func(b *testing.B) {
		h, ids := registryHub(b, rooms)
		var seed atomic.Int64
		b.ResetTimer()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				if _, err := h.GetRoom(ids[i%rooms]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("JoinLeave", func(b *testing.B) {
		h, ids := registryHub(b, rooms)
		var seed atomic.Int64
		b.ResetTimer()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				c, err := h.Join(ids[i%rooms], ClientInfo{UserID: "u"}, nopTransport{}, JoinOptions{})
				if err != nil {
					b.Error(err)
					return
				}
				h.Leave(c, CauseClosedByClient, CloseNormal, "")
				i++
			}
		})
	})
	b.Run("JoinLeaveAutoCreate", func(b *testing.B) {
		// Each Join makes its room and each Leave removes it again.
		h := NewHub(Config{})
		var seed atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				c, err := h.Join("auto-"+strconv.Itoa(i%rooms), ClientInfo{}, nopTransport{}, JoinOptions{AutoCreate: true})
				if err != nil {
					b.Error(err)
					return
				}
				h.Leave(c, CauseClosedByClient, CloseNormal, "")
				i++
			}
		})
	})
}
