package cluster

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"roomd/rooms"
)

// The room directory, the bans and the node registry each live in a
// JetStream key-value bucket. What they share: how ids become keys, how a
// bucket is opened, and how their errors read.

// keyToken is a room id as one KV key token. roomToken will not do: the
// KV API takes keys of [-/_=.a-zA-Z0-9] only, refusing its '~' and the
// ':' of room ids. Room ids never hold '/' or '=', so '.' becomes '/' and
// ':' becomes '=', one to one, and a key stays readable in `nats kv ls`.
func keyToken(roomID string) string {
	return strings.NewReplacer(".", "/", ":", "=").Replace(roomID)
}

// roomOfKeyToken undoes keyToken.
func roomOfKeyToken(token string) string {
	return strings.NewReplacer("/", ".", "=", ":").Replace(token)
}

// userToken is a user id as one KV key token: user ids are any string of
// up to rooms.MaxIDBytes bytes, '.' and '*' included, so they are encoded
// whole, in unpadded base64url (of the key alphabet, never '.').
func userToken(userID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(userID))
}

// userOfToken undoes userToken.
func userOfToken(token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	return string(b), err
}

// kindError is an error of one of package rooms' kinds (errors.Is matches
// the kind) with its own message, as the Hub's errors are, so that the
// admin API maps it to the same status as the Hub's.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// unavailable says that what could not reach its bucket. It is a
// rooms.ErrUnavailable (try again later), unless the caller's context
// ended, which stays what it is.
func unavailable(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", rooms.ErrUnavailable, what, err)
}

// bucketConfig is the configuration every bucket here shares: one value
// per key (no history), kept on replicas servers, and per-message TTLs
// allowed. LimitMarkerTTL is what allows them (KeyTTL, PurgeTTL and a TTL
// on a publish need it); it is also how long the marker left by a key's
// expiry stays, for watchers to see.
func bucketConfig(name, description string, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         name,
		Description:    description,
		History:        1,
		Replicas:       max(replicas, 1),
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: markerTTL,
	}
}

// markerTTL is how long a bucket keeps the marker of a key removed by its
// TTL. Watchers see the marker as it is made; a longer life only serves a
// watcher that is behind by that much.
const markerTTL = 15 * time.Minute

// openBucket makes the bucket, or updates it to cfg, and returns it. It
// tries again while JetStream cannot answer yet (a new cluster electing
// its leaders, a server restarting), until ctx ends.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retry(ctx, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, unavailable("bucket "+cfg.Bucket, err)
	}
	return kv, nil
}

// attemptTimeout bounds each try of retry: a request that NATS took but
// never answered (a cluster electing its leaders) would otherwise wait for
// all of ctx.
const attemptTimeout = 3 * time.Second

// retry calls f until it succeeds or ctx ends, waiting a little longer
// each time, and returns f's last error. Each call gets at most
// attemptTimeout of ctx.
func retry(ctx context.Context, f func(context.Context) error) error {
	wait := 20 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := f(attempt)
		cancel()
		if err == nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// writeRetryFor bounds how long a write to a bucket tries again after an
// error that a NATS cluster gives while it elects a new leader for the
// bucket's stream (no responders, no response, a timeout, 503): an
// election takes a few seconds.
const writeRetryFor = 5 * time.Second

// retryWrite calls write until it succeeds or fails for good (see
// transient), ctx ends or writeRetryFor has passed, and returns write's
// last error.
func retryWrite(ctx context.Context, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, writeRetryFor)
	defer cancel()
	var last error
	_ = retry(ctx, func(ctx context.Context) error {
		last = write(ctx)
		if last != nil && transient(last) {
			return last
		}
		return nil
	})
	return last
}

