package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"roomd/rooms"
	"roomd/rooms/admin"
)

// Admin calls that span nodes are requests over NATS to each node's call
// subject, roomd.call.<node>.<op>, answered from that node's own Hub. A
// call to every node waits at most until its deadline and answers with
// what arrived, naming the nodes that did not answer: one frozen node
// makes an answer partial, never a failed or hung call.
const callPrefix = "roomd.call."

// Calls answers other nodes' requests about this node's rooms and makes
// requests of them.
type Calls struct {
	nc      *nats.Conn
	hub     *rooms.Hub
	node    string
	peers   func() []string // the live nodes' names, this one included
	maxWait time.Duration
	log     *slog.Logger
	sub     *nats.Subscription
	self    func() admin.NodeInfo // describes this node for ListNodes
}

// StartCalls answers requests for node on nc. peers lists the nodes a
// call to all asks; maxWait caps how long any call waits for answers.
// self, if not nil, describes this node to ListNodes.
func StartCalls(nc *nats.Conn, hub *rooms.Hub, peers func() []string, self func() admin.NodeInfo, maxWait time.Duration, log *slog.Logger) (*Calls, error) {
	c := &Calls{nc: nc, hub: hub, node: hub.NodeName(), peers: peers, self: self, maxWait: maxWait, log: log}
	sub, err := nc.Subscribe(callPrefix+c.node+".*", func(msg *nats.Msg) {
		go c.serve(msg) // one slow call must not hold up the next
	})
	if err != nil {
		return nil, err
	}
	if err := nc.FlushTimeout(maxWait); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	c.sub = sub
	return c, nil
}

// Stop stops answering.
func (c *Calls) Stop() {
	if c.sub != nil {
		c.sub.Unsubscribe()
	}
}

