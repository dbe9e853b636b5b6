package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"roomd/rooms"
	"roomd/rooms/cluster/natstest"
)

func (n *testNode) openBans(t *testing.T, replicas int) *Bans {
	t.Helper()
	b, err := OpenBans(testContext(t), jetStream(t, n.nc), n.hub, BansConfig{Replicas: replicas, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

func newBan(user, room, reason string, d time.Duration) rooms.Ban {
	now := time.Now()
	return rooms.Ban{UserID: user, RoomID: room, Reason: reason, CreatedAt: now, ExpiresAt: now.Add(d)}
}

// joinAuto joins a raw member of user to room on h, making the room.
func joinAuto(h *rooms.Hub, room, user string) (*fakeTransport, error) {
	ft := &fakeTransport{}
	_, err := h.Join(room, rooms.ClientInfo{UserID: user}, ft, rooms.JoinOptions{AutoCreate: true})
	return ft, err
}

func TestBanOnOneNodeKicksAndRefusesOnAnother(t *testing.T) {
	checkLeaks(t)
	srv := natstest.Start(t)
	a, b := newTestNode(t, srv.Connect(), "a"), newTestNode(t, srv.Connect(), "b")
	bansA, bansB := a.openBans(t, 1), b.openBans(t, 1)
	ctx := testContext(t)

	inLobby, err := joinAuto(b.hub, "lobby", "ann")
	if err != nil {
		t.Fatal(err)
	}
	inGarden, err := joinAuto(b.hub, "garden", "ann")
	if err != nil {
		t.Fatal(err)
	}
	onA, err := joinAuto(a.hub, "lobby", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if err := bansA.Put(ctx, newBan("ann", "lobby", "spamming", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if closed, code, reason := onA.closedWith(); !closed || code != rooms.CloseKicked || reason != "spamming" {
		t.Errorf("member on the banning node: closed %v with %v %q, want at once", closed, code, reason)
	}
	eventually(t, time.Second, "the member on b is kicked within a second", func() bool {
		closed, code, reason := inLobby.closedWith()
		return closed && code == rooms.CloseKicked && reason == "spamming"
	})
	if _, err := joinAuto(b.hub, "lobby", "ann"); !errors.Is(err, rooms.ErrBanned) || !strings.Contains(err.Error(), "spamming") {
		t.Errorf("joining the room on b: %v, want ErrBanned saying why", err)
	}
	if closed, _, _ := inGarden.closedWith(); closed {
		t.Error("a ban from one room closed the user's connection to another")
	}
	if _, err := joinAuto(b.hub, "garden2", "ann"); err != nil {
		t.Errorf("joining another room on b: %v", err)
	}

	// A ban from every room, of a user id that is no key token.
	odd := "bob.*>"
	inGardenToo, err := joinAuto(b.hub, "garden", odd)
	if err != nil {
		t.Fatal(err)
	}
	if err := bansA.Put(ctx, newBan(odd, "", "everywhere", time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the member of the user banned from every room is kicked on b", func() bool {
		closed, code, _ := inGardenToo.closedWith()
		return closed && code == rooms.CloseKicked
	})
	if _, err := joinAuto(b.hub, "anywhere", odd); !errors.Is(err, rooms.ErrBanned) {
		t.Errorf("joining any room on b: %v, want ErrBanned", err)
	}

	// Lifted on b, the user joins on a again.
	if err := bansA.Put(ctx, newBan("ann", "", "everywhere too", time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b holds ann's second ban", func() bool {
		_, err := joinAuto(b.hub, "garden3", "ann")
		return errors.Is(err, rooms.ErrBanned)
	})
	// The ban from every room alone first: the lobby's stays, on both.
	every, err := bansB.Lift(ctx, "ann", "")
	if err != nil || len(every) != 1 || every[0].RoomID != "" {
		t.Fatalf("lifting ann's ban from every room: %+v, %v", every, err)
	}
	eventually(t, time.Second, "ann joins another room on a", func() bool {
		_, err := joinAuto(a.hub, "garden4", "ann")
		return err == nil
	})
	if _, err := joinAuto(a.hub, "lobby", "ann"); !errors.Is(err, rooms.ErrBanned) {
		t.Errorf("joining the lobby on a after the other ban was lifted: %v, want ErrBanned", err)
	}
	if _, err := bansB.Lift(ctx, "ann", ""); !errors.Is(err, rooms.ErrBanNotFound) {
		t.Errorf("lifting the ban from every room again: %v, want ErrBanNotFound", err)
	}
	lifted, err := bansB.Lift(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(lifted) != 1 || lifted[0].RoomID != "lobby" || lifted[0].Reason != "spamming" {
		t.Errorf("lifted %+v, want the ban from the lobby", lifted)
	}
	if _, err := joinAuto(b.hub, "lobby", "ann"); err != nil {
		t.Errorf("joining on the lifting node: %v", err)
	}
	eventually(t, time.Second, "ann joins the lobby on a", func() bool {
		_, err := joinAuto(a.hub, "lobby", "ann")
		return err == nil
	})
	if _, err := bansA.Lift(ctx, "ann"); !errors.Is(err, rooms.ErrBanNotFound) {
		t.Errorf("lifting again: %v, want ErrBanNotFound", err)
	}
	// The other user's ban is untouched.
	if _, err := joinAuto(a.hub, "anywhere", odd); !errors.Is(err, rooms.ErrBanned) {
		t.Errorf("the other user's ban after ann's lift: %v, want ErrBanned", err)
	}
}

func TestBanPutRefusesWhatCannotBeABan(t *testing.T) {
	checkLeaks(t)
	srv := natstest.Start(t)
	bans := newTestNode(t, srv.Connect(), "a").openBans(t, 1)
	ctx := testContext(t)
	for _, ban := range []rooms.Ban{
		newBan("", "r", "", time.Hour),
		newBan("ann", "a b", "", time.Hour),
		newBan("ann", "r", "", -time.Second),
	} {
		if err := bans.Put(ctx, ban); err == nil {
			t.Errorf("Put(%+v) succeeded", ban)
		}
	}
	if _, err := bans.Lift(ctx, ""); !errors.Is(err, rooms.ErrInvalidArgument) {
		t.Errorf("Lift of no user: %v", err)
	}
}

func TestBansSurviveRestartsAndExpire(t *testing.T) {
	checkLeaks(t)
	srv := natstest.Start(t)
	ctx := testContext(t)
	a := newTestNode(t, srv.Connect(), "a")
	bansA := a.openBans(t, 1)
	if err := bansA.Put(ctx, newBan("ann", "lobby", "kept", time.Hour)); err != nil {
		t.Fatal(err)
	}
	short := newBan("bob", "", "short", 500*time.Millisecond)
	if err := bansA.Put(ctx, short); err != nil {
		t.Fatal(err)
	}
	// Replaced by a shorter ban, a long one is gone.
	if err := bansA.Put(ctx, newBan("cy", "lobby", "long", time.Hour)); err != nil {
		t.Fatal(err)
	}
	shorter := newBan("cy", "lobby", "shorter", 500*time.Millisecond)
	if err := bansA.Put(ctx, shorter); err != nil {
		t.Fatal(err)
	}
	// The bucket drops a ban by itself some time after it expires.
	js := jetStream(t, a.nc)
	stream, err := js.Stream(ctx, "KV_"+BansBucket)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, "$KV."+BansBucket+"."+banKey("ann", "lobby"))
	if err != nil || m.Header.Get(jetstream.MsgTTLHeader) == "" {
		t.Errorf("the ban's entry has no TTL: %v, header %v", err, m.Header)
	}

	bansA.Stop()
	a.nc.Close()
	srv.Stop()
	srv.Start()
	eventually(t, 5*time.Second, "the short bans expire", func() bool {
		return time.Now().After(short.ExpiresAt) && time.Now().After(shorter.ExpiresAt)
	})

	b := newTestNode(t, srv.Connect(), "b")
	b.openBans(t, 1)
	if _, err := joinAuto(b.hub, "lobby", "ann"); !errors.Is(err, rooms.ErrBanned) {
		t.Errorf("after the restarts, ann joins: %v, want ErrBanned", err)
	}
	for _, user := range []string{"bob", "cy"} {
		if _, err := joinAuto(b.hub, "lobby", user); err != nil {
			t.Errorf("after the restarts, %s's expired ban came back: %v", user, err)
		}
	}
}

func TestBansOnAThreeServerCluster(t *testing.T) {
	checkLeaks(t)
	c := natstest.StartCluster(t, 3)
	a, b := newTestNode(t, c.Servers[0].Connect(), "a"), newTestNode(t, c.Servers[1].Connect(), "b")
	bansA, bansB := a.openBans(t, 3), b.openBans(t, 3)
	ctx := testContext(t)
	member, err := joinAuto(b.hub, "lobby", "ann")
	if err != nil {
		t.Fatal(err)
	}
	c.Servers[2].Stop()
	if err := bansA.Put(ctx, newBan("ann", "", "replicated", time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the ban reaches b with one NATS server down", func() bool {
		closed, code, _ := member.closedWith()
		return closed && code == rooms.CloseKicked
	})
	if _, err := bansB.Lift(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the lift reaches a", func() bool {
		_, err := joinAuto(a.hub, "lobby", "ann")
		return err == nil
	})
}
