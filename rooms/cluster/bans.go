package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"roomd/rooms"
)

// BansBucket is the KV bucket of the bans: one key per user and room,
// banKey, holding a banRecord.
const BansBucket = "roomd_bans"

// Expired bans must not come back, and must not pile up. Each ban is
// written with a TTL (the bucket allows per-message TTLs, see
// bucketConfig) running banTTLSlack past its expiry, so the bucket drops
// it by itself, and watchers see the marker and lift it. What keeps an
// expired ban out of force, though, is its ExpiresAt: the Hub drops a
// ban once it has expired, and a node never applies one that has, so a
// ban seen at a restart, before the bucket dropped it, is ignored. The
// slack keeps a ban in the bucket until it has expired on every node whose
// clock runs somewhat behind the server's.
const banTTLSlack = time.Minute

// liftedTTL is how long the marker of a lifted ban stays, for watchers
// that are behind; a node cut off from NATS all that time keeps the ban
// until it restarts or the ban expires.
const liftedTTL = 24 * time.Hour

// everyRoom is the last token of the key of a ban from every room, and
// room the token before a room's key token: a key reads as
// "<user>.all" or "<user>.room.<room>", so the user's bans are
// "<user>.>", and no room id can pass for every room.
const (
	everyRoom = "all"
	oneRoom   = "room"
)

func banKey(userID, roomID string) string {
	if roomID == "" {
		return userToken(userID) + "." + everyRoom
	}
	return userToken(userID) + "." + oneRoom + "." + keyToken(roomID)
}

// banOfKey undoes banKey.
func banOfKey(key string) (userID, roomID string, err error) {
	user, rest, _ := strings.Cut(key, ".")
	if userID, err = userOfToken(user); err != nil || userID == "" {
		return "", "", fmt.Errorf("ban key %q: no user id in %q", key, user)
	}
	switch kind, room, _ := strings.Cut(rest, "."); {
	case rest == everyRoom:
		return userID, "", nil
	case kind == oneRoom && rooms.ValidateRoomID(roomOfKeyToken(room)) == nil:
		return userID, roomOfKeyToken(room), nil
	}
	return "", "", fmt.Errorf("ban key %q: neither %q nor %q and a room", key, everyRoom, oneRoom)
}

