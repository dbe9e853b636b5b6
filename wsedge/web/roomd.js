// roomd.js: the browser SDK for roomd's client protocol v1 (roomd.v1.json).
// A plain ES module: no build step, no dependencies.
//
//   import { connect } from '/v1/roomd.js';
//   const client = connect('ws://localhost:8080/ws', { token, onState });
//   const room = client.join('lobby', { onMessage, onPresence, onState });
//   await room.publish({ text: 'hi' });   // settles with the server's ack
//   room.memberCount;                     // kept up to date by presence
//   await room.members({ after, limit }); // a page of the member list
//   room.leave();  client.close();
//
// Requests may be made at once: a publish made before the connection is
// open, or before its room is joined, waits for both (up to
// requestTimeoutMs, then it rejects with code 'timeout'). A request for a
// room that cannot be joined (banned, invalid id, deleted, kicked from it)
// rejects at once with the reason.
//
// The client reconnects by itself with exponential backoff and jitter,
// rejoins its rooms and resumes each from the last sequence it saw, so no
// message is silently lost: when the server's history no longer reaches
// back, the room's onGap is called and it rejoins from now. The backoff
// starts over only once every room is joined again, so a connection that
// fails after its welcome still backs off. It does not reconnect after a
// terminal close: kicked (4000), unauthorized (4401), forbidden (4403).
// A join the server refuses for the rate limit (joins into big rooms cost
// more of it) is tried again after a growing delay, the room staying
// 'joining'.

export const PROTOCOL = 'roomd.v1.json';

// Close codes after which reconnecting would not help.
export const TERMINAL_CLOSE_CODES = { 4000: 'kicked', 4401: 'unauthorized', 4403: 'forbidden' };

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10000;
const REQUEST_TIMEOUT_MS = 10000;

// A browser reports every connection that failed without a close frame as
// 1006, and cannot tell why: an HTTP refusal of the upgrade looks the same
// as a server that is down.
const CLOSE_ABNORMAL = 1006;
const UNREACHABLE = 'the server refused the connection or could not be reached';

// RoomdError is how a request fails: code is one of the protocol's stable
// error codes, or one of the SDK's own: 'timeout' (no connection, join or
// answer within requestTimeoutMs), 'disconnected' (the connection closed
// after the request was sent, so it may or may not have taken effect),
// 'room_deleted', 'kicked', 'left', 'closed', 'unauthorized', 'forbidden'.
export class RoomdError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'RoomdError';
    this.code = code;
  }
}

// connect opens a client. options:
//   token        signed token (appended as ?token=)
//   user         development mode only: appended as ?user=
//   onState(state, detail)  'connecting' | 'open' | 'reconnecting' |
//                'closed' | 'kicked' | 'unauthorized' | 'forbidden';
//                detail has {code, reason, attempt, delayMs} where known:
//                'reconnecting' comes once with delayMs when a connection
//                is lost (code and reason say how; unreachable: true when
//                it failed before the server's welcome, which a browser
//                cannot tell from a refusal), then without it as the next
//                attempt starts. 'open' means connected; each room
//                reports its own join (Room onState).
//   requestTimeoutMs  how long a request may wait for the connection, its
//                room's join and the server's answer (10000; 0: forever)
//   onDirect(msg)  a message sent to this client alone
//   WebSocket    a WebSocket implementation (defaults to the browser's)
export function connect(url, options = {}) {
  return new Client(url, options);
}

class Client {
  constructor(url, options) {
    this.url = new URL(url, typeof location !== 'undefined' ? location.href : undefined);
    if (options.token) this.url.searchParams.set('token', options.token);
    if (options.user) this.url.searchParams.set('user', options.user);
    this.options = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.rooms = new Map(); // name -> Room, for every room to be in
    this.pending = new Map(); // request id -> request sent, awaiting its answer
    this.nextID = 1;
    this.attempt = 0; // connections failed since the client was last settled
    this.state = 'idle';
    this.clientId = '';
    this.userId = '';
    this.stopped = false;
    this.open();
  }

  open() {
    this.timer = undefined;
    this.welcomed = false;
    this.kickReason = '';
    // A retry reports why the last attempt failed, without delayMs: it is
    // under way.
    if (this.attempt === 0) this.setState('connecting', { attempt: 0 });
    else this.setState('reconnecting', { ...this.lastFailure, attempt: this.attempt });
    const ws = new this.WebSocket(this.url.toString(), PROTOCOL);
    this.ws = ws;
    ws.onmessage = (e) => this.onFrame(e.data);
    ws.onclose = (e) => this.onClose(ws, e.code, e.reason);
  }

  setState(state, detail = {}) {
    this.state = state;
    if (this.options.onState) this.options.onState(state, detail);
  }

  get connected() {
    return this.state === 'open' && this.ws?.readyState === 1;
  }

