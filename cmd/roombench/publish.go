package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	roomdv1 "roomd/gen/roomd/v1"
)

// admin is the part of the admin API roombench drives.
type admin interface {
	createRoom(ctx context.Context, roomID string) error
	deleteRoom(ctx context.Context, roomID string) error
	// publisher returns a function that publishes one binary payload and
	// reports how many members the server handed it to. Each publisher gets
	// its own, so that it may hold its own connection.
	publisher() (func(ctx context.Context, roomID string, payload []byte) (int, error), error)
	// countsRecipients is false when the server's publish does not say
	// how many members it handed the message to (Centrifugo).
	countsRecipients() bool
	close()
}

// grpcAdmin publishes over gRPC: one HTTP/2 connection per publisher.
type grpcAdmin struct {
	addr string

	mu      sync.Mutex
	conns   []*grpc.ClientConn
	control roomdv1.RoomServiceClient // for creating and deleting rooms
}

func (g *grpcAdmin) controlClient() (roomdv1.RoomServiceClient, error) {
	g.mu.Lock()
	c := g.control
	g.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := g.dial()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.control = c
	g.mu.Unlock()
	return c, nil
}

func (g *grpcAdmin) dial() (roomdv1.RoomServiceClient, error) {
	cc, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.conns = append(g.conns, cc)
	g.mu.Unlock()
	return roomdv1.NewRoomServiceClient(cc), nil
}

func (g *grpcAdmin) createRoom(ctx context.Context, roomID string) error {
	c, err := g.controlClient()
	if err != nil {
		return err
	}
	echo := true
	_, err = c.CreateRoom(ctx, &roomdv1.CreateRoomRequest{RoomId: roomID, Echo: &echo})
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}

func (g *grpcAdmin) deleteRoom(ctx context.Context, roomID string) error {
	c, err := g.controlClient()
	if err != nil {
		return err
	}
	_, err = c.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: roomID})
	return err
}

func (g *grpcAdmin) publisher() (func(context.Context, string, []byte) (int, error), error) {
	c, err := g.dial()
	if err != nil {
		return nil, err
	}
	req := &roomdv1.PublishRequest{}
	bin := &roomdv1.PublishRequest_Binary{}
	return func(ctx context.Context, roomID string, payload []byte) (int, error) {
		req.RoomId, bin.Binary, req.Payload = roomID, payload, bin
		resp, err := c.Publish(ctx, req)
		if err != nil {
			return 0, err
		}
		return int(resp.GetRecipientCount()), nil
	}, nil
}

func (g *grpcAdmin) countsRecipients() bool { return true }

func (g *grpcAdmin) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, cc := range g.conns {
		cc.Close()
	}
	g.conns, g.control = nil, nil
}

// restAdmin publishes through the REST gateway (or anything that speaks
// the same three endpoints, such as the baseline hub).
type restAdmin struct {
	base   *url.URL
	client *http.Client
	apiKey string // sent as X-API-Key when set (Centrifugo's HTTP API)
}