// reply is what a node answers: the op's result, or an error of one of the
// rooms kinds.
type reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Kind   string          `json:"kind,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// errorKinds carries the rooms error kinds across nodes by their text.
var errorKinds = []error{
	rooms.ErrInvalidRoomID, rooms.ErrInvalidArgument, rooms.ErrRoomExists, rooms.ErrRoomNotFound,
	rooms.ErrClientNotFound, rooms.ErrRoomFull, rooms.ErrBanned, rooms.ErrBanNotFound, rooms.ErrNoUserID,
	rooms.ErrRoomQuota, rooms.ErrLimit, rooms.ErrGap, rooms.ErrNotJoined, rooms.ErrAlreadyJoined,
	rooms.ErrNoPresence, rooms.ErrClosed, rooms.ErrUnavailable, rooms.ErrWatcherTooSlow,
}

func kindName(err error) string {
	for _, k := range errorKinds {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return ""
}

// remoteError is an error a node answered with: its text, and its kind for
// errors.Is.
type remoteError struct {
	kind error
	msg  string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func (r reply) err() error {
	if r.Error == "" {
		return nil
	}
	for _, k := range errorKinds {
		if k.Error() == r.Kind {
			return &remoteError{k, r.Error}
		}
	}
	return errors.New(r.Error)
}

func (c *Calls) serve(msg *nats.Msg) {
	op := msg.Subject[len(callPrefix)+len(c.node)+1:]
	out, err := c.handle(op, msg.Data)
	r := reply{Result: out}
	if err != nil {
		r = reply{Kind: kindName(err), Error: err.Error()}
	}
	data, _ := json.Marshal(r)
	if err := msg.Respond(data); err != nil {
		c.log.Debug("cluster: could not answer a call", "op", op, "err", err)
	}
}

// handle runs one op on this node's Hub.
func (c *Calls) handle(op string, data []byte) (json.RawMessage, error) {
	if op == opNodeInfo && c.self != nil {
		return json.Marshal(c.self())
	}
	h, ok := handlers[op]
	if !ok {
		return nil, fmt.Errorf("unknown cluster call %q (a node of another version?)", op)
	}
	res, err := h(c.hub, data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// handlers are the ops a node answers, each from its own Hub only.
var handlers = map[string]func(h *rooms.Hub, req []byte) (any, error){
	opGetRoom: func(h *rooms.Hub, req []byte) (any, error) {
		var r roomReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		info, err := h.GetRoom(r.Room)
		if errors.Is(err, rooms.ErrRoomNotFound) {
			return roomReply{}, nil // not here is an answer
		}
		return roomReply{Found: err == nil, Info: info}, err
	},
	opListRooms: func(h *rooms.Hub, req []byte) (any, error) {
		var r pageReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		page, more := h.ListRooms(r.After, r.Limit)
		return roomsPage{Rooms: page, More: more}, nil
	},
	opDeleteRoom: func(h *rooms.Hub, req []byte) (any, error) {
		var r roomReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		res, err := h.DeleteRoom(r.Room)
		if errors.Is(err, rooms.ErrRoomNotFound) {
			return deleteReply{}, nil
		}
		return deleteReply{Found: err == nil, Result: res}, err
	},
	opKickClient: func(h *rooms.Hub, req []byte) (any, error) {
		var r clientReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return h.KickClient(r.Client, r.Reason)
	},
	opKickUser: func(h *rooms.Hub, req []byte) (any, error) {
		var r userReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return h.KickUser(r.User, r.Room, r.Reason)
	},
	opLocalMembers: func(h *rooms.Hub, req []byte) (any, error) {
		var r pageReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		page, more, err := h.LocalClients(r.Room, r.After, r.Limit)
		if errors.Is(err, rooms.ErrRoomNotFound) {
			return clientsPage{}, nil
		}
		return clientsPage{Found: err == nil, Clients: page, More: more}, err
	},
	opClientRooms: func(h *rooms.Hub, req []byte) (any, error) {
		var r clientReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		info, ids, err := h.ClientRooms(r.Client)
		return clientRoomsReply{Info: info, Rooms: ids}, err
	},
	opApplyBan: func(h *rooms.Hub, req []byte) (any, error) {
		var b rooms.Ban
		if err := json.Unmarshal(req, &b); err != nil {
			return nil, err
		}
		return h.ApplyBan(b)
	},
	opSend: func(h *rooms.Hub, req []byte) (any, error) {
		var r sendReq
		if err := json.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return struct{}{}, h.SendToClient(r.Client, &rooms.Message{Kind: r.Kind, Payload: r.Payload})
	},
}

const (
	opGetRoom     = "room-get"
	opListRooms   = "room-list"
	opDeleteRoom  = "room-delete"
	opKickClient  = "client-kick"
	opKickUser    = "user-kick"
	opSend        = "client-send"
	opClientRooms = "client-rooms"
	opNodeInfo    = "node-info"
	opApplyBan    = "ban-apply"
	// opLocalMembers lists a room's members on the node asked only.
	opLocalMembers = "room-local-members"
)

type roomReq struct {
	Room string `json:"room"`
}

type roomReply struct {
	Found bool           `json:"found"`
	Info  rooms.RoomInfo `json:"info"`
}

type pageReq struct {
	Room  string `json:"room,omitempty"`
	After string `json:"after"`
	Limit int    `json:"limit"`
}

type roomsPage struct {
	Rooms []rooms.RoomInfo `json:"rooms"`
	More  bool             `json:"more"`
}

type deleteReply struct {
	Found  bool               `json:"found"`
	Result rooms.DeleteResult `json:"result"`
}

type clientsPage struct {
	Found   bool               `json:"found"`
	Clients []rooms.ClientInfo `json:"clients"`
	More    bool               `json:"more"`
}

type clientReq struct {
	Client string `json:"client"`
	Reason string `json:"reason,omitempty"`
}

type userReq struct {
	User   string `json:"user"`
	Room   string `json:"room,omitempty"`
	Reason string `json:"reason,omitempty"`
}

type clientRoomsReply struct {
	Info  rooms.ClientInfo `json:"info"`
	Rooms []string         `json:"rooms"`
}

type sendReq struct {
	Client  string     `json:"client"`
	Kind    rooms.Kind `json:"kind"`
	Payload []byte     `json:"payload"`
}

// one asks one node; this node answers itself without NATS.
func (c *Calls) one(ctx context.Context, node, op string, req, out any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if node == c.node {
		raw, err = c.handle(op, data)
	} else {
		raw, err = c.request(ctx, node, op, data)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func (c *Calls) request(ctx context.Context, node, op string, data []byte) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.maxWait)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, callPrefix+node+"."+op, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: node %q did not answer: %v", rooms.ErrUnavailable, errNoAnswer, node, err)
	}
	var r reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, fmt.Errorf("node %q answered %q with a malformed reply: %v", node, op, err)
	}
	return r.Result, r.err()
}

// errNoAnswer marks a node that did not answer, as against one that
// answered with an error.
var errNoAnswer = errors.New("no answer")

// answer is one node's reply to a call to all.
type answer[T any] struct {
	node   string
	result T
	err    error
}

// all asks every live node at once and waits for them, or until the
// call's deadline capped by maxWait; the nodes that did not answer in time
// (or could not be reached) come back in unreachable. An answer that is an
// error is in the answers, with its error.
func all[T any](ctx context.Context, c *Calls, op string, req any) (answers []answer[T], unreachable []string) {
	nodes := c.peers()
	ctx, cancel := context.WithTimeout(ctx, c.maxWait)
	defer cancel()
	results := make(chan answer[T], len(nodes))
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Go(func() {
			var out T
			err := c.one(ctx, node, op, req, &out)
			results <- answer[T]{node, out, err}
		})
	}
	wg.Wait()
	close(results)
	for a := range results {
		if errors.Is(a.err, errNoAnswer) {
			unreachable = append(unreachable, a.node)
			continue
		}
		answers = append(answers, a)
	}
	return answers, unreachable
}

// rosterPage is how many members one answer of a roster lists; a node asks
// again after the last for more.
const rosterPage = 5000

// Roster lists a room's members on every other live node, for a room this
// node starts carrying (Broker.Roster). A node that does not answer is
// left out, and logged: its members are missing here until they join or
// leave again.
func (c *Calls) Roster(ctx context.Context, roomID string) []rooms.ClientInfo {
	var out []rooms.ClientInfo
	for _, node := range c.peers() {
		if node == c.node {
			continue
		}
		after := ""
		for {
			var page clientsPage
			if err := c.one(ctx, node, opLocalMembers, pageReq{Room: roomID, After: after, Limit: rosterPage}, &page); err != nil {
				c.log.Warn("cluster: a node did not list its members of a room; they are missing from this node's roster", "room", roomID, "node", node, "err", err)
				break
			}
			out = append(out, page.Clients...)
			if !page.More || len(page.Clients) == 0 {
				break
			}
			after = page.Clients[len(page.Clients)-1].ClientID
		}
	}
	return out
}