  onFrame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    switch (f.type) {
      case 'welcome':
        this.welcomed = true;
        this.clientId = f.clientId;
        this.userId = f.userId;
        this.setState('open', { clientId: f.clientId, userId: f.userId });
        for (const room of [...this.rooms.values()]) room.sendJoin();
        this.settleIfJoined();
        break;
      case 'ack':
      case 'error': {
        const req = this.pending.get(f.id);
        if (!req) break;
        this.pending.delete(f.id);
        if (f.type === 'ack') settle(req, 'resolve', f);
        else settle(req, 'reject', new RoomdError(f.code, f.message));
        break;
      }
      case 'message':
        if (f.room) this.rooms.get(f.room)?.onMessage(f);
        else if (this.options.onDirect) this.options.onDirect(decodeMessage(f));
        break;
      case 'presence':
        this.rooms.get(f.room)?.onPresence(f);
        break;
      case 'room_deleted':
        this.rooms.get(f.room)?.end('deleted', new RoomdError('room_deleted', `room ${f.room} was deleted` + (f.reason ? `: ${f.reason}` : '')), f.reason);
        break;
      case 'kicked':
        // With a room: removed from that room only, the connection stays.
        // Without: the connection is about to be closed with 4000.
        if (f.room) this.rooms.get(f.room)?.end('kicked', new RoomdError('kicked', `removed from room ${f.room}` + (f.reason ? `: ${f.reason}` : '')), f.reason);
        else this.kickReason = f.reason;
        break;
    }
  }

  // settleIfJoined starts the backoff over once every room is joined again.
  // Not on welcome alone: a join can still fail and take the connection with
  // it (the server drops a client too slow to take its ack, a network that
  // drops the connection when the client first sends), and a client that
  // reset there would come back every few hundred milliseconds forever.
  settleIfJoined() {
    if (!this.connected) return;
    for (const room of this.rooms.values()) if (room.state !== 'joined') return;
    this.attempt = 0;
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.failPending('disconnected', 'the connection closed before the server answered; the request may or may not have taken effect');
    const terminal = TERMINAL_CLOSE_CODES[code];
    if (this.stopped || terminal) {
      this.stop(this.stopped ? 'closed' : terminal, code, reason || this.kickReason || '');
      return;
    }
    for (const room of this.rooms.values()) room.dropped();
    this.attempt++;
    // Full jitter: a random delay up to an exponentially growing cap, so
    // that many clients dropped at once do not come back at once.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt, 10));
    const delayMs = Math.round(cap / 2 + Math.random() * cap / 2);
    const failure = { code, reason };
    if (code === CLOSE_ABNORMAL && !this.welcomed) {
      failure.unreachable = true;
      failure.reason = reason || UNREACHABLE;
    }
    this.lastFailure = failure;
    this.setState('reconnecting', { ...failure, attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => this.open(), delayMs);
  }

  // stop ends the client for good: state is 'closed' or a terminal close's.
  stop(state, code, reason) {
    this.stopped = true;
    this.ws = undefined;
    this.setState(state, { code, reason });
    const err = new RoomdError(state, state === 'closed' ? 'the client was closed' : `the connection was closed (${state})` + (reason ? `: ${reason}` : ''));
    for (const room of [...this.rooms.values()]) room.end('closed', err, reason);
  }

  failPending(code, message) {
    const reqs = [...this.pending.values()];
    this.pending.clear();
    for (const req of reqs) settle(req, 'reject', new RoomdError(code, message));
  }

  // send puts a request on the wire; its answer settles it.
  send(req) {
    const id = String(this.nextID++);
    req.id = id;
    this.pending.set(id, req);
    this.ws.send(JSON.stringify({ ...req.body, id }));
  }

  // join returns a Room at once; it is (re)joined whenever the connection
  // is open. handlers: onMessage(msg), onPresence(event, members,
  // memberCount), onState(state, detail), onJoined(ack), onGap(detail),
  // onDeleted(reason), onError(err).
  //
  // onPresence is called with {event: 'members'} once joined, then with
  // each presence event ({event: 'joined' | 'left', clientId, userId}).
  // members is the list the client knows: the whole room while it has at
  // most 100 members, otherwise the first 100 by clientId at the join (the
  // server lists no more in a join's ack) less those who left since;
  // memberCount is how many there are in all (room.memberCount too). In a
  // room whose presence is off (room.presence false) members is empty and
  // memberCount is the count at the join. room.members() pages through
  // the server's list.
  join(name, handlers = {}) {
    let room = this.rooms.get(name);
    if (room) return room;
    room = new Room(this, name, handlers);
    this.rooms.set(name, room);
    if (this.connected) room.sendJoin();
    return room;
  }

  close() {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) {
      // Between attempts: there is no socket to close.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.stop('closed', 1000, '');
    } else {
      this.ws.close(1000, 'bye'); // onClose reports 'closed'
    }
  }
}