func newRESTAdmin(base *url.URL, publishers int) *restAdmin {
	tr := &http.Transport{MaxIdleConnsPerHost: publishers + 4, MaxConnsPerHost: 0, IdleConnTimeout: 30 * time.Second}
	return &restAdmin{base: base, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (a *restAdmin) do(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	u := *a.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.apiKey != "" {
		req.Header.Set("X-API-Key", a.apiKey)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return out, resp.StatusCode, err
}

func (a *restAdmin) createRoom(ctx context.Context, roomID string) error {
	body, _ := json.Marshal(map[string]any{"roomId": roomID, "echo": true})
	out, code, err := a.do(ctx, http.MethodPost, "/v1/rooms", body)
	switch {
	case err != nil:
		return err
	case code == http.StatusOK || code == http.StatusConflict:
		return nil
	}
	return fmt.Errorf("create room %s: HTTP %d: %s", roomID, code, bytes.TrimSpace(out))
}

func (a *restAdmin) deleteRoom(ctx context.Context, roomID string) error {
	out, code, err := a.do(ctx, http.MethodDelete, "/v1/rooms/"+roomID, nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("delete room %s: HTTP %d: %s", roomID, code, bytes.TrimSpace(out))
	}
	return err
}

func (a *restAdmin) publisher() (func(context.Context, string, []byte) (int, error), error) {
	var body []byte
	return func(ctx context.Context, roomID string, payload []byte) (int, error) {
		body = append(body[:0], `{"binary":"`...)
		body = base64.StdEncoding.AppendEncode(body, payload)
		body = append(body, `"}`...)
		out, code, err := a.do(ctx, http.MethodPost, "/v1/rooms/"+roomID+"/messages", body)
		if err != nil {
			return 0, err
		}
		if code != http.StatusOK {
			return 0, fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(out))
		}
		var resp struct {
			RecipientCount int `json:"recipientCount"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			return 0, fmt.Errorf("publish response %q: %w", out, err)
		}
		return resp.RecipientCount, nil
	}, nil
}

func (a *restAdmin) countsRecipients() bool { return true }

func (a *restAdmin) close() { a.client.CloseIdleConnections() }

// publishStats is what the publishers did.
type publishStats struct {
	ok         []uint64 // successful publishes, by publisher
	errs       atomic.Uint64
	recipients atomic.Uint64 // sum of the servers' recipient counts
	firstErr   atomic.Value  // string
	// With a -rate: publishes that were due before the end of -duration
	// but never started, because their publisher was behind schedule, and
	// the most a publish started after it was due.
	dueUnsent atomic.Uint64
	maxLag    atomic.Int64 // nanoseconds
}

// maxPublishesPerPublisher bounds each publisher's loop by count as well as
// by time.
const maxPublishesPerPublisher = 50_000_000

// maxConsecutiveErrors stops a publisher whose publishes keep failing.
const maxConsecutiveErrors = 100

// clock is the time the publishers keep: the real one, or a test's.
type clock interface {
	now() time.Time
	// sleepUntil returns at t, or sooner if ctx ends.
	sleepUntil(ctx context.Context, t time.Time)
}

type realClock struct{}

func (realClock) now() time.Time { return time.Now() }

func (realClock) sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// publish runs cfg.publishers publishers for cfg.duration; publisher p
// publishes to room p%rooms through apis[publishNode(p, ...)], at cfg.rate
// messages/s each (0: back to back).
func publish(ctx context.Context, cfg *config, apis []admin, roomIDs []string) (*publishStats, error) {
	return publishWith(ctx, cfg, apis, roomIDs, realClock{})
}

// publishWith is publish on clk.
//
// A paced publisher (cfg.rate > 0) keeps a schedule: its k-th publish is
// due at start + stagger + k/rate, for as long as that is before the end
// (start + cfg.duration), and its payload carries that due time,
// not the time it was sent. A publisher that falls behind (a publish call
// that takes longer than the interval) sends its overdue messages back to
// back, each stamped with when it was due, so that the backlog shows in
// the publish-to-receive latency instead of being hidden by a later stamp
// (coordinated omission). Back to back (rate 0) there is no schedule: each
// payload carries its send time.
func publishWith(ctx context.Context, cfg *config, apis []admin, roomIDs []string, clk clock) (*publishStats, error) {
	st := &publishStats{ok: make([]uint64, cfg.publishers)}
	fns := make([]func(context.Context, string, []byte) (int, error), cfg.publishers)
	for p := range fns {
		fn, err := apis[publishNode(p, len(roomIDs), len(apis))].publisher()
		if err != nil {
			return nil, err
		}
		fns[p] = fn
	}
	start := clk.now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for p := range cfg.publishers {
		wg.Go(func() {
			payload := make([]byte, cfg.payload)
			for i := range payload[headerSize:] {
				payload[headerSize+i] = 'a' + byte(i%26)
			}
			room := roomIDs[p%len(roomIDs)]
			id := publisherID(cfg.process, p)
			var interval time.Duration
			if cfg.rate > 0 {
				interval = time.Duration(float64(time.Second) / cfg.rate)
			}
			// Stagger paced publishers so that they do not all fire at once.
			due := start.Add(interval * time.Duration(p) / time.Duration(cfg.publishers))
			failures := 0
			for seq := uint64(1); seq <= maxPublishesPerPublisher; seq++ {
				if interval > 0 {
					if !due.Before(deadline) { // the schedule is [start, deadline)
						return
					}
					clk.sleepUntil(ctx, due)
				}
				now := clk.now()
				if ctx.Err() != nil {
					return
				}
				if now.After(deadline) {
					if interval > 0 { // behind: these were due and never sent
						st.dueUnsent.Add(uint64((deadline.Sub(due) + interval - 1) / interval))
					}
					return
				}
				stamp := now
				if interval > 0 {
					stamp = due
					storeMax(&st.maxLag, int64(now.Sub(due)))
					due = due.Add(interval)
				}
				putHeader(payload, stamp, id, seq)
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				n, err := fns[p](cctx, room, payload)
				cancel()
				if err != nil {
					st.errs.Add(1)
					st.firstErr.CompareAndSwap(nil, err.Error())
					if failures++; failures >= maxConsecutiveErrors {
						return
					}
					continue
				}
				failures = 0
				st.ok[p]++ // only this goroutine writes it; read after wg.Wait
				st.recipients.Add(uint64(n))
			}
		})
	}
	wg.Wait()
	return st, nil
}

// storeMax raises m to v if v is larger.
func storeMax(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}
