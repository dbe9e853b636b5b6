package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gorilla/websocket"
)

func TestCentrifugoDataRoundTrip(t *testing.T) {
	for _, size := range []int{centrifugoMinPayload, 43, 128, 16384} {
		payload := make([]byte, size)
		for i := range payload[headerSize:] {
			payload[headerSize+i] = 'a' + byte(i%26)
		}
		sent := time.Unix(1_790_000_000, 123_456_789)
		putHeader(payload, sent, 7, 1<<40+3)
		data := appendCentrifugoData(nil, payload)
		if len(data) != size {
			t.Fatalf("size %d: data is %d bytes", size, len(data))
		}
		var str string
		if err := json.Unmarshal(data, &str); err != nil {
			t.Fatalf("size %d: data %q is not a JSON string: %v", size, data, err)
		}
		line := []byte(`{"push":{"channel":"roombench-1-0","pub":{"data":` + string(data) + `}}}`)
		var hdr [headerSize]byte
		if k := parseCentrifugoLine(line, &hdr); k != centrifugoPub {
			t.Fatalf("size %d: kind %d, want a publication", size, k)
		}
		if !bytes.Equal(hdr[:], payload[:headerSize]) {
			t.Errorf("size %d: header %x, want %x", size, hdr, payload[:headerSize])
		}
		if got := int64(binary.LittleEndian.Uint64(hdr[offSentAt:])); got != sent.UnixNano() {
			t.Errorf("size %d: sent at %d, want %d", size, got, sent.UnixNano())
		}
		if p, seq := binary.LittleEndian.Uint32(hdr[offPublisher:]), binary.LittleEndian.Uint64(hdr[offSeq:]); p != 7 || seq != 1<<40+3 {
			t.Errorf("size %d: publisher %d seq %d", size, p, seq)
		}
	}
}

func TestCentrifugoLines(t *testing.T) {
	var hdr [headerSize]byte
	payload := make([]byte, 64)
	putHeader(payload, time.Now(), 1, 2)
	pub := `{"push":{"channel":"c","pub":{"data":` + string(appendCentrifugoData(nil, payload)) + `}}}`
	frame := "{}\n" + pub + "\n\n" + pub + "\r\n" +
		`{"push":{"channel":"c","join":{"info":{"client":"x"}}}}` + "\n" +
		`{"push":{"channel":"c","pub":{"data":{"text":"not ours"}}}}` + "\n" +
		`{"push":{"channel":"c","pub":{"data":"0123"}}}` + "\n" +
		`{"push":{"channel":"c","pub":{"data":"` + strings.Repeat("zz", headerSize) + `"}}}` + "\n" +
		`{"id":3,"error":{"code":100,"message":"internal server error"}}` + "\n" +
		"{}"
	var kinds []centrifugoKind
	for line := range centrifugoLines([]byte(frame)) {
		kinds = append(kinds, parseCentrifugoLine(line, &hdr))
	}
	want := []centrifugoKind{centrifugoPing, centrifugoPub, centrifugoPub, centrifugoOther,
		centrifugoBadData, centrifugoBadData, centrifugoBadData, centrifugoOther, centrifugoPing}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	// Stopping early stops the iteration.
	n := 0
	for range centrifugoLines([]byte("{}\n{}\n{}")) {
		if n++; n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("iterated %d lines after break at 2", n)
	}
	for range centrifugoLines([]byte("\n\n")) {
		t.Error("an empty line was yielded")
	}
}

func TestCentrifugoCommands(t *testing.T) {
	b, err := centrifugoCommands(`room "1"`)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []map[string]json.RawMessage
	for line := range centrifugoLines(b) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("command %q: %v", line, err)
		}
		cmds = append(cmds, m)
	}
	if len(cmds) != 2 || string(cmds[0]["id"]) != "1" || cmds[0]["connect"] == nil ||
		string(cmds[1]["id"]) != "2" || string(cmds[1]["subscribe"]) != `{"channel":"room \"1\""}` {
		t.Errorf("commands %q", b)
	}
}

func TestCentrifugoPublishResult(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		ok   bool
	}{
		{200, `{"result":{}}`, true},
		{200, `{}`, true},
		{200, `{"error":{"code":102,"message":"unknown channel"}}`, false},
		{200, `{"error"`, false},
		{401, `Unauthorized`, false},
	} {
		if err := centrifugoPublishResult(tc.code, []byte(tc.body)); (err == nil) != tc.ok {
			t.Errorf("%d %s: err %v", tc.code, tc.body, err)
		}
	}
}

func TestCentrifugoFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-target", "centrifugo", "-url", "ws://127.0.0.1:38000", "-api-key", "k"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.admin != "http://127.0.0.1:38000" || cfg.via != viaCentrifugoAPI || cfg.apiKey != "k" {
		t.Errorf("admin %q via %q key %q", cfg.admin, cfg.via, cfg.apiKey)
	}
	for _, bad := range [][]string{
		{"-target", "centrifugo", "-via", "rest"},
		{"-target", "centrifugo", "-admin-grpc", "127.0.0.1:1"},
		{"-target", "centrifugo", "-payload", "41"},
		{"-target", "nats"},
		{"-api-key", "k"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseFlags([]string{"-payload", "20"}, io.Discard); err != nil {
		t.Errorf("roomd's minimum payload refused: %v", err)
	}
}

// fakeCentrifugo speaks just enough of Centrifugo's JSON client protocol and
// HTTP API for roombench: it batches pushes (up to three a frame), puts a
// ping in front of every fifth frame and sends one alone after each
// handshake, and counts the pongs.
type fakeCentrifugo struct {
	apiKey string

	mu   sync.Mutex
	subs map[string][]chan []byte

	handshakes atomic.Int64
	pings      atomic.Int64
	pongs      atomic.Int64
	bad        atomic.Int64 // anything the fake did not expect
	conns      sync.WaitGroup
}

func (fc *fakeCentrifugo) serveWS(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	fc.conns.Add(1)
	defer fc.conns.Done()
	defer ws.Close()
	_, first, err := ws.ReadMessage()
	if err != nil {
		fc.bad.Add(1)
		return
	}
	var channel string
	var ids []uint32
	for line := range centrifugoLines(first) {
		var cmd struct {
			ID        uint32           `json:"id"`
			Connect   *json.RawMessage `json:"connect"`
			Subscribe *struct {
				Channel string `json:"channel"`
			} `json:"subscribe"`
		}
		if err := json.Unmarshal(line, &cmd); err != nil {
			fc.bad.Add(1)
			return
		}
		ids = append(ids, cmd.ID)
		if cmd.Subscribe != nil {
			channel = cmd.Subscribe.Channel
		}
	}
	if len(ids) != 2 || channel == "" {
		fc.bad.Add(1)
		return
	}
	out := make(chan []byte, 1<<14)
	fc.mu.Lock()
	fc.subs[channel] = append(fc.subs[channel], out)
	fc.mu.Unlock()
	defer func() {
		fc.mu.Lock()
		fc.subs[channel] = slices.DeleteFunc(fc.subs[channel], func(c chan []byte) bool { return c == out })
		fc.mu.Unlock()
	}()
	// Both replies in one frame, as Centrifugo may send them.
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{"client":"x","version":"fake","ping":25,"pong":true}}`+"\n"+`{"id":2,"subscribe":{}}`)); err != nil {
		return
	}
	fc.handshakes.Add(1)
	fc.pings.Add(1)
	if err := ws.WriteMessage(websocket.TextMessage, []byte("{}")); err != nil {
		return
	}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for frames := 1; ; frames++ {
			var batch [][]byte
			select {
			case m := <-out:
				batch = append(batch, m)
			case <-stop:
				return
			}
			timer := time.NewTimer(20 * time.Millisecond)
		collect:
			for len(batch) < 3 {
				select {
				case m := <-out:
					batch = append(batch, m)
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
			if frames%5 == 0 {
				batch = append([][]byte{[]byte("{}")}, batch...)
				fc.pings.Add(1)
			}
			if err := ws.WriteMessage(websocket.TextMessage, bytes.Join(batch, []byte("\n"))); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-writerDone }()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		for line := range centrifugoLines(msg) {
			if isCentrifugoPing(line) {
				fc.pongs.Add(1)
			} else {
				fc.bad.Add(1)
			}
		}
	}
}

func (fc *fakeCentrifugo) servePublish(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-API-Key") != fc.apiKey {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Data) == 0 || req.Data[0] != '"' {
		fc.bad.Add(1)
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	ch, _ := json.Marshal(req.Channel)
	push := []byte(`{"push":{"channel":` + string(ch) + `,"pub":{"data":` + string(req.Data) + `}}}`)
	fc.mu.Lock()
	for _, out := range fc.subs[req.Channel] {
		select {
		case out <- push:
		default:
			fc.bad.Add(1)
		}
	}
	fc.mu.Unlock()
	_, _ = w.Write([]byte(`{"result":{}}`))
}

// TestAgainstFakeCentrifugo runs a short benchmark with -target centrifugo
// against the fake, with each reader: every publication arrives exactly
// once although pushes come batched, and every ping is answered.
func TestAgainstFakeCentrifugo(t *testing.T) {
	for _, reader := range readers() {
		t.Run(reader, func(t *testing.T) { testAgainstFakeCentrifugo(t, reader) })
	}
}

func testAgainstFakeCentrifugo(t *testing.T, reader string) {
	fc := &fakeCentrifugo{apiKey: "secret", subs: map[string][]chan []byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connection/websocket", fc.serveWS)
	mux.HandleFunc("POST /api/publish", fc.servePublish)
	srv := httptest.NewServer(mux) // on 127.0.0.1
	defer srv.Close()

	cfg, err := parseFlags([]string{
		"-target", "centrifugo", "-url", "ws://" + srv.Listener.Addr().String(), "-api-key", fc.apiKey,
		"-conns", "30", "-rooms", "3", "-publishers", "4", "-rate", "100", "-duration", "500ms",
		"-payload", "100", "-settle", "0s", "-source-addrs", "127.0.0.1-127.0.0.3",
		"-json", t.TempDir() + "/report.json", "-reader", reader,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Setup.Connected != 30 || fc.handshakes.Load() != 30 || rep.Config.Reader != reader {
		t.Fatalf("connected %d of 30 (%d handshakes): %v", rep.Setup.Connected, fc.handshakes.Load(), rep.Setup.Errors)
	}
	if len(rep.Closes) != 0 {
		t.Errorf("connections ended: %v", rep.Closes)
	}
	p := rep.Publish
	if p == nil || p.Published == 0 || p.PublishErrors != 0 || p.Lost != 0 || p.Duplicates != 0 || p.Malformed != 0 || !p.DrainComplete {
		t.Fatalf("publish report %+v", p)
	}
	if p.Unique != p.Expected || p.Received != p.Unique || p.LatencySamples != p.Unique {
		t.Errorf("deliveries %d, expected %d, received %d, latency samples %d", p.Unique, p.Expected, p.Received, p.LatencySamples)
	}
	if p.ServerRecipients != nil {
		t.Errorf("server recipients %d: Centrifugo does not count them", *p.ServerRecipients)
	}
	if p.Frames == 0 || p.Frames >= p.Received {
		t.Errorf("%d replies in %d frames: the fake batches them", p.Received, p.Frames)
	}
	// Wait for the fake's connections to end: then every pong has been read.
	done := make(chan struct{})
	go func() { fc.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the fake's connections did not end")
	}
	cf := rep.Centrifugo
	if cf == nil || cf.PingsAnswered < 30 || int64(cf.PingsAnswered) != fc.pongs.Load() || fc.pongs.Load() > fc.pings.Load() {
		t.Errorf("centrifugo report %+v; the fake sent %d pings and read %d pongs", cf, fc.pings.Load(), fc.pongs.Load())
	}
	if n := fc.bad.Load(); n != 0 {
		t.Errorf("the fake saw %d unexpected things", n)
	}
	var table strings.Builder
	rep.writeTable(&table)
	if !strings.Contains(table.String(), "server count unknown") || !strings.Contains(table.String(), "upgrades+connects+subscribes/s") {
		t.Errorf("table:\n%s", table.String())
	}
	if err := rep.writeJSON(cfg.jsonPath); err != nil {
		t.Fatal(err)
	}
}

func TestReadFrame(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef\n"), 1000)
	var buf []byte
	for _, r := range []io.Reader{bytes.NewReader(want), iotest.OneByteReader(bytes.NewReader(want)), iotest.DataErrReader(bytes.NewReader(want))} {
		got, err := readFrame(buf, r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, err %v", len(got), err)
		}
		buf = got // reused: the next read starts over
	}
	if _, err := readFrame(nil, iotest.ErrReader(io.ErrUnexpectedEOF)); err != io.ErrUnexpectedEOF {
		t.Errorf("err %v", err)
	}
}
