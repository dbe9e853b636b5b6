package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"roomd/rooms"
)

// RoomsBucket is the KV bucket of the room directory: one key per room
// made through the admin API (keyToken of its id), holding a roomRecord.
const RoomsBucket = "roomd_rooms"

// deletedTTL is how long the marker of a deleted room stays in the
// directory. A watcher sees it as it is made; one that is behind by more
// than this (a node cut off from NATS all that time) misses the delete and
// keeps the room until it restarts. Without a TTL, markers would pile up
// for every room ever deleted, and every node would read them all at start.
const deletedTTL = 24 * time.Hour

// mirrorRetryInterval is how often a node tries again to hold a room that
// its Hub refused (its room limit, a broker that could not subscribe).
const mirrorRetryInterval = time.Second

// roomRecord is a room's entry in the directory. The field names are the
// stored format, which every node of every version reads.
type roomRecord struct {
	MaxClients  int               `json:"max_clients"`
	Echo        bool              `json:"echo"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	HistorySize int               `json:"history_size"` // -1: each node's default
	NoPresence  bool              `json:"no_presence"`
	CreatedAt   time.Time         `json:"created_at"`
}

func (r *roomRecord) options() rooms.RoomOptions {
	return rooms.RoomOptions{MaxClients: r.MaxClients, Echo: r.Echo, Metadata: maps.Clone(r.Metadata),
		HistorySize: r.HistorySize, NoPresence: r.NoPresence}
}

// DirectoryConfig configures a Directory. The zero value serves one NATS
// server.
type DirectoryConfig struct {
	// Replicas is how many NATS servers keep the bucket: 1 for one
	// server, 3 for a cluster of three. 0 means 1.
	Replicas int
	// Logger hears of rooms the local Hub could not hold. nil means
	// slog.Default().
	Logger *slog.Logger
}

// Directory keeps the rooms made through the admin API in a KV bucket, so
// that a room made on one node is made on every node and outlives every
// node's restart. Create and Delete change the bucket; a watcher makes
// every node's Hub follow it (the mirror), the writer's included. The
// Hub's join path never waits for the bucket: it finds the room in memory.
//
// Each room's entries are applied in revision order: Create and Delete
// apply their own change at once, so that the node they ran on answers
// with it, and the watcher skips what they already applied.
type Directory struct {
	kv     jetstream.KeyValue
	hub    *rooms.Hub
	log    *slog.Logger
	follow *follower

	// mu is held while the Hub is made to follow one entry, so that a
	// room's entries reach the Hub one at a time, in order.
	mu      sync.Mutex
	applied map[string]applied  // by room id: the latest entry applied
	failed  map[string]struct{} // rooms the Hub refused, tried again every mirrorRetryInterval

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// applied is the latest directory entry a Directory applied for a room:
// its position, and the room, or nil for a deletion.
type applied struct {
	at  position
	rec *roomRecord
}

// OpenDirectory opens (making it if need be) the room directory and starts
// its mirror into hub. It returns once hub holds every room of the
// directory, or when ctx ends. Stop stops the mirror.
func OpenDirectory(ctx context.Context, js jetstream.JetStream, hub *rooms.Hub, cfg DirectoryConfig) (*Directory, error) {
	kv, err := openBucket(ctx, js, bucketConfig(RoomsBucket, "roomd: rooms made through the admin API", cfg.Replicas))
	if err != nil {
		return nil, err
	}
	d := &Directory{kv: kv, hub: hub, log: cmp.Or(cfg.Logger, slog.Default()),
		applied: make(map[string]applied), failed: make(map[string]struct{}), stop: make(chan struct{})}
	if d.follow, err = follow(ctx, kv, d.log, d.observe); err != nil {
		return nil, err
	}
	d.wg.Add(1)
	go d.retryFailed()
	return d, nil
}

// Stop stops the mirror. The Hub keeps the rooms it holds.
func (d *Directory) Stop() {
	d.stopOnce.Do(func() {
		close(d.stop)
		d.follow.stopFollowing()
		d.wg.Wait()
	})
}

// Create adds a room to the directory, so that every node makes it, and
// returns it as this node's Hub holds it. Its id and options are checked as
// Hub.CreateRoom checks them. Of many nodes creating the same room at once,
// one succeeds and the others get an ErrRoomExists error. While NATS cannot
// answer (a cluster electing a leader) it tries again for a few seconds,
// within ctx; then the error is an ErrUnavailable one.
func (d *Directory) Create(ctx context.Context, roomID string, opts rooms.RoomOptions) (rooms.RoomInfo, error) {
	if err := rooms.CheckRoomOptions(roomID, opts); err != nil {
		return rooms.RoomInfo{}, err
	}
	rec := &roomRecord{MaxClients: opts.MaxClients, Echo: opts.Echo, Metadata: maps.Clone(opts.Metadata),
		HistorySize: opts.HistorySize, NoPresence: opts.NoPresence, CreatedAt: time.Now().Round(0)}
	data, err := json.Marshal(rec)
	if err != nil {
		return rooms.RoomInfo{}, err
	}
	key := keyToken(roomID)
	var rev uint64
	err = retryWrite(ctx, func(ctx context.Context) (err error) {
		rev, err = d.kv.Create(ctx, key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			// An earlier try whose answer was lost may have made it:
			// then it holds exactly this record, creation time and all.
			if e, getErr := d.kv.Get(ctx, key); getErr == nil && bytes.Equal(e.Value(), data) {
				rev, err = e.Revision(), nil
			}
		}
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return rooms.RoomInfo{}, errorf(rooms.ErrRoomExists, "room %q already exists", roomID)
	case err != nil:
		return rooms.RoomInfo{}, unavailable("room directory", err)
	}
	info, err := d.apply(roomID, position{rev: rev}, rec, false)
	if errors.Is(err, errStale) { // the watcher was first
		info, err = d.hub.GetRoom(roomID)
	}
	if err != nil {
		// The room is made on every other node; this one keeps trying.
		return rooms.RoomInfo{RoomID: roomID, Options: rec.options(), CreatedAt: rec.CreatedAt}, nil
	}
	return info, nil
}

// Delete removes a room from the directory, so that every node deletes it
// as Hub.DeleteRoom does (raw members closed with CloseRoomDeleted, session
// members told). A room not in the directory (never made through the admin
// API, or already deleted) is an ErrRoomNotFound error; of many nodes
// deleting the same room at once, one succeeds (unless NATS lost an answer
// to one of them, which then cannot tell and succeeds too). NATS failures
// are tried again as Create does.
func (d *Directory) Delete(ctx context.Context, roomID string) error {
	if err := rooms.ValidateRoomID(roomID); err != nil {
		return err
	}
	key := keyToken(roomID)
	purged := false // a purge was tried that may have gone through unanswered
	var e jetstream.KeyValueEntry
	for attempt := 0; ; attempt++ {
		read := e
		err := retryWrite(ctx, func(ctx context.Context) (err error) {
			e, err = d.kv.Get(ctx, key)
			return err
		})
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) && purged:
			_, _ = d.apply(roomID, position{rev: read.Revision(), after: true}, nil, false)
			return nil
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return errorf(rooms.ErrRoomNotFound, "room %q not found", roomID)
		case err != nil:
			return unavailable("room directory", err)
		}
		// Only the entry just read: a room deleted and made again
		// meanwhile is not deleted unseen.
		err = retryWrite(ctx, func(ctx context.Context) error {
			err := d.kv.Purge(ctx, key, jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(deletedTTL))
			purged = purged || err != nil && transient(err)
			return err
		})
		switch {
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) && attempt < 10:
			continue // deleted, or made again, meanwhile (maybe by an unanswered try of ours): look again
		case err != nil:
			return unavailable("room directory", err)
		}
		_, _ = d.apply(roomID, position{rev: e.Revision(), after: true}, nil, false)
		return nil
	}
}

// observe applies one entry that the watcher saw. The initial entries
// hold every room in the directory, and the markers of rooms deleted
// before this node started, which have nothing to delete here.
func (d *Directory) observe(e jetstream.KeyValueEntry, initial bool) {
	roomID := roomOfKeyToken(e.Key())
	if err := rooms.ValidateRoomID(roomID); err != nil {
		d.log.Warn("room directory: a key that is no room id", "key", e.Key(), "error", err)
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		if !initial {
			_, _ = d.apply(roomID, position{rev: e.Revision()}, nil, true)
		}
		return
	}
	rec := new(roomRecord)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		d.log.Warn("room directory: an entry that does not decode", "room", roomID, "error", err)
		return
	}
	_, _ = d.apply(roomID, position{rev: e.Revision()}, rec, true)
}

// errStale says that a newer entry of the room was already applied.
var errStale = errors.New("a newer entry was applied")

// apply makes the Hub follow the room's entry at: rec, or its deletion
// when rec is nil. An entry no newer than one already applied is skipped
// (errStale). A deletion that the watcher saw is the last it will see of
// the room's earlier entries, so it is forgotten once applied.
func (d *Directory) apply(roomID string, at position, rec *roomRecord, watched bool) (rooms.RoomInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if last, ok := d.applied[roomID]; ok && !at.newerThan(last.at) {
		return rooms.RoomInfo{}, errStale
	}
	d.applied[roomID] = applied{at: at, rec: rec}
	info, err := d.applyLocked(roomID)
	if rec == nil && watched {
		delete(d.applied, roomID)
	}
	return info, err
}

// applyLocked makes the Hub follow the room's latest applied entry, and
// keeps the room for retryFailed when the Hub refuses. d.mu must be held.
func (d *Directory) applyLocked(roomID string) (rooms.RoomInfo, error) {
	rec := d.applied[roomID].rec
	if rec == nil {
		delete(d.failed, roomID)
		if _, err := d.hub.DeleteRoom(roomID); err != nil && !errors.Is(err, rooms.ErrRoomNotFound) {
			return rooms.RoomInfo{}, err
		}
		return rooms.RoomInfo{}, nil
	}
	info, err := d.hub.MirrorRoom(roomID, rec.options(), rec.CreatedAt)
	if err != nil {
		if _, failing := d.failed[roomID]; !failing {
			d.log.Warn("room directory: this node cannot hold the room yet; trying again", "room", roomID, "error", err)
		}
		d.failed[roomID] = struct{}{}
		return rooms.RoomInfo{}, err
	}
	delete(d.failed, roomID)
	return info, nil
}

// retryFailed tries again, every mirrorRetryInterval, to make the Hub hold
// the rooms it refused, until Stop.
func (d *Directory) retryFailed() {
	defer d.wg.Done()
	t := time.NewTicker(mirrorRetryInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		for roomID := range d.failed {
			if _, err := d.applyLocked(roomID); err == nil {
				d.log.Info("room directory: this node now holds the room", "room", roomID)
			}
		}
		d.mu.Unlock()
	}
}
