package wsedge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/gorilla/websocket"

	"roomd/rooms"
	"roomd/rooms/errcode"
	"roomd/wsedge/protocol"
	"roomd/wsedge/token"
)

// session is the client protocol's per-connection state. Only the reader
// goroutine uses it.
type session struct {
	conn   *conn
	grant  *token.Grant      // what the token allows; without tokens, everything
	quotas []rooms.RoomQuota // what a room this connection makes counts against
	// refused counts requests refused for rate in a row; a client that
	// keeps sending past its burst is closed.
	refused int
}

// serveSession serves GET /ws: one connection for many rooms, speaking
// roomd.v1.json.
func (e *Edge) serveSession(w http.ResponseWriter, r *http.Request) {
	if !e.preflight(w, r) {
		return
	}
	if !slices.Contains(websocket.Subprotocols(r), protocol.Subprotocol) {
		e.refuseAfterUpgrade(w, r, rooms.ClosePolicyViolation, "GET /ws speaks the "+protocol.Subprotocol+" subprotocol; use /ws/{room} for raw relay")
		return
	}
	c, grant := e.admit(w, r, "")
	if c == nil {
		return
	}
	c.session = &session{conn: c, grant: grant, quotas: e.roomQuotas(c.addr.quotaKey(), grant.UserID)}
	client, err := e.hub.Connect(rooms.ClientInfo{UserID: grant.UserID, RemoteAddr: c.ClientAddr()}, c, true)
	if err != nil {
		e.untrack(c)
		e.refuse(w, err.Error(), joinStatus(err))
		return
	}
	c.client = client
	e.hub.Send(client, reply(protocol.Welcome{Type: "welcome", ClientID: client.ID(), UserID: grant.UserID, Protocol: protocol.Subprotocol}))
	e.upgradeAndServe(w, r, c, &e.sessionUpgrader, grant.Expires)
}

// reply wraps a protocol frame for one client's queue.
func reply(v any) *rooms.Message {
	return &rooms.Message{Kind: rooms.Frame, Payload: protocol.Encode(v)}
}

func (s *session) send(v any) { s.conn.edge.hub.Send(s.conn.client, reply(v)) }

func (s *session) fail(id, room, code, message string) {
	s.send(protocol.Error{Type: "error", ID: id, Room: room, Code: code, Message: message})
}

// handle answers one client frame with exactly one ack or error.
func (s *session) handle(opcode byte, frame []byte) {
	if opcode != opText {
		s.fail("", "", protocol.CodeBadRequest, "frames are JSON text; this one was binary")
		return
	}
	req, err := protocol.Decode(frame)
	if err != nil {
		s.fail(req.ID, req.Room, protocol.CodeBadRequest, err.Error())
		return
	}
	if !s.allow() {
		s.fail(req.ID, req.Room, protocol.CodeRateLimited, fmt.Sprintf("over %g requests per second; dropped", s.conn.edge.cfg.MessageRate))
		return
	}
	if err := rooms.ValidateRoomID(req.Room); err != nil {
		s.fail(req.ID, req.Room, protocol.CodeInvalidRoom, err.Error())
		return
	}
	switch req.Op {
	case protocol.OpJoin:
		s.join(req)
	case protocol.OpLeave:
		told, err := s.conn.edge.hub.LeaveRoom(s.conn.client, req.Room)
		if err != nil {
			s.failWith(req, err)
			return
		}
		s.charge(told)
		s.send(protocol.Ack{Type: "ack", ID: req.ID, Room: req.Room})
	case protocol.OpPublish:
		s.publish(req)
	case protocol.OpMembers:
		s.members(req)
	}
}

// membersPerToken is how many members one token of the message rate pays
// for, told of a join or leave by a presence event or listed in an ack: a
// join to a room of 15,000 members with presence queues 15,000 events,
// which its one token did not pay for. 100 is one full page of members.
const membersPerToken = 100

// charge bills a request that reached (told or listed) that many members
// one token per membersPerToken of them, rounded up, at least one in all:
// allow took the first token as the request arrived, and this takes the
// rest now that its cost is known. The bucket may go below zero: the
// client then waits for it to refill before its next request is allowed.
func (s *session) charge(reached int) {
	if s.conn.edge.cfg.MessageRate <= 0 {
		return
	}
	if cost := (reached + membersPerToken - 1) / membersPerToken; cost > 1 {
		s.conn.rate.charge(float64(cost - 1))
	}
}

// allow applies the message rate to requests: over it a request is refused
// with rate_limited, and a client that goes on sending a whole burst more
// is closed with 1008.
func (s *session) allow() bool {
	if s.conn.withinRate() {
		s.refused = 0
		return true
	}
	if s.refused++; s.refused > s.conn.edge.cfg.MessageBurst {
		s.conn.closeOverRate()
	}
	return false
}