// settle ends a request with how (resolve or reject) and value, once.
function settle(req, how, value) {
  if (req.done) return;
  req.done = true;
  clearTimeout(req.timer);
  req[how](value);
}

function decodeMessage(f) {
  const msg = { room: f.room, seq: f.seq || 0, from: f.from, time: f.time, data: f.data };
  if (f.binary !== undefined) {
    msg.binary = Uint8Array.from(atob(f.binary), (c) => c.charCodeAt(0));
  }
  return msg;
}

// A Room is in one of these states, reported to handlers.onState:
//   joining   waiting for the connection or the join's answer (also
//             after a drop, until it is joined again)
//   joined    a member: requests go out at once
//   failed    the join was refused (detail.code says why: forbidden,
//             invalid_room, not_found, full, ...); rejoin() tries again
//   kicked    removed from this room by the server; rejoin() tries again
//   deleted   the room was deleted; rejoin() joins (and so makes) it anew
//   left      leave() was called
//   closed    the client stopped (closed, kicked, unauthorized, forbidden)
// In the last five, requests reject at once with the reason.
class Room {
  constructor(client, name, handlers) {
    this.client = client;
    this.name = name;
    this.handlers = handlers;
    this.lastSeq = 0;
    this.epoch = '';
    this.known = new Map(); // clientId -> {clientId, userId}: see Client.join
    this.memberCount = 0;
    this.presence = true;
    this.joinRetries = 0; // joins refused in a row for the rate limit
    this.state = 'joining';
    this.error = null; // why requests fail at once, in the final states
    this.queue = []; // requests waiting for the join
  }

  get joined() {
    return this.state === 'joined';
  }

  setState(state, detail = {}) {
    this.state = state;
    this.handlers.onState?.(state, detail);
  }

  sendJoin() {
    this.cancelRetry();
    const req = { op: 'join', room: this.name };
    const resuming = this.epoch !== '';
    if (resuming) {
      req.since = this.lastSeq;
      req.epoch = this.epoch;
    }
    new Promise((resolve, reject) => this.client.send({ body: req, resolve, reject })).then(
      (ack) => this.onJoinAck(ack, resuming),
      (err) => this.onJoinError(err),
    );
  }

  onJoinAck(ack, resuming) {
    if (this.state !== 'joining') {
      // Left (or ended) while the join was on its way: the server has us
      // as a member, so leave again.
      if (this.state === 'left' && this.client.connected) {
        this.client.send({ body: { op: 'leave', room: this.name }, resolve() {}, reject() {} });
      }
      return;
    }
    const previousEpoch = this.gapFrom;
    this.gapFrom = undefined;
    this.epoch = ack.epoch;
    // A fresh join starts at the room's current sequence; a resumed one
    // keeps its own, and the replayed messages that follow the ack move it
    // on.
    if (!resuming) this.lastSeq = ack.seq || 0;
    this.joinRetries = 0;
    this.presence = ack.presence !== false;
    this.known = new Map((ack.members || []).map((m) => [m.clientId, m]));
    this.memberCount = ack.memberCount ?? this.known.size;
    this.setState('joined', { epoch: ack.epoch, seq: ack.seq || 0 });
    if (previousEpoch !== undefined) {
      // epochChanged: the room's history restarted (the server restarted,
      // or the room was deleted and made again) rather than just not
      // reaching back far enough.
      this.handlers.onGap?.({ epochChanged: previousEpoch !== ack.epoch, previousEpoch, epoch: ack.epoch });
    }
    this.handlers.onJoined?.(ack);
    this.handlers.onPresence?.({ event: 'members' }, [...this.known.values()], this.memberCount);
    const queued = this.queue;
    this.queue = [];
    for (const req of queued) if (!req.done) this.client.send(req);
    this.client.settleIfJoined();
  }

