package wsedge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"roomd/rooms"
	"roomd/rooms/errcode"
	"roomd/wsedge/protocol"
	"roomd/wsedge/token"
	"roomd/wsedge/web"
)

// Defaults for the zero values of Config; MaxMessageBytes's is
// rooms.DefaultMaxMessageBytes, which the admin API shares.
const (
	DefaultPingInterval = 25 * time.Second
	DefaultPongTimeout  = 20 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultCloseTimeout = 3 * time.Second
	DefaultProxyTimeout = 5 * time.Second
)

// Config configures an Edge. Zero values mean the documented defaults.
type Config struct {
	Hub *rooms.Hub
	// AutoCreate lets a client joining a missing room create it; without it
	// the upgrade is refused with 404.
	AutoCreate bool
	// MaxMessageBytes is the largest message a client may send; a bigger one
	// closes the connection with 1009. 0 means 64 KiB.
	MaxMessageBytes int64
	// PingInterval is how often the server pings; a peer that sends nothing
	// (not even a pong) for PingInterval+PongTimeout is dropped. A message
	// must also be whole within PongTimeout of its first frame, or the
	// connection is closed with 1008. 0 means 25 s and 20 s.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds every socket write; a write that takes longer
	// marks the member a slow consumer. The deadline is renewed only once
	// half of it is used, so a write gets between half of WriteTimeout and
	// all of it. 0 means 10 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds the wait for the peer's close frame after the
	// server sent its own. 0 means 3 s.
	CloseTimeout time.Duration
	// Tokens, when set, requires every client to present a signed token
	// (?token=); ?user= is then ignored. Without it roomd runs in
	// development mode and trusts ?user=.
	Tokens *token.Verifier
	// AllowedOrigins lists the page origins that may connect besides
	// pages from the host the request was sent to (roomd's own pages),
	// which always may: exact origins, "https://*.example.com" wildcards,
	// or "*" for any. Requests without an Origin header (not from a
	// browser) are always allowed. A refused page is upgraded and closed
	// with 4403 and a reason, which a page can read and a 403 it cannot.
	AllowedOrigins []string
	// MaxConns and MaxConnsPerIP bound the sockets open on the listeners
	// that Listener wraps, in total and per remote IP, from accept to
	// close, upgraded or not; 0 means unlimited. Handler alone counts
	// nothing.
	MaxConns      int
	MaxConnsPerIP int
	// TrustedProxies are the proxies in front of the edge (see
	// ParseTrustedProxies). From a peer in them, and only then, the client
	// is the one X-Forwarded-For names (clientaddr.go): ListClients shows
	// it, and MaxConnsPerIP and MaxRoomsPerIP count it, at the upgrade;
	// the proxy's socket counts in MaxConns only. Empty trusts nobody.
	TrustedProxies []netip.Prefix
	// ProxyProtocol makes Listener refuse sockets from peers outside
	// TrustedProxies and expect every socket to start with a PROXY
	// protocol header, version 1 or 2, whose client address is then the
	// socket's, within ProxyTimeout (0 means 5 s) (proxyproto.go).
	ProxyProtocol bool
	ProxyTimeout  time.Duration
	// MessageRate is how many messages per second a connection may send on
	// average, with bursts of MessageBurst; over it the connection is closed
	// with 1008. 0 means unlimited.
	MessageRate  float64
	MessageBurst int
	// MaxRoomsPerConn bounds the rooms one client protocol connection may
	// be in at once; 0 means unlimited.
	MaxRoomsPerConn int
	// MaxRoomsPerIP bounds the rooms the connections of one remote IP may
	// have made by joining (AutoCreate) that still exist; MaxRoomsPerUser
	// does the same per user when Tokens name users. Beyond, a raw upgrade
	// is refused with 429 and a join with room_quota. 0 means unlimited.
	MaxRoomsPerIP   int
	MaxRoomsPerUser int
	// Logger receives connection errors and a line per finished
	// connection (info; warn for slow consumers and floods); nil means
	// slog.Default().
	Logger *slog.Logger
	// WriteLatency, when set, is called with how long a message waited
	// from its publication until a connection's writer took it, for one
	// write round in 64 of each connection (see sampleLatency). It must
	// not block.
	WriteLatency func(time.Duration)
}

// Edge serves the WebSocket endpoint and owns its connections.
type Edge struct {
	cfg      Config
	hub      *rooms.Hub
	log      *slog.Logger
	upgrader websocket.Upgrader // raw relay: no subprotocol
	// sessionUpgrader negotiates the client protocol on GET /ws.
	sessionUpgrader websocket.Upgrader

	flush *flusher // runs connections' writes

	sockets sockets // what Listener accepted and has not seen closed
	stats   stats   // see Stats

	// controlRate is the pings and pongs per second a peer may send: its
	// own, and its answers to the server's pings.
	controlRate float64

	mu           sync.Mutex
	conns        map[*conn]struct{} // upgrading or upgraded
	shuttingDown bool
	idle         chan struct{} // closed when conns empties after shutdown began
}