func (s *session) join(req protocol.Request) {
	e, c := s.conn.edge, s.conn.client
	if !s.grant.AllowsRoom(req.Room) && e.cfg.Tokens != nil {
		s.fail(req.ID, req.Room, protocol.CodeForbidden, "room "+req.Room+" is not in your token")
		return
	}
	if max := e.cfg.MaxRoomsPerConn; max > 0 && c.RoomCount() >= max {
		s.fail(req.ID, req.Room, protocol.CodeTooManyRooms, fmt.Sprintf("a connection may be in at most %d rooms", max))
		return
	}
	opts := rooms.JoinOptions{
		AutoCreate:  e.cfg.AutoCreate,
		Quotas:      s.quotas,
		ListMembers: protocol.MaxMemberPage,
		Ack: func(res rooms.JoinResult) *rooms.Message {
			members, next := memberList(res.Members, res.MoreMembers)
			return reply(protocol.JoinAck{Type: "ack", ID: req.ID, Room: req.Room, Seq: res.Seq, Epoch: res.Epoch, Replayed: res.Replayed,
				Presence: res.Presence, MemberCount: res.MemberCount, Members: members, Next: next})
		},
	}
	if req.Since != nil {
		opts.Resume, opts.Since, opts.Epoch = true, *req.Since, req.Epoch
	}
	res, err := e.hub.JoinRoom(c, req.Room, opts)
	if err != nil {
		s.failWith(req, err)
		return
	}
	s.charge(res.Told + len(res.Members))
}

// members answers a page of a joined room's members.
func (s *session) members(req protocol.Request) {
	page, err := s.conn.edge.hub.Members(s.conn.client, req.Room, req.After, req.PageLimit(), func(page rooms.MemberPage) *rooms.Message {
		members, next := memberList(page.Members, page.More)
		if members == nil {
			members = []protocol.Member{} // after the last member: an empty page, not null
		}
		return reply(protocol.MembersAck{Type: "ack", ID: req.ID, Room: req.Room, MemberCount: page.Count, Members: members, Next: next})
	})
	if err != nil {
		s.failWith(req, err)
		return
	}
	s.charge(len(page.Members))
}

// memberList is a page of members as acks list them, and the cursor of the
// next page when more follow.
func memberList(infos []rooms.ClientInfo, more bool) (members []protocol.Member, next string) {
	for _, m := range infos {
		members = append(members, protocol.Member{ClientID: m.ClientID, UserID: m.UserID})
	}
	if more && len(infos) > 0 {
		next = infos[len(infos)-1].ClientID
	}
	return members, next
}

func (s *session) publish(req protocol.Request) {
	e, c := s.conn.edge, s.conn.client
	switch {
	case s.conn.readOnly:
		s.fail(req.ID, req.Room, protocol.CodeForbidden, "your token does not allow publishing")
		return
	case !c.InRoom(req.Room):
		s.fail(req.ID, req.Room, protocol.CodeNotJoined, "join room "+req.Room+" before publishing to it")
		return
	}
	info := c.Info()
	m := &rooms.Message{RoomID: req.Room, Kind: rooms.JSON, Payload: req.Data, FromClientID: info.ClientID, FromUserID: info.UserID}
	pub, err := e.hub.Publish(m)
	if err != nil {
		s.failWith(req, err)
		return
	}
	s.send(protocol.Ack{Type: "ack", ID: req.ID, Room: req.Room, Seq: pub.Seq})
}

// failWith answers a request the Hub refused, with the protocol's code for
// the Hub's error.
func (s *session) failWith(req protocol.Request, err error) {
	s.fail(req.ID, req.Room, protocolCode(err), err.Error())
}

// protocolCode is the client protocol's error code for a Hub error.
func protocolCode(err error) string { return errcode.Of(err).Protocol }

// protocolFrame encodes a message for session clients; like messageFrame it
// runs once per message for all of them.
func protocolFrame(m *rooms.Message) any {
	var v any
	switch m.Kind {
	case rooms.Frame:
		return appendFrame(nil, opText, m.Payload)
	case rooms.Presence:
		v = protocol.Presence{Type: "presence", Room: m.RoomID, Event: m.Event, ClientID: m.Subject.ClientID, UserID: m.Subject.UserID}
	case rooms.Notice:
		v = protocol.Notice{Type: m.Event, Room: m.RoomID, Reason: m.Reason}
	default:
		msg := protocol.Message{Type: "message", Room: m.RoomID, Seq: m.Seq, Time: m.Time,
			From: protocol.Sender{ClientID: m.FromClientID, UserID: m.FromUserID, Server: m.FromClientID == ""}}
		switch m.Kind {
		case rooms.JSON:
			msg.Data = m.Payload
		case rooms.Text:
			msg.Data, _ = json.Marshal(string(m.Payload)) // valid UTF-8 by now
		default:
			msg.Binary = m.Payload
		}
		v = msg
	}
	return appendFrame(nil, opText, protocol.Encode(v))
}

// kickedNotice is the frame a kicked session client reads before the close.
func kickedNotice(reason string) []byte {
	return appendFrame(nil, opText, protocol.Encode(protocol.Notice{Type: "kicked", Reason: reason}))
}