  onJoinError(err) {
    if (this.state !== 'joining') return;
    if (err.code === 'disconnected') return; // rejoined on reconnect
    if (err.code === 'rate_limited') {
      // Over the connection's rate budget (a join into a big room costs
      // more of it): the server refused nothing for good, so try again
      // once the budget has had time to refill.
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.joinRetries++, 10));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (this.state === 'joining' && this.client.connected) this.sendJoin();
      }, Math.round(cap / 2 + Math.random() * cap / 2));
      return;
    }
    if (err.code === 'gap') {
      // History no longer reaches back: start from now, and say so once
      // joined (onGap).
      this.gapFrom = this.epoch;
      this.epoch = '';
      this.lastSeq = 0;
      if (this.client.connected) this.sendJoin();
      return;
    }
    this.end('failed', err, err.message);
    this.handlers.onError?.(err);
  }

  // dropped: the connection is gone; the room will be joined again.
  dropped() {
    this.cancelRetry();
    if (this.state === 'joined') this.setState('joining', { reconnecting: true });
  }

  cancelRetry() {
    if (this.retryTimer === undefined) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  // end puts the room in a final state: it is no longer the client's, its
  // members are unknown, and waiting requests fail with err.
  end(state, err, reason) {
    if (this.client.rooms.get(this.name) === this) this.client.rooms.delete(this.name);
    this.cancelRetry();
    this.joinRetries = 0;
    this.error = err;
    this.epoch = '';
    this.lastSeq = 0;
    this.gapFrom = undefined;
    this.known = new Map();
    this.memberCount = 0;
    const queued = this.queue;
    this.queue = [];
    for (const req of queued) settle(req, 'reject', err);
    this.setState(state, { code: err.code, reason: reason || '', message: err.message });
    if (state === 'deleted') this.handlers.onDeleted?.(reason || '');
    this.client.settleIfJoined();
  }

  // rejoin joins again a room that failed, was deleted or was left, or that
  // the client was kicked from; it cannot bring back a stopped client
  // (connect again for that). It returns the room now in the client.
  rejoin() {
    const c = this.client;
    const current = c.rooms.get(this.name);
    if (current) return current;
    if (c.stopped) return this;
    this.error = null;
    c.rooms.set(this.name, this);
    this.setState('joining');
    if (c.connected) this.sendJoin();
    return this;
  }

  onMessage(f) {
    if (f.seq && f.seq <= this.lastSeq) return; // already seen (replay overlap)
    if (f.seq) this.lastSeq = f.seq;
    this.handlers.onMessage?.(decodeMessage(f));
  }

  onPresence(f) {
    if (f.event === 'joined') {
      // The list grows while it is the whole room; a partial one (a big
      // room) stays what the join listed, and the count says the rest.
      if (this.known.size >= this.memberCount) this.known.set(f.clientId, { clientId: f.clientId, userId: f.userId });
      this.memberCount++;
    } else {
      this.known.delete(f.clientId);
      this.memberCount = Math.max(this.known.size, this.memberCount - 1);
    }
    this.handlers.onPresence?.(f, [...this.known.values()], this.memberCount);
  }

  // members asks the server for a page of the room's members in clientId
  // order: those after the clientId `after` (from the start without it),
  // at most `limit` (1-100; 100 without it). It resolves with
  // {memberCount, members, next}: pass next as after for the following
  // page; it is absent on the last. A room whose presence is off rejects
  // with presence_off. Pages do not change the list onPresence reports,
  // and each costs the connection's rate budget one request.
  async members({ after, limit } = {}) {
    const body = { op: 'members', room: this.name };
    if (after) body.after = after;
    if (limit) body.limit = limit;
    const ack = await this.request(body);
    return { memberCount: ack.memberCount, members: ack.members || [], next: ack.next };
  }

  // request sends body once the room is joined, and settles with the
  // server's answer; it rejects at once when the room cannot be joined,
  // and after requestTimeoutMs when nothing has settled it.
  request(body) {
    return new Promise((resolve, reject) => {
      if (this.error) {
        reject(this.error);
        return;
      }
      const req = { body, resolve, reject };
      const ms = this.client.requestTimeoutMs;
      if (ms > 0) req.timer = setTimeout(() => this.expire(req, ms), ms);
      if (this.state === 'joined' && this.client.connected) this.client.send(req);
      else this.queue.push(req);
    });
  }

  expire(req, ms) {
    let waitedFor = "the server's answer";
    const i = this.queue.indexOf(req);
    if (i >= 0) {
      this.queue.splice(i, 1);
      waitedFor = this.client.connected ? `the join of room ${this.name}` : `a connection (${this.client.state})`;
    } else if (req.id !== undefined) {
      this.client.pending.delete(req.id);
    }
    settle(req, 'reject', new RoomdError('timeout', `timed out after ${ms / 1000} s waiting for ${waitedFor}`));
  }

  // publish sends any JSON value; it resolves with {seq} once the server
  // has accepted and ordered it, and rejects with a RoomdError otherwise.
  // Made before the room is joined, it waits for the join.
  async publish(data) {
    const ack = await this.request({ op: 'publish', room: this.name, data });
    return { seq: ack.seq };
  }

  leave() {
    if (this.error) return Promise.resolve();
    const wasJoined = this.state === 'joined' && this.client.connected;
    this.end('left', new RoomdError('left', `room ${this.name} was left`));
    if (!wasJoined) return Promise.resolve();
    return new Promise((resolve, reject) => this.client.send({ body: { op: 'leave', room: this.name }, resolve, reject })).then(
      () => {},
      () => {},
    );
  }
}