// banRecord is a ban as the bucket holds it; the field names are the
// stored format.
type banRecord struct {
	UserID    string    `json:"user_id"`
	RoomID    string    `json:"room_id,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (r *banRecord) ban() rooms.Ban {
	return rooms.Ban{UserID: r.UserID, RoomID: r.RoomID, Reason: r.Reason, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
}

// BansConfig configures Bans. The zero value serves one NATS server.
type BansConfig struct {
	// Replicas is how many NATS servers keep the bucket: 1 for one
	// server, 3 for a cluster of three. 0 means 1.
	Replicas int
	// Logger hears of entries that could not be applied. nil means
	// slog.Default().
	Logger *slog.Logger
}

// Bans keeps bans in a KV bucket with their expiry, so that a ban made on
// any node holds on every node and outlives every node's restart. Put and
// Lift change the bucket; a watcher applies every change to the local
// Hub's bans (Hub.ApplyBan, Hub.LiftBan), the writer's included, kicking
// the user's connections on every node as it arrives. The join path keeps
// checking the Hub's bans in memory only.
//
// Each key's entries are applied in revision order: Put and Lift apply
// their own change at once, and the watcher skips what they already
// applied (see position).
type Bans struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	hub    *rooms.Hub
	log    *slog.Logger
	follow *follower

	mu      sync.Mutex          // held while a change reaches the Hub, so that a key's changes arrive in order
	applied map[string]position // by key: the latest change applied
}

// OpenBans opens (making it if need be) the bucket of bans and starts
// applying it to hub. It returns once hub holds every ban in force in the
// bucket, or when ctx ends. Stop stops it.
func OpenBans(ctx context.Context, js jetstream.JetStream, hub *rooms.Hub, cfg BansConfig) (*Bans, error) {
	kv, err := openBucket(ctx, js, bucketConfig(BansBucket, "roomd: bans, by user and room", cfg.Replicas))
	if err != nil {
		return nil, err
	}
	b := &Bans{js: js, kv: kv, hub: hub, log: cmp.Or(cfg.Logger, slog.Default()), applied: make(map[string]position)}
	if b.follow, err = follow(ctx, kv, b.log, b.observe); err != nil {
		return nil, err
	}
	return b, nil
}

// Stop stops applying the bucket's changes. The Hub keeps the bans it holds.
func (b *Bans) Stop() { b.follow.stopFollowing() }

// Put stores ban, replacing the user's ban from the same room ("" for
// every room), and applies it on this node at once: the user's
// connections here are kicked before Put returns, and every other node's
// as its watcher hears of it. A ban that has already expired is an
// ErrInvalidArgument error. While NATS cannot answer (a cluster electing a
// leader) it tries again for a few seconds, within ctx; then the error is
// an ErrUnavailable one.
func (b *Bans) Put(ctx context.Context, ban rooms.Ban) error {
	switch {
	case ban.UserID == "":
		return errorf(rooms.ErrInvalidArgument, "user_id is empty")
	case !time.Now().Before(ban.ExpiresAt):
		return errorf(rooms.ErrInvalidArgument, "the ban of user %q expired at %s", ban.UserID, ban.ExpiresAt.UTC().Format(time.RFC3339))
	case ban.RoomID != "":
		if err := rooms.ValidateRoomID(ban.RoomID); err != nil {
			return err
		}
	}
	rec := &banRecord{UserID: ban.UserID, RoomID: ban.RoomID, Reason: ban.Reason,
		CreatedAt: ban.CreatedAt.Round(0), ExpiresAt: ban.ExpiresAt.Round(0)}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// KeyValue.Put takes no TTL, and Update drops a key's TTL, so a ban
	// replacing another is published to the key's subject directly, as
	// Put does, with its TTL ($KV.<bucket>.<key>, the KV's layout).
	key := banKey(ban.UserID, ban.RoomID)
	var ack *jetstream.PubAck
	err = retryWrite(ctx, func(ctx context.Context) (err error) {
		msg := &nats.Msg{Subject: "$KV." + BansBucket + "." + key, Data: data}
		ack, err = b.js.PublishMsg(ctx, msg,
			jetstream.WithMsgTTL(time.Until(ban.ExpiresAt)+banTTLSlack), jetstream.WithExpectStream("KV_"+BansBucket))
		return err
	})
	if err != nil {
		return unavailable("bans", err)
	}
	b.apply(key, position{rev: ack.Sequence}, rec, false)
	return nil
}

// Lift lifts the bans of a user, on every node: every ban, or with roomIDs
// only those from these rooms ("" for the ban from every room), as
// Hub.Unban. It returns those that were in force, ordered by room id:
// ErrBanNotFound if none was. NATS failures are tried again as Put does.
func (b *Bans) Lift(ctx context.Context, userID string, roomIDs ...string) ([]rooms.Ban, error) {
	if userID == "" {
		return nil, errorf(rooms.ErrInvalidArgument, "user_id is empty")
	}
	entries, err := b.userBans(ctx, userID)
	if err != nil {
		return nil, unavailable("bans", err)
	}
	now := time.Now()
	var lifted []rooms.Ban
	for _, e := range entries {
		if len(roomIDs) > 0 && !slices.Contains(roomIDs, roomOfEntry(e)) {
			continue
		}
		rec, err := b.lift(ctx, e)
		if err != nil {
			return nil, unavailable("bans", err)
		}
		if rec != nil && now.Before(rec.ExpiresAt) {
			lifted = append(lifted, rec.ban())
		}
	}
	if len(lifted) == 0 {
		return nil, rooms.NoBanError(userID, roomIDs...)
	}
	slices.SortFunc(lifted, func(x, y rooms.Ban) int { return strings.Compare(x.RoomID, y.RoomID) })
	return lifted, nil
}

// roomOfEntry is the room of a ban entry ("" for every room); an entry
// that does not decode is no room's.
func roomOfEntry(e jetstream.KeyValueEntry) string {
	var rec banRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "\x00"
	}
	return rec.RoomID
}

// userBans reads the entries of a user's bans, and of no one else's: their
// keys all start with the user's token.
func (b *Bans) userBans(ctx context.Context, userID string) ([]jetstream.KeyValueEntry, error) {
	var w *watcher
	err := retry(ctx, func(attempt context.Context) (err error) { // as a NATS cluster elects a new leader
		w, err = watchKeys(attempt, b.kv, []string{userToken(userID) + ".>"}, jetstream.IgnoreDeletes())
		return err
	})
	if err != nil {
		return nil, err
	}
	defer w.stop(nil)
	var entries []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.updates():
			switch {
			case !ok:
				return nil, errors.New("watcher closed")
			case e == nil:
				return entries, nil
			}
			entries = append(entries, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lift removes the ban of entry e, or whatever replaced it since, and
// applies that here; it returns the ban it removed, nil if there was none
// by then.
func (b *Bans) lift(ctx context.Context, e jetstream.KeyValueEntry) (*banRecord, error) {
	purged := false // a purge was tried that may have gone through unanswered
	for attempt := 0; ; attempt++ {
		rec := new(banRecord)
		if err := json.Unmarshal(e.Value(), rec); err != nil {
			rec = nil // removed all the same
		}
		// Only the entry read: a ban that replaced it meanwhile is read
		// and lifted in its turn.
		err := retryWrite(ctx, func(ctx context.Context) error {
			err := b.kv.Purge(ctx, e.Key(), jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(liftedTTL))
			purged = purged || err != nil && transient(err)
			return err
		})
		if err == nil {
			b.apply(e.Key(), position{rev: e.Revision(), after: true}, nil, false)
			return rec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || attempt >= 10 {
			return nil, err
		}
		read := e
		err = retryWrite(ctx, func(ctx context.Context) (err error) {
			e, err = b.kv.Get(ctx, read.Key())
			return err
		})
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) && purged:
			// Most likely by the unanswered try: lifted all the same.
			b.apply(read.Key(), position{rev: read.Revision(), after: true}, nil, false)
			return rec, nil
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, nil // lifted, or expired, meanwhile
		case err != nil:
			return nil, err
		}
	}
}

// observe applies one entry that the watcher saw. The initial entries hold
// the bans in the bucket and the markers of bans lifted or expired before
// this node started, which have nothing to lift here.
func (b *Bans) observe(e jetstream.KeyValueEntry, initial bool) {
	if e.Operation() != jetstream.KeyValuePut {
		if !initial {
			b.apply(e.Key(), position{rev: e.Revision()}, nil, true)
		}
		return
	}
	rec := new(banRecord)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		b.log.Warn("bans: an entry that does not decode", "key", e.Key(), "error", err)
		return
	}
	b.apply(e.Key(), position{rev: e.Revision()}, rec, true)
}

// apply applies the change at to the key's ban: rec, or its lifting when
// rec is nil, unless a change no older was already applied. A lifting
// that the watcher saw is the last it will see of the key's earlier
// changes, so the key is forgotten once it is applied.
func (b *Bans) apply(key string, at position, rec *banRecord, watched bool) {
	userID, roomID, err := banOfKey(key)
	if err != nil {
		b.log.Warn("bans: a key that is no ban's", "key", key, "error", err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if last, ok := b.applied[key]; ok && !at.newerThan(last) {
		return
	}
	if rec == nil {
		b.hub.LiftBan(userID, roomID)
		if watched {
			delete(b.applied, key)
		} else {
			b.applied[key] = at
		}
		return
	}
	b.applied[key] = at
	if rec.UserID != userID || rec.RoomID != roomID {
		b.log.Warn("bans: an entry for another user or room than its key's", "key", key, "user", rec.UserID, "room", rec.RoomID)
		return
	}
	if _, err := b.hub.ApplyBan(rec.ban()); err != nil {
		b.log.Warn("bans: a ban the Hub refused", "key", key, "error", err)
	}
}
