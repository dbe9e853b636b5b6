// roomd.js: the browser SDK for roomd's client protocol v1 (roomd.v1.json).
// A plain ES module: no build step, no dependencies.
//
//   import { connect } from '/v1/roomd.js';
//   const client = connect('ws://localhost:8080/ws', { token, onState });
//   const room = client.join('lobby', { onMessage, onPresence });
//   await room.publish({ text: 'hi' });   // settles with the server's ack
//   room.leave();  client.close();
//
// The client reconnects by itself with exponential backoff and jitter,
// rejoins its rooms and resumes each from the last sequence it saw, so no
// message is silently lost: when the server's history no longer reaches
// back, the room's onGap is called and it rejoins from now. It does not
// reconnect after a terminal close: kicked (4000), unauthorized (4401),
// forbidden (4403).

export const PROTOCOL = 'roomd.v1.json';

// Close codes after which reconnecting would not help.
export const TERMINAL_CLOSE_CODES = { 4000: 'kicked', 4401: 'unauthorized', 4403: 'forbidden' };

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10000;

// RoomdError is how a request fails: code is one of the protocol's stable
// error codes (or 'disconnected' when the connection dropped first).
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
//                detail has {code, reason, attempt, delayMs} where known
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
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.rooms = new Map(); // name -> Room
    this.pending = new Map(); // request id -> {resolve, reject}
    this.nextID = 1;
    this.attempt = 0;
    this.state = 'idle';
    this.clientId = '';
    this.userId = '';
    this.stopped = false;
    this.open();
  }

  open() {
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this.attempt });
    const ws = new this.WebSocket(this.url.toString(), PROTOCOL);
    this.ws = ws;
    ws.onmessage = (e) => this.onFrame(e.data);
    ws.onclose = (e) => this.onClose(ws, e.code, e.reason);
  }

  setState(state, detail = {}) {
    this.state = state;
    if (this.options.onState) this.options.onState(state, detail);
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
        this.clientId = f.clientId;
        this.userId = f.userId;
        this.attempt = 0;
        this.setState('open', { clientId: f.clientId, userId: f.userId });
        for (const room of this.rooms.values()) room.sendJoin();
        break;
      case 'ack':
      case 'error': {
        const p = this.pending.get(f.id);
        if (!p) break;
        this.pending.delete(f.id);
        if (f.type === 'ack') p.resolve(f);
        else p.reject(new RoomdError(f.code, f.message));
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
        this.rooms.get(f.room)?.onDeleted(f.reason);
        break;
      case 'kicked':
        this.kickReason = f.reason;
        break;
    }
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.failPending('disconnected', 'the connection closed before the server answered');
    for (const room of this.rooms.values()) room.joined = false;
    const terminal = TERMINAL_CLOSE_CODES[code];
    if (this.stopped) {
      this.setState('closed', { code, reason });
      return;
    }
    if (terminal) {
      this.stopped = true;
      this.setState(terminal, { code, reason: reason || this.kickReason || '' });
      return;
    }
    this.attempt++;
    // Full jitter: a random delay up to an exponentially growing cap, so
    // that many clients dropped at once do not come back at once.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt, 10));
    const delayMs = Math.round(cap / 2 + Math.random() * cap / 2);
    this.setState('reconnecting', { code, reason, attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => this.open(), delayMs);
  }

  failPending(code, message) {
    for (const p of this.pending.values()) p.reject(new RoomdError(code, message));
    this.pending.clear();
  }

  request(body) {
    const id = String(this.nextID++);
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== 1 || this.state !== 'open') {
        reject(new RoomdError('disconnected', 'not connected'));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...body, id }));
    });
  }

  // join returns a Room at once; it is (re)joined whenever the connection
  // is open. handlers: onMessage(msg), onPresence(event, members),
  // onJoined(ack), onGap(), onDeleted(reason), onError(err).
  join(name, handlers = {}) {
    let room = this.rooms.get(name);
    if (room) return room;
    room = new Room(this, name, handlers);
    this.rooms.set(name, room);
    if (this.state === 'open') room.sendJoin();
    return room;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'bye');
  }
}

function decodeMessage(f) {
  const msg = { room: f.room, seq: f.seq || 0, from: f.from, time: f.time, data: f.data };
  if (f.binary !== undefined) {
    msg.binary = Uint8Array.from(atob(f.binary), (c) => c.charCodeAt(0));
  }
  return msg;
}

class Room {
  constructor(client, name, handlers) {
    this.client = client;
    this.name = name;
    this.handlers = handlers;
    this.lastSeq = 0;
    this.epoch = '';
    this.members = new Map(); // clientId -> {clientId, userId}
    this.joined = false;
    this.left = false;
  }

  sendJoin() {
    const req = { op: 'join', room: this.name };
    const resuming = this.epoch !== '';
    if (resuming) {
      req.since = this.lastSeq;
      req.epoch = this.epoch;
    }
    this.client.request(req).then(
      (ack) => {
        this.joined = true;
        this.epoch = ack.epoch;
        // A fresh join starts at the room's current sequence; a resumed
        // one keeps its own, and the replayed messages that follow the
        // ack move it on.
        if (!resuming) this.lastSeq = ack.seq || 0;
        this.members = new Map((ack.members || []).map((m) => [m.clientId, m]));
        this.handlers.onJoined?.(ack);
        this.handlers.onPresence?.({ event: 'members' }, [...this.members.values()]);
      },
      (err) => {
        if (err.code === 'gap') {
          // History no longer reaches back: say so, then start from now.
          this.epoch = '';
          this.lastSeq = 0;
          this.handlers.onGap?.();
          if (!this.left && this.client.state === 'open') this.sendJoin();
          return;
        }
        if (err.code !== 'disconnected') this.handlers.onError?.(err);
      },
    );
  }

  onMessage(f) {
    if (f.seq && f.seq <= this.lastSeq) return; // already seen (replay overlap)
    if (f.seq) this.lastSeq = f.seq;
    this.handlers.onMessage?.(decodeMessage(f));
  }

  onPresence(f) {
    if (f.event === 'joined') this.members.set(f.clientId, { clientId: f.clientId, userId: f.userId });
    else this.members.delete(f.clientId);
    this.handlers.onPresence?.(f, [...this.members.values()]);
  }

  onDeleted(reason) {
    this.joined = false;
    this.client.rooms.delete(this.name);
    this.handlers.onDeleted?.(reason);
  }

  // publish sends any JSON value; it resolves with {seq} once the server
  // has accepted and ordered it, and rejects with a RoomdError otherwise.
  async publish(data) {
    const ack = await this.client.request({ op: 'publish', room: this.name, data });
    return { seq: ack.seq };
  }

  leave() {
    this.left = true;
    this.client.rooms.delete(this.name);
    if (this.joined) return this.client.request({ op: 'leave', room: this.name }).catch(() => {});
    return Promise.resolve();
  }
}
