package main

import (
	"context"
	"encoding/binary"
	"io"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told: sleeping until a time
// jumps to it, and a publish that "takes" a while moves it on by that much.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// publishCall is one call of a recordingAdmin's publisher: when it was made
// and the header of the payload it was given.
type publishCall struct {
	at        time.Time
	stamp     time.Time
	publisher uint32
	seq       uint64
}

// recordingAdmin is an admin API whose publishes take no time on its clock,
// except those it is told to block: call n (from 1) takes block[n].
type recordingAdmin struct {
	clk   *fakeClock
	block map[int]time.Duration

	mu    sync.Mutex
	calls []publishCall
}

func (a *recordingAdmin) createRoom(context.Context, string) error { return nil }
func (a *recordingAdmin) deleteRoom(context.Context, string) error { return nil }
func (a *recordingAdmin) countsRecipients() bool                   { return true }
func (a *recordingAdmin) close()                                   {}

func (a *recordingAdmin) publisher() (func(context.Context, string, []byte) (int, error), error) {
	return func(_ context.Context, _ string, payload []byte) (int, error) {
		a.mu.Lock()
		a.calls = append(a.calls, publishCall{
			at:        a.clk.now(),
			stamp:     time.Unix(0, int64(binary.LittleEndian.Uint64(payload[offSentAt:]))),
			publisher: binary.LittleEndian.Uint32(payload[offPublisher:]),
			seq:       binary.LittleEndian.Uint64(payload[offSeq:]),
		})
		d := a.block[len(a.calls)]
		a.mu.Unlock()
		a.clk.advance(d)
		return 1, nil
	}, nil
}

// offsets gives each call's send time and stamp as offsets from t0.
func offsets(calls []publishCall, t0 time.Time) (at, stamp []time.Duration) {
	for _, c := range calls {
		at = append(at, c.at.Sub(t0))
		stamp = append(stamp, c.stamp.Sub(t0))
	}
	return at, stamp
}

func msList(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

// TestPublisherStampsDueTimes: a paced publisher whose publish call blocks
// falls behind, catches up back to back, and stamps every payload with the
// time it was due, not the time it was sent; a publisher still behind at
// the end counts what was due and never sent. Back to back there is no
// schedule, and the stamp is the send time.
func TestPublisherStampsDueTimes(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name      string
		rate      string
		block     map[int]time.Duration
		wantAt    []time.Duration
		wantStamp []time.Duration
		wantLag   time.Duration
		wantDue   uint64 // due but never sent
	}{
		{
			// 100 msg/s for 100 ms: due at 0, 10, ..., 90 ms. The first
			// call takes 35 ms: the messages due at 10, 20 and 30 ms go
			// out at 35 ms, back to back, stamped 10, 20 and 30 ms.
			name:      "first publish blocks 35 ms",
			rate:      "100",
			block:     map[int]time.Duration{1: 35 * time.Millisecond},
			wantAt:    msList(0, 35, 35, 35, 40, 50, 60, 70, 80, 90),
			wantStamp: msList(0, 10, 20, 30, 40, 50, 60, 70, 80, 90),
			wantLag:   25 * time.Millisecond,
		},
		{
			// The third call takes 250 ms, past the end at 100 ms: the
			// messages due at 30, 40, ..., 90 ms were never sent.
			name:      "third publish blocks past the end",
			rate:      "100",
			block:     map[int]time.Duration{3: 250 * time.Millisecond},
			wantAt:    msList(0, 10, 20),
			wantStamp: msList(0, 10, 20),
			wantDue:   7,
		},
		{
			// Back to back the stamp is when each was sent. The clock
			// moves only in publishes; the sixth runs out of time.
			name: "rate 0",
			rate: "0",
			block: map[int]time.Duration{1: 10 * time.Millisecond, 2: 10 * time.Millisecond, 3: 40 * time.Millisecond,
				4: 10 * time.Millisecond, 5: 10 * time.Millisecond, 6: time.Second},
			wantAt:    msList(0, 10, 20, 60, 70, 80),
			wantStamp: msList(0, 10, 20, 60, 70, 80),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags([]string{"-conns", "1", "-publishers", "1", "-rate", tc.rate, "-duration", "100ms"}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			clk := &fakeClock{t: t0}
			api := &recordingAdmin{clk: clk, block: tc.block}
			st, err := publishWith(context.Background(), cfg, []admin{api}, []string{"room"}, clk)
			if err != nil {
				t.Fatal(err)
			}
			at, stamp := offsets(api.calls, t0)
			if !slices.Equal(at, tc.wantAt) {
				t.Errorf("sent at %v, want %v", at, tc.wantAt)
			}
			if !slices.Equal(stamp, tc.wantStamp) {
				t.Errorf("stamped %v, want %v", stamp, tc.wantStamp)
			}
			for i, c := range api.calls {
				if c.publisher != 0 || c.seq != uint64(i+1) {
					t.Errorf("call %d: publisher %d seq %d", i, c.publisher, c.seq)
				}
			}
			if st.ok[0] != uint64(len(tc.wantAt)) || st.errs.Load() != 0 {
				t.Errorf("ok %d errors %d, want %d and 0", st.ok[0], st.errs.Load(), len(tc.wantAt))
			}
			if lag := time.Duration(st.maxLag.Load()); lag != tc.wantLag {
				t.Errorf("max lag %s, want %s", lag, tc.wantLag)
			}
			if n := st.dueUnsent.Load(); n != tc.wantDue {
				t.Errorf("due but never sent %d, want %d", n, tc.wantDue)
			}
		})
	}
}