// transient reports whether a bucket operation that failed with err may
// succeed if tried again. The answers about keys (exists, not found,
// another revision) are final, and so are the server's refusals of a
// request (a 4xx); the rest is NATS that cannot answer now.
func transient(err error) bool {
	for _, final := range []error{jetstream.ErrKeyExists, jetstream.ErrKeyNotFound, jetstream.ErrKeyDeleted,
		jetstream.ErrKeyRevisionMismatch, jetstream.ErrInvalidKey, context.Canceled} {
		if errors.Is(err, final) {
			return false
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code >= 500
	}
	return true
}

// position orders the entries of one key as a node applies them: an
// entry's revision, or just after it. A node that deletes a key it read
// at some revision (with that revision as the condition) does not learn
// the deletion's own revision, only that nothing came between: it applies
// the deletion at once, just after the entry, and its watcher then skips
// that entry and anything older.
type position struct {
	rev   uint64
	after bool
}

func (p position) newerThan(q position) bool {
	return p.rev > q.rev || p.rev == q.rev && p.after && !q.after
}

// probeInterval is how often a follower checks that its watcher keeps up.
const probeInterval = time.Second

// follower keeps a node's view of a bucket: it hands every entry of the
// bucket, then every change, to apply, from one goroutine, in revision
// order, until stop.
//
// A KV watcher is an ordered consumer that lives on one NATS server. When
// that server stops or restarts, nats.go recreates the consumer only once
// it has missed two of its idle heartbeats, which are 5 s apart: for 10 to
// 20 s, the node would not hear of rooms, bans or nodes. So a follower
// also asks the bucket for its latest revision every probeInterval, and
// when the watcher has not delivered, by now, what the bucket held at the
// previous probe, it starts a new watcher from the revision after the last
// it delivered. apply may see an entry twice across such a restart; the
// parts here apply each entry's position once (see position).
type follower struct {
	kv    jetstream.KeyValue
	apply func(e jetstream.KeyValueEntry, initial bool)
	log   *slog.Logger

	// Owned by run once started.
	w         *watcher
	started   time.Time
	delivered uint64 // every revision up to it was delivered, or is gone from the bucket
	floor     uint64 // the bucket's latest revision as w started: delivered once w sends its nil entry
	synced    bool   // w sent its nil entry

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// follow starts following kv's entries. It returns once apply has seen
// every entry the bucket held (with initial true), or fails when ctx ends
// first.
func follow(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger, apply func(e jetstream.KeyValueEntry, initial bool)) (*follower, error) {
	f := &follower{kv: kv, apply: apply, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	err := retry(ctx, f.startWatcher)
	if err != nil {
		return nil, unavailable("watching bucket "+kv.Bucket(), err)
	}
	for !f.synced {
		select {
		case e, ok := <-f.w.updates():
			if !ok {
				f.w.stop(nil)
				return nil, unavailable("watching bucket "+kv.Bucket(), errors.New("watcher closed before its first sync"))
			}
			f.take(e, true)
		case <-ctx.Done():
			f.w.stop(nil)
			return nil, unavailable("watching bucket "+kv.Bucket()+": first sync", ctx.Err())
		}
	}
	go f.run()
	return f, nil
}

// startWatcher starts a watcher from the revision after the last
// delivered (from the start: every key's latest entry).
func (f *follower) startWatcher(ctx context.Context) error {
	last, err := lastRevision(ctx, f.kv)
	if err != nil {
		return err
	}
	var opts []jetstream.WatchOpt
	if f.delivered > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(f.delivered+1))
	}
	w, err := watchKeys(ctx, f.kv, nil, opts...)
	if err != nil {
		return err
	}
	f.w, f.started, f.floor, f.synced = w, time.Now(), last, false
	return nil
}

// take hands one entry of the watcher to apply, or notes the end of its
// initial entries (nil).
func (f *follower) take(e jetstream.KeyValueEntry, initial bool) {
	if e == nil {
		f.synced = true
		f.delivered = max(f.delivered, f.floor)
		return
	}
	f.delivered = max(f.delivered, e.Revision())
	f.apply(e, initial)
}

func (f *follower) run() {
	defer close(f.done)
	probe := time.NewTicker(probeInterval)
	defer probe.Stop()
	var previous uint64 // the bucket's latest revision at the previous probe
	for {
		var updates <-chan jetstream.KeyValueEntry
		if f.w != nil {
			updates = f.w.updates()
		}
		select {
		case <-f.stop:
			if f.w != nil {
				f.w.stop(nil)
			}
			return
		case e, ok := <-updates:
			if !ok {
				// Its subscription ended: the connection closed for
				// good, or NATS ended it. A probe starts another if
				// it can.
				f.w.stop(nil)
				f.w = nil
				continue
			}
			f.take(e, false)
		case <-probe.C:
			ctx, cancel := context.WithTimeout(context.Background(), probeInterval)
			last, err := lastRevision(ctx, f.kv)
			stuck := f.w == nil || f.synced && previous > f.delivered ||
				!f.synced && time.Since(f.started) > 5*probeInterval
			if err == nil && stuck {
				f.restart(ctx)
			}
			cancel()
			if err == nil {
				previous = last
			}
		}
	}
}

// restart replaces a watcher that fell behind, or starts one where the
// last restart failed.
func (f *follower) restart(ctx context.Context) {
	if f.w != nil {
		f.w.stop(func(e jetstream.KeyValueEntry) { f.take(e, false) })
		f.w = nil
	}
	if err := f.startWatcher(ctx); err != nil {
		f.log.Warn("could not watch a bucket again; will try again", "bucket", f.kv.Bucket(), "error", err)
		return
	}
	f.log.Info("watching a bucket again: its watcher fell behind", "bucket", f.kv.Bucket(), "from_revision", f.delivered+1)
}

// watcher is a KV watcher with the context it lives by: nats.go ends a
// subscription when the context it was made with ends, so a watcher made
// with a call's context would die with the call.
type watcher struct {
	w      jetstream.KeyWatcher
	cancel context.CancelFunc
}

// watchKeys starts a watcher of the keys matching filters (every key if
// none), waiting for its consumer no longer than ctx allows; the watcher
// itself lives until stop.
func watchKeys(ctx context.Context, kv jetstream.KeyValue, filters []string, opts ...jetstream.WatchOpt) (*watcher, error) {
	life, cancel := context.WithCancel(context.Background())
	stopCancelling := context.AfterFunc(ctx, cancel)
	// WatchFiltered writes into the slice it is given.
	w, err := kv.WatchFiltered(life, append([]string(nil), filters...), opts...)
	if !stopCancelling() {
		err = cmp.Or(err, ctx.Err()) // ctx ended while the consumer was made
	}
	if err != nil {
		cancel()
		if w != nil {
			(&watcher{w, cancel}).stop(nil)
		}
		return nil, err
	}
	return &watcher{w, cancel}, nil
}

func (w *watcher) updates() <-chan jetstream.KeyValueEntry { return w.w.Updates() }

// stop stops w and hands what it still holds to take (if not nil) until
// it closes. Its channel must be drained: a watcher blocks NATS's delivery
// to it, and its own closing, while its channel is full.
func (w *watcher) stop(take func(jetstream.KeyValueEntry)) {
	_ = w.w.Stop()
	w.cancel()
	timeout := time.NewTimer(probeInterval)
	defer timeout.Stop()
	for {
		select {
		case e, ok := <-w.w.Updates():
			if !ok {
				return
			}
			if e != nil && take != nil {
				take(e)
			}
		case <-timeout.C:
			return
		}
	}
}

// stopFollowing stops f and waits for its goroutine.
func (f *follower) stopFollowing() {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
}

// lastRevision is the latest revision the bucket holds or held.
func lastRevision(ctx context.Context, kv jetstream.KeyValue) (uint64, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("bucket %s: status of type %T has no stream state", kv.Bucket(), st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}
