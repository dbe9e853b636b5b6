package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"roomd/rooms"
	"roomd/rooms/admin"
)

// adminRooms is the admin API's view of the whole cluster (admin.Rooms):
// what spans nodes is asked of every live node at once and answered with
// what came back in time (Coverage names the rest); what concerns one
// client goes to the node its id names; rooms made through the API and
// bans go through their buckets, which every node mirrors.
type adminRooms struct {
	n *Node
}

var _ admin.Rooms = adminRooms{}

func coverage(unreachable []string) admin.Coverage {
	slices.Sort(unreachable)
	return admin.Coverage{Unreachable: unreachable}
}

// firstError returns the first error any node answered with.
func firstError[T any](answers []answer[T]) error {
	for _, a := range answers {
		if a.err != nil {
			return a.err
		}
	}
	return nil
}

func (a adminRooms) CreateRoom(ctx context.Context, roomID string, opts rooms.RoomOptions) (rooms.RoomInfo, error) {
	info, err := a.n.dir.Create(ctx, roomID, opts)
	if err != nil {
		return rooms.RoomInfo{}, err
	}
	// This node has it at once, whatever its mirror's lag: a GetRoom or a
	// join right after the answer finds it here.
	a.n.hub.MirrorRoom(roomID, opts, info.CreatedAt)
	if local, err := a.n.hub.GetRoom(roomID); err == nil {
		return local, nil
	}
	return info, nil
}

// mergeRoom adds one node's view of a room to what is known of it: member
// counts add up, the latest position wins, and a room made through the
// API shows its options wherever a client made it first.
func mergeRoom(into *rooms.RoomInfo, found bool, r rooms.RoomInfo) bool {
	if !found {
		*into = r
		return true
	}
	into.ClientCount += r.ClientCount
	if r.Seq > into.Seq {
		into.Seq, into.Epoch = r.Seq, r.Epoch
	}
	if !r.AutoCreated && into.AutoCreated {
		into.Options, into.AutoCreated, into.CreatedAt = r.Options, false, r.CreatedAt
	} else if r.AutoCreated == into.AutoCreated && r.CreatedAt.Before(into.CreatedAt) {
		into.CreatedAt = r.CreatedAt
	}
	return true
}

func (a adminRooms) GetRoom(ctx context.Context, roomID string) (rooms.RoomInfo, admin.Coverage, error) {
	if err := rooms.ValidateRoomID(roomID); err != nil {
		return rooms.RoomInfo{}, admin.Coverage{}, err
	}
	answers, unreachable := all[roomReply](ctx, a.n.calls, opGetRoom, roomReq{Room: roomID})
	cov := coverage(unreachable)
	if err := firstError(answers); err != nil {
		return rooms.RoomInfo{}, cov, err
	}
	var info rooms.RoomInfo
	found := false
	for _, ans := range answers {
		if ans.result.Found {
			found = mergeRoom(&info, found, ans.result.Info)
		}
	}
	if !found {
		return rooms.RoomInfo{}, cov, notFoundOn(roomID, cov)
	}
	return info, cov, nil
}

// notFoundOn is ErrRoomNotFound, saying which nodes could not be asked.
func notFoundOn(roomID string, cov admin.Coverage) error {
	if cov.Partial() {
		return fmt.Errorf("%w: room %q not found on the nodes that answered (%s did not)", rooms.ErrRoomNotFound, roomID, strings.Join(cov.Unreachable, ", "))
	}
	return fmt.Errorf("%w: room %q not found", rooms.ErrRoomNotFound, roomID)
}

// mergePages merges the id-ordered pages of several nodes into one page of
// at most limit: an item past the last of a node that has more may have
// been missed on that node, so the page stops before it.
func mergePages[T any](pages [][]T, mores []bool, id func(T) string, limit int) (page []T, more bool) {
	cut := ""
	for i, p := range pages {
		if mores[i] && len(p) > 0 {
			if last := id(p[len(p)-1]); cut == "" || last < cut {
				cut = last
			}
		}
	}
	for _, p := range pages {
		page = append(page, p...)
	}
	slices.SortStableFunc(page, func(x, y T) int { return strings.Compare(id(x), id(y)) })
	if cut != "" {
		n := 0
		for n < len(page) && id(page[n]) <= cut {
			n++
		}
		page, more = page[:n], true
	}
	if len(page) > limit {
		page, more = page[:limit], true
	}
	return page, more
}