// New returns an Edge serving cfg.Hub.
func New(cfg Config) *Edge {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = rooms.DefaultMaxMessageBytes
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MessageRate > 0 && cfg.MessageBurst < 1 {
		cfg.MessageBurst = max(1, int(cfg.MessageRate))
	}
	e := &Edge{
		cfg: cfg,
		hub: cfg.Hub,
		log: cfg.Logger,
		upgrader: websocket.Upgrader{
			// A small read buffer and a write buffer pool keep an idle
			// connection cheap; wsedge writes frames itself, so gorilla's
			// write buffer is only taken for its rare control frames.
			ReadBufferSize:  512,
			WriteBufferPool: &sync.Pool{},
			// serveRoom checks the origin itself, before joining, so
			// that the refusal can say which origin was refused.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		flush:       newFlusher(),
		controlRate: controlFrameRate + 1/cfg.PingInterval.Seconds(),
		conns:       make(map[*conn]struct{}),
		sockets:     sockets{perIP: make(map[netip.Addr]int)},
	}
	e.sessionUpgrader = e.upgrader
	e.sessionUpgrader.Subprotocols = []string{protocol.Subprotocol}
	return e
}

// Handler serves the public listener: GET /ws/{room_id} (raw relay),
// GET /ws (the client protocol), the browser SDK at /v1/roomd.js, the
// demo chat page at / and its /favicon.ico (pages served from this host
// may always open WebSockets to it).
func (e *Edge) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{room_id...}", e.serveRoom)
	mux.HandleFunc("GET /ws", e.serveSession)
	mux.Handle("GET /v1/roomd.js", web.SDK())
	mux.Handle("GET /{$}", web.DemoPage())
	mux.Handle("GET /favicon.ico", web.Favicon())
	return mux
}

func (e *Edge) serveRoom(w http.ResponseWriter, r *http.Request) {
	// A copy: the connection outlives the request, whose whole line the
	// path value would otherwise keep alive.
	roomID := strings.Clone(r.PathValue("room_id"))
	if err := rooms.ValidateRoomID(roomID); err != nil {
		e.refuse(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !e.preflight(w, r) {
		return
	}

	c, grant := e.admit(w, r, roomID)
	if c == nil {
		return
	}
	// Joining before the upgrade lets a missing or full room be refused
	// with an HTTP status, and no message published after the 101 is lost.
	client, err := e.hub.Join(roomID, rooms.ClientInfo{UserID: grant.UserID, RemoteAddr: c.ClientAddr()}, c,
		rooms.JoinOptions{AutoCreate: e.cfg.AutoCreate, Quotas: e.roomQuotas(c.addr.quotaKey(), grant.UserID)})
	if errors.Is(err, rooms.ErrBanned) {
		e.untrack(c)
		e.refuseAfterUpgrade(w, r, rooms.CloseForbidden, err.Error())
		return
	}
	if err != nil {
		e.untrack(c)
		e.refuse(w, err.Error(), joinStatus(err))
		return
	}
	c.client = client
	c.roomID = roomID
	e.upgradeAndServe(w, r, c, &e.upgrader, grant.Expires)
}

// upgradeAndServe completes the upgrade of an admitted, joined connection
// and starts its pumps. A failed upgrade (gorilla has answered it) takes
// the client out again.
func (e *Edge) upgradeAndServe(w http.ResponseWriter, r *http.Request, c *conn, up *websocket.Upgrader, tokenExpires time.Time) {
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		e.hub.Leave(c.client, rooms.CauseDropped, rooms.CloseAbnormal, "upgrade failed: "+err.Error())
		e.untrack(c)
		return
	}
	// From here on wsedge reads and writes frames itself; gorilla's Conn
	// has done its job (the handshake) and is dropped.
	c.attach(ws.NetConn(), tokenExpires)
	// The handler returns at once: the read loop runs in a fresh goroutine
	// so net/http's per-request state (buffers, a grown stack) is freed.
	go c.readLoop()
}

// admit registers a new connection, for Shutdown to close, and finds out
// who it is. When it refuses, it has answered the request and returns nil.
// Its socket was counted against the connection limits at accept; a
// client behind a trusted proxy is counted per IP here.
func (e *Edge) admit(w http.ResponseWriter, r *http.Request, roomID string) (*conn, *token.Grant) {
	c := &conn{edge: e, addr: e.clientAddrOf(r)}
	if !e.track(c) {
		e.refuse(w, "server shutting down", http.StatusServiceUnavailable)
		return nil, nil
	}
	if !e.countForwarded(w, c) {
		e.untrack(c)
		return nil, nil
	}
	grant, code, reason := e.identify(r, roomID)
	if grant == nil {
		e.untrack(c)
		e.refuseAfterUpgrade(w, r, code, reason)
		return nil, nil
	}
	c.readOnly = !grant.CanPublish
	return c, grant
}

// preflight checks what every upgrade needs, answering with an HTTP error
// and false when something is wrong.
func (e *Edge) preflight(w http.ResponseWriter, r *http.Request) bool {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		e.refuse(w, "this is a WebSocket endpoint: connect with a WebSocket client, e.g. new WebSocket('ws://"+r.Host+r.URL.Path+"')", http.StatusUpgradeRequired)
		return false
	}
	if !e.originAllowed(r) {
		// Upgraded and closed rather than answered 403: a page cannot read
		// the status of a failed upgrade (it sees 1006, like a network
		// drop) but can read a close code and reason, and stop retrying.
		// Nothing is joined or read, so the page gains nothing else.
		e.refuseAfterUpgrade(w, r, rooms.CloseForbidden, originRefusal(r.Header.Get("Origin")))
		return false
	}
	if e.cfg.Tokens == nil {
		if user := r.URL.Query().Get("user"); len(user) > rooms.MaxIDBytes || !utf8.ValidString(user) {
			e.refuse(w, "user must be valid UTF-8 of at most "+strconv.Itoa(rooms.MaxIDBytes)+" bytes", http.StatusBadRequest)
			return false
		}
	}
	return true
}

