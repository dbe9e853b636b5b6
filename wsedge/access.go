package wsedge

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"roomd/rooms"
	"roomd/wsedge/token"
)

// originAllowed applies AllowedOrigins: a request without Origin is not from
// a browser page and is allowed; a page served from the host the request
// was sent to (roomd's own demo page) is always allowed; "*" allows every
// page; an entry may be an exact origin ("https://app.example.com") or a
// wildcard subdomain ("https://*.example.com").
func (e *Edge) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range e.cfg.AllowedOrigins {
		if allowed == "*" || strings.EqualFold(allowed, origin) {
			return true
		}
		scheme, host, ok := strings.Cut(allowed, "://*.")
		if ok && strings.EqualFold(u.Scheme, scheme) && strings.HasSuffix(strings.ToLower(u.Host), "."+strings.ToLower(host)) {
			return true
		}
	}
	return false
}

// originRefusal is the close reason for a page whose origin may not
// connect. The origin is the page's own, quoted and cut short: it must fit
// a close frame whatever the header held.
func originRefusal(origin string) string {
	if len(origin) > 64 {
		origin = origin[:64] + "..."
	}
	return fmt.Sprintf("origin %q may not connect: not in -allowed-origins", origin)
}

// identify decides who the client is: the token's subject when tokens are
// required, else ?user= (development mode), and checks that the token allows
// roomID (unless it is empty: a client protocol connection names its rooms
// later). A refusal comes back as a close code and reason.
func (e *Edge) identify(r *http.Request, roomID string) (*token.Grant, rooms.CloseCode, string) {
	q := r.URL.Query()
	if e.cfg.Tokens == nil {
		return &token.Grant{UserID: strings.Clone(q.Get("user")), CanPublish: true}, 0, ""
	}
	g, err := e.cfg.Tokens.Verify(q.Get("token"))
	if err != nil {
		return nil, rooms.CloseUnauthorized, err.Error()
	}
	if roomID != "" && !g.AllowsRoom(roomID) {
		return nil, rooms.CloseForbidden, "room " + roomID + " is not in your token"
	}
	return g, 0, ""
}

// refuseAfterUpgrade completes the upgrade only to close at once with code
// and reason, then waits (bounded) for the peer's close frame.
func (e *Edge) refuseAfterUpgrade(w http.ResponseWriter, r *http.Request, code rooms.CloseCode, reason string) {
	e.stats.refusal(int(code))
	// The upgrade accepts the first subprotocol the client offered: a
	// browser that offered one (the SDK offers roomd.v1.json) and got none
	// back fails the handshake, and sees 1006 instead of this close.
	var header http.Header
	if offered := websocket.Subprotocols(r); len(offered) > 0 {
		header = http.Header{"Sec-Websocket-Protocol": {offered[0]}}
	}
	ws, err := e.upgrader.Upgrade(w, r, header)
	if err != nil {
		return
	}
	defer ws.Close()
	ws.SetCloseHandler(func(int, string) error { return nil }) // ours is already sent
	sock := ws.NetConn()
	_ = sock.SetWriteDeadline(time.Now().Add(e.cfg.WriteTimeout))
	if _, err := sock.Write(closeFrame(code, reason)); err != nil {
		return
	}
	_ = sock.SetReadDeadline(time.Now().Add(e.cfg.CloseTimeout))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}

// tokenBucket limits a connection's message rate. Only the reader goroutine
// touches it.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// take reports whether one more message fits at rate per second with the
// given burst.
func (b *tokenBucket) take(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens += now.Sub(b.last).Seconds() * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// charge takes n more tokens for a message that turned out to cost more
// than the one take took. The bucket may go below zero; take allows
// nothing more until the refill has paid that back.
func (b *tokenBucket) charge(n float64) { b.tokens -= n }

// closeCodeOf says how a read error ended a connection: the peer's close
// code, the code of the rule it broke, or 1006 for a connection that just
// dropped.
func closeCodeOf(err error) rooms.CloseCode {
	var pc *peerClosed
	var pe *protocolError
	switch {
	case errors.As(err, &pc):
		return pc.code
	case errors.As(err, &pe):
		return pe.code
	}
	return rooms.CloseAbnormal
}