func (a adminRooms) ListRooms(ctx context.Context, after string, limit int) ([]rooms.RoomInfo, bool, admin.Coverage) {
	answers, unreachable := all[roomsPage](ctx, a.n.calls, opListRooms, pageReq{After: after, Limit: limit})
	var pages [][]rooms.RoomInfo
	var mores []bool
	for _, ans := range answers {
		if ans.err == nil {
			pages, mores = append(pages, ans.result.Rooms), append(mores, ans.result.More)
		}
	}
	page, more := mergePages(pages, mores, func(r rooms.RoomInfo) string { return r.RoomID }, len(pages)*limit)
	// One entry per room, its nodes' views merged.
	var merged []rooms.RoomInfo
	for _, r := range page {
		if k := len(merged) - 1; k >= 0 && merged[k].RoomID == r.RoomID {
			mergeRoom(&merged[k], true, r)
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) > limit {
		merged, more = merged[:limit], true
	}
	return merged, more, coverage(unreachable)
}

func (a adminRooms) DeleteRoom(ctx context.Context, roomID string) (rooms.DeleteResult, admin.Coverage, error) {
	if err := rooms.ValidateRoomID(roomID); err != nil {
		return rooms.DeleteResult{}, admin.Coverage{}, err
	}
	// Every node deletes its part now, counting its members; then the
	// directory forgets a room made through the API, which a node that
	// did not answer follows when it can.
	answers, unreachable := all[deleteReply](ctx, a.n.calls, opDeleteRoom, roomReq{Room: roomID})
	cov := coverage(unreachable)
	var res rooms.DeleteResult
	found := false
	for _, ans := range answers {
		if ans.err == nil && ans.result.Found {
			found = true
			res.Removed += ans.result.Result.Removed
			res.Disconnected += ans.result.Result.Disconnected
		}
	}
	switch err := a.n.dir.Delete(ctx, roomID); {
	case err == nil:
		found = true
	case !errors.Is(err, rooms.ErrRoomNotFound):
		return res, cov, err
	}
	if !found {
		return rooms.DeleteResult{}, cov, notFoundOn(roomID, cov)
	}
	if err := a.n.broker.MarkDeleted(ctx, roomID); err != nil {
		a.n.log.Warn("cluster: room deleted, but its history could not be dropped", "room", roomID, "err", err)
	}
	return res, cov, nil
}

func (a adminRooms) Clients(ctx context.Context, roomID, after string, limit int) ([]rooms.ClientInfo, bool, admin.Coverage, error) {
	if err := rooms.ValidateRoomID(roomID); err != nil {
		return nil, false, admin.Coverage{}, err
	}
	answers, unreachable := all[clientsPage](ctx, a.n.calls, opLocalMembers, pageReq{Room: roomID, After: after, Limit: limit})
	cov := coverage(unreachable)
	if err := firstError(answers); err != nil {
		return nil, false, cov, err
	}
	var pages [][]rooms.ClientInfo
	var mores []bool
	found := false
	for _, ans := range answers {
		found = found || ans.result.Found
		pages, mores = append(pages, ans.result.Clients), append(mores, ans.result.More)
	}
	if !found {
		if _, err := a.n.hub.GetRoom(roomID); err != nil {
			return nil, false, cov, notFoundOn(roomID, cov)
		}
	}
	page, more := mergePages(pages, mores, func(c rooms.ClientInfo) string { return c.ClientID }, limit)
	return page, more, cov, nil
}

// owner is the node that holds a client, from its id.
func owner(clientID string) (string, error) {
	node, ok := rooms.NodeOfClientID(clientID)
	if !ok {
		return "", fmt.Errorf("%w: client %q not found: not a client id of any node", rooms.ErrClientNotFound, clientID)
	}
	return node, nil
}

// onOwner runs op on the node that holds clientID. A node that does not
// answer is ErrUnavailable, not "not found": the client may well be there.
func (a adminRooms) onOwner(ctx context.Context, clientID, op string, req, out any) error {
	node, err := owner(clientID)
	if err != nil {
		return err
	}
	if !slices.Contains(a.n.calls.peers(), node) {
		return fmt.Errorf("%w: client %q not found: its node %q is not a live node of the cluster", rooms.ErrClientNotFound, clientID, node)
	}
	ctx, cancel := context.WithTimeout(ctx, a.n.calls.maxWait)
	defer cancel()
	return a.n.calls.one(ctx, node, op, req, out)
}

func (a adminRooms) KickClient(ctx context.Context, clientID, reason string) (rooms.ClientInfo, error) {
	var info rooms.ClientInfo
	err := a.onOwner(ctx, clientID, opKickClient, clientReq{Client: clientID, Reason: reason}, &info)
	return info, err
}

func (a adminRooms) BanClient(ctx context.Context, clientID, reason string, d time.Duration) (rooms.ClientInfo, rooms.Ban, error) {
	var cr clientRoomsReply
	if err := a.onOwner(ctx, clientID, opClientRooms, clientReq{Client: clientID}, &cr); err != nil {
		return rooms.ClientInfo{}, rooms.Ban{}, err
	}
	if cr.Info.UserID == "" {
		return rooms.ClientInfo{}, rooms.Ban{}, fmt.Errorf("%w: client %q has no user id to ban; kick it without a ban", rooms.ErrNoUserID, clientID)
	}
	var first rooms.Ban
	for i, roomID := range cr.Rooms {
		b, _, _, err := a.BanUser(ctx, cr.Info.UserID, roomID, reason, d)
		if err != nil {
			return rooms.ClientInfo{}, rooms.Ban{}, err
		}
		if i == 0 {
			first = b
		}
	}
	// The ban kicked the client from its rooms; a session client is
	// closed as a kicked raw one is, as BanClient does on one node.
	var ignored rooms.ClientInfo
	_ = a.onOwner(ctx, clientID, opKickClient, clientReq{Client: clientID, Reason: reason}, &ignored)
	return cr.Info, first, nil
}

func (a adminRooms) KickUser(ctx context.Context, userID, roomID, reason string) (int, admin.Coverage, error) {
	if userID == "" {
		return 0, admin.Coverage{}, fmt.Errorf("%w: user_id is empty", rooms.ErrInvalidArgument)
	}
	answers, unreachable := all[int](ctx, a.n.calls, opKickUser, userReq{User: userID, Room: roomID, Reason: reason})
	cov := coverage(unreachable)
	if err := firstError(answers); err != nil {
		return 0, cov, err
	}
	n := 0
	for _, ans := range answers {
		n += ans.result
	}
	return n, cov, nil
}

func (a adminRooms) BanUser(ctx context.Context, userID, roomID, reason string, d time.Duration) (rooms.Ban, int, admin.Coverage, error) {
	b, err := rooms.NewBan(userID, roomID, reason, d, time.Now())
	if err != nil {
		return rooms.Ban{}, 0, admin.Coverage{}, err
	}
	// Every node enforces it now and kicks the user there, counting;
	// then the bucket keeps it for joins to come, restarts and any node
	// that did not answer, which applies it from the bucket.
	answers, unreachable := all[int](ctx, a.n.calls, opApplyBan, b)
	cov := coverage(unreachable)
	if err := a.n.bans.Put(ctx, b); err != nil {
		return rooms.Ban{}, 0, cov, err
	}
	n := 0
	for _, ans := range answers {
		if ans.err == nil {
			n += ans.result
		}
	}
	return b, n, cov, nil
}

func (a adminRooms) Unban(ctx context.Context, userID string, roomIDs ...string) ([]rooms.Ban, error) {
	lifted, err := a.n.bans.Lift(ctx, userID, roomIDs...)
	if err != nil {
		return nil, err
	}
	_, _ = a.n.hub.Unban(userID, roomIDs...) // here at once; every node lifts them from the bucket
	return lifted, nil
}

func (a adminRooms) Bans(_ context.Context, afterUser, afterRoom string, limit int) ([]rooms.Ban, bool) {
	return a.n.hub.Bans(afterUser, afterRoom, limit) // every node mirrors the bucket
}

func (a adminRooms) Publish(ctx context.Context, m *rooms.Message) (rooms.Published, error) {
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	if _, err := a.n.hub.GetRoom(m.RoomID); err == nil {
		return a.n.hub.Publish(m)
	}
	// Not carried here: publish if some node has it.
	if _, _, err := a.GetRoom(ctx, m.RoomID); err != nil {
		return rooms.Published{}, err
	}
	return a.n.broker.Publish(m)
}

func (a adminRooms) SendToClient(ctx context.Context, clientID string, m *rooms.Message) error {
	var ignored struct{}
	return a.onOwner(ctx, clientID, opSend, sendReq{Client: clientID, Kind: m.Kind, Payload: m.Payload}, &ignored)
}

func (a adminRooms) Watch(ctx context.Context, roomID string, since *rooms.Position) (admin.Watch, error) {
	watch := func() (*rooms.Watcher, error) {
		if since != nil {
			return a.n.hub.WatchSince(roomID, *since)
		}
		return a.n.hub.Watch(roomID)
	}
	if _, err := a.n.hub.GetRoom(roomID); err == nil {
		if w, err := watch(); err == nil {
			return w, nil
		} else if !errors.Is(err, rooms.ErrRoomNotFound) {
			return nil, err
		}
	}
	// Not carried here: carry it while watched, if some node has it.
	if _, _, err := a.GetRoom(ctx, roomID); err != nil {
		return nil, err
	}
	release, err := a.n.hub.Carry(roomID)
	if err != nil {
		return nil, err
	}
	w, err := watch()
	if err != nil {
		release()
		return nil, err
	}
	return carriedWatch{w, release}, nil
}

// carriedWatch is a watch of a room this node carries only for it.
type carriedWatch struct {
	*rooms.Watcher
	release func()
}

func (w carriedWatch) Stop() {
	w.Watcher.Stop()
	w.release()
}

func (a adminRooms) Nodes(context.Context) ([]admin.NodeInfo, admin.Coverage, error) {
	return a.n.live.Nodes(), admin.Coverage{}, nil // as last heard: a frozen node shows its last heartbeat
}