// roomQuotas are what a room made by a join from ip, as userID, counts
// against: the address, and the user when tokens vouch for user ids (in
// development mode anyone may claim any ?user=).
func (e *Edge) roomQuotas(ip, userID string) []rooms.RoomQuota {
	var quotas []rooms.RoomQuota
	if e.cfg.MaxRoomsPerIP > 0 {
		quotas = append(quotas, rooms.RoomQuota{Creator: "address " + ip, Max: e.cfg.MaxRoomsPerIP})
	}
	if e.cfg.MaxRoomsPerUser > 0 && e.cfg.Tokens != nil {
		quotas = append(quotas, rooms.RoomQuota{Creator: "user " + strconv.Quote(userID), Max: e.cfg.MaxRoomsPerUser})
	}
	return quotas
}

// joinStatus is the HTTP status of an upgrade the Hub refused.
func joinStatus(err error) int { return errcode.Of(err).HTTP }

// track registers a new connection; false once shutdown has begun.
func (e *Edge) track(c *conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shuttingDown {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *Edge) untrack(c *conn) {
	e.mu.Lock()
	_, tracked := e.conns[c]
	delete(e.conns, c)
	if tracked && e.shuttingDown && len(e.conns) == 0 && e.idle != nil {
		close(e.idle)
		e.idle = nil
	}
	e.mu.Unlock()
	if tracked && c.addr.countedIP { // after e.mu: the sockets' lock is taken alone
		e.uncountIP(c.addr.ip)
	}
}

// Shutdown refuses new connections, closes every connection with 1001 at
// once and waits for them to finish their close handshakes: Drain without
// a window.
func (e *Edge) Shutdown(ctx context.Context) error { return e.Drain(ctx, 0) }

// Drain refuses new connections and closes every connection with 1001,
// spread evenly over window so that their clients do not all come back at
// the same instant (each reconnects some jittered delay after its close,
// so reconnections arrive at most as fast as closes: len/window a second).
// Connections not yet closed are served as before. Drain then waits for the
// close handshakes; when ctx ends first, every remaining socket is cut,
// asked to close or not, and ctx's error is returned.
func (e *Edge) Drain(ctx context.Context, window time.Duration) error {
	e.mu.Lock()
	e.shuttingDown = true
	idle := make(chan struct{})
	if len(e.conns) == 0 {
		close(idle)
	} else {
		e.idle = idle
	}
	conns := make([]*conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()

	if closeSpread(ctx, conns, window) {
		select {
		case <-idle:
			return nil
		case <-ctx.Done():
		}
	}
	for _, c := range conns {
		c.cut()
	}
	<-idle // cut sockets fail their reads at once, so this is short
	return ctx.Err()
}

// drainTick is how often Drain closes the connections that are due: finer
// would cost wake-ups and spread no better than clients' own jitter.
const drainTick = 10 * time.Millisecond

// closeSpread closes conns with 1001, the i-th of n at i/n of window from
// now, a tick's worth at a time. It reports false if ctx ended first.
func closeSpread(ctx context.Context, conns []*conn, window time.Duration) bool {
	start := time.Now()
	var tick *time.Ticker
	if window > 0 && len(conns) > 1 {
		tick = time.NewTicker(drainTick)
		defer tick.Stop()
	}
	for closed := 0; closed < len(conns); {
		due := len(conns)
		if tick != nil {
			due = min(len(conns), 1+int(float64(len(conns))*float64(time.Since(start))/float64(window)))
		}
		for ; closed < due; closed++ {
			conns[closed].Close(rooms.CloseGoingAway, "server shutting down")
		}
		if closed == len(conns) {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
