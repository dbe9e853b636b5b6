package rooms

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// session connects a client protocol client with a fake transport.
func session(t *testing.T, h *Hub, user string) *Client {
	t.Helper()
	c, err := h.Connect(ClientInfo{UserID: user}, &fakeTransport{}, true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ids(infos []ClientInfo) []string {
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = info.ClientID
	}
	return out
}

// presenceCount counts (and drains) the presence messages queued for c.
func presenceCount(c *Client) int {
	n := 0
	for _, m := range c.Queue().Take(nil) {
		if m.Kind == Presence {
			n++
		}
	}
	return n
}

// A join lists a bounded first page of members by client id, with the
// count, and Members pages through the rest: every member exactly once, in
// id order, whatever was listed first.
func TestJoinListsAPageAndMembersPagesOn(t *testing.T) {
	h := NewHub(Config{})
	var want []string
	for i := range 250 {
		c, _ := join(t, h, "big", fmt.Sprint(i), true)
		want = append(want, c.ID())
	}
	ann := session(t, h, "ann")
	res, err := h.JoinRoom(ann, "big", JoinOptions{ListMembers: 100})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, ann.ID())
	slices.Sort(want)
	if !res.Presence || res.MemberCount != 251 || len(res.Members) != 100 || !res.MoreMembers {
		t.Fatalf("join result: presence %v, count %d, %d listed, more %v; want presence, 251, 100, more", res.Presence, res.MemberCount, len(res.Members), res.MoreMembers)
	}
	if got := ids(res.Members); !slices.Equal(got, want[:100]) {
		t.Fatalf("the join listed %v, want the first 100 ids %v", got, want[:100])
	}
	got := ids(res.Members)
	for after := got[len(got)-1]; ; {
		page, err := h.Members(ann, "big", after, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		if page.Count != 251 || len(page.Members) > 100 {
			t.Fatalf("page after %s: count %d, %d listed", after, page.Count, len(page.Members))
		}
		got = append(got, ids(page.Members)...)
		if !page.More {
			break
		}
		after = page.Members[len(page.Members)-1].ClientID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paging listed %d ids, want each of the %d once in order", len(got), len(want))
	}

	// Leaves keep the roster in step: the admin listing (the same roster)
	// and Members agree with who is left.
	for i := 0; i < 250; i += 3 {
		if want[i] == ann.ID() {
			continue // ann asks below; ids are random, so she may sort here
		}
		c, _ := h.client(want[i])
		h.Leave(c, CauseClosedByClient, CloseNormal, "")
	}
	var left []string
	for _, id := range want {
		if _, err := h.client(id); err == nil {
			left = append(left, id)
		}
	}
	admin, more, err := h.Clients("big", "", 1000)
	if err != nil || more || !slices.Equal(ids(admin), left) {
		t.Fatalf("after leaves Clients = %d ids (more %v, %v), want the %d left in order", len(admin), more, err, len(left))
	}
	page, err := h.Members(ann, "big", "", 1000, nil)
	if err != nil || page.Count != len(left) || !slices.Equal(ids(page.Members), left) {
		t.Fatalf("after leaves Members = count %d, %d ids; want %d in order", page.Count, len(page.Members), len(left))
	}
}

func TestMembersOnlyForMembersOfRoomsWithPresence(t *testing.T) {
	h := NewHub(Config{})
	h.CreateRoom("open", RoomOptions{})
	h.CreateRoom("audience", RoomOptions{NoPresence: true})
	ann, bob := session(t, h, "ann"), session(t, h, "bob")
	if _, err := h.Members(ann, "open", "", 10, nil); !errors.Is(err, ErrNotJoined) {
		t.Errorf("Members of a room not joined: %v, want ErrNotJoined", err)
	}
	for _, c := range []*Client{ann, bob} {
		if _, err := h.JoinRoom(c, "audience", JoinOptions{ListMembers: 100}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := h.JoinRoom(session(t, h, "cy"), "audience", JoinOptions{ListMembers: 100})
	if err != nil || res.Presence || res.MemberCount != 3 || len(res.Members) != 0 || res.MoreMembers || res.Told != 0 {
		t.Fatalf("join of a room without presence: %+v, %v; want the count 3 and nothing listed or told", res, err)
	}
	if _, err := h.Members(ann, "audience", "", 10, nil); !errors.Is(err, ErrNoPresence) {
		t.Errorf("Members of a room without presence: %v, want ErrNoPresence", err)
	}
	if n := presenceCount(ann); n != 0 {
		t.Errorf("ann heard %d presence events in a room without presence", n)
	}
	if told, err := h.LeaveRoom(bob, "audience"); err != nil || told != 0 {
		t.Errorf("leave: told %d, %v; want nobody told", told, err)
	}
	if n := presenceCount(ann); n != 0 {
		t.Errorf("ann heard %d presence events in a room without presence", n)
	}
	if info, _ := h.GetRoom("audience"); !info.Options.NoPresence {
		t.Errorf("GetRoom options %+v, want NoPresence", info.Options)
	}
}

// A join and a leave say how many session members heard of them: what a
// transport charges for.
func TestJoinAndLeaveSayHowManyWereTold(t *testing.T) {
	h := NewHub(Config{})
	for i := range 3 {
		if _, err := h.JoinRoom(session(t, h, fmt.Sprint(i)), "r", JoinOptions{AutoCreate: true}); err != nil {
			t.Fatal(err)
		}
	}
	join(t, h, "r", "raw", false) // raw members hear no presence
	ann := session(t, h, "ann")
	res, err := h.JoinRoom(ann, "r", JoinOptions{})
	if err != nil || res.Told != 3 || res.MemberCount != 5 || len(res.Members) != 0 {
		t.Fatalf("join: %+v, %v; want 3 told, 5 members, none listed (ListMembers 0)", res, err)
	}
	if told, err := h.LeaveRoom(ann, "r"); err != nil || told != 3 {
		t.Fatalf("leave: told %d, %v; want 3", told, err)
	}
}
