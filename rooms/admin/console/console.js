// roomd's admin console. Everything it shows comes from the REST API of the
// listener that served it (/v1/...): rooms and their member counts polled
// every two seconds while the tab is visible, the selected room's members,
// its live events (WatchRoom's stream of JSON lines), nodes and bans. It
// writes nothing anywhere but the DOM, and data only ever as text.

const POLL_MS = 2000;
const PAGE_SIZE = 1000; // the API's largest page: beyond it, the page says so
const MAX_EVENTS = 500; // lines the event log keeps
const OK_BANNER_MS = 5000;

// The admin token, once the user has typed it: kept in this variable only,
// never in storage, a cookie or the URL, so it is gone with the tab.
let token = '';

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

// What is on screen: the overview (nodes and bans) or one room.
const view = {
  room: '', // selected room id; '' for the overview
  gen: 0, // changes with every switch, so late answers for the old view are dropped
  roomGone: false,
  names: new Map(), // client id -> user id, to name the senders of messages
};

// ---- The API ----

const codeNames = {
  1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION',
  10: 'ABORTED', 11: 'OUT_OF_RANGE', 12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE',
  15: 'DATA_LOSS', 16: 'UNAUTHENTICATED',
};

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // HTTP status; 0 when the server could not be reached
    this.code = code; // gRPC code of the API's {"code","message"} body
  }
  describe() {
    if (this.status === 0) return this.message;
    return `${this.message} (${codeNames[this.code] || 'code ' + this.code}, HTTP ${this.status})`;
  }
}

function headers() {
  return token ? { Authorization: 'Bearer ' + token } : {};
}

// errorOf reads the API's error body, {"code":...,"message":...}.
async function errorOf(resp) {
  const text = await resp.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === 'string') return new APIError(resp.status, body.code, body.message);
  } catch { /* not JSON: say what there is */ }
  return new APIError(resp.status, 0, text.trim().slice(0, 200) || resp.statusText || 'error');
}

// api makes one call and returns its decoded answer. A 401 also locks the
// page until the user gives a (new) token.
async function api(method, path, body) {
  const init = { method, headers: headers(), cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new APIError(0, 14, `Cannot reach roomd at ${location.host}: ${err.message}`);
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401) lock(err);
    throw err;
  }
  return resp.json();
}

// ---- Small DOM helpers (text only: data never becomes markup) ----

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'data') Object.assign(e.dataset, v);
    else if (k === 'text') e.textContent = v;
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined && c !== ''));
  return e;
}

// sync makes parent's children the items, in order, keeping the element of
// an item that was already there: a row under the pointer is not replaced
// by every poll, so a click on it lands.
function sync(parent, items, keyOf, make, update) {
  const old = new Map();
  for (const child of parent.children) old.set(child.dataset.key, child);
  items.forEach((item, i) => {
    const key = keyOf(item);
    let child = old.get(key);
    if (child) old.delete(key);
    else {
      child = make(item);
      child.dataset.key = key;
    }
    update(child, item);
    if (parent.children[i] !== child) parent.insertBefore(child, parent.children[i] || null);
  });
  for (const child of old.values()) child.remove();
}

function setCell(td, text, title) {
  if (td.textContent !== text) td.textContent = text;
  if (title !== undefined) td.title = title;
}

const pad = (n) => String(n).padStart(2, '0');

function clock(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === new Date().toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time.slice(0, 5)}`;
}

function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

const ago = (ts) => {
  if (!ts) return '';
  const seconds = (Date.now() - new Date(ts)) / 1000;
  return seconds < 3 ? 'just now' : span(seconds) + ' ago';
};
const fromNow = (ts) => (ts ? 'in ' + span((new Date(ts) - Date.now()) / 1000) : '');
const fullTime = (ts) => (ts ? new Date(ts).toString() : '');
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// ---- Banner: API errors stay until dismissed or replaced; successes fade ----

let bannerTimer = 0;
let bannerFromPoll = false;

function banner(kind, text, fromPoll = false) {
  clearTimeout(bannerTimer);
  bannerFromPoll = fromPoll;
  $('banner').dataset.kind = kind;
  $('banner-text').textContent = text;
  $('banner').hidden = false;
  if (kind === 'ok') bannerTimer = setTimeout(hideBanner, OK_BANNER_MS);
}

function hideBanner() {
  clearTimeout(bannerTimer);
  $('banner').hidden = true;
  bannerFromPoll = false;
}

function failed(err) {
  if (err instanceof APIError && err.status === 401) return; // the token form says it
  banner('error', err instanceof APIError ? err.describe() : String(err));
}

$('banner-close').addEventListener('click', hideBanner);

// ---- The token ----

let locked = false;

// lock stops everything and asks for the token; err says why when a token
// was given and refused.
function lock(err) {
  const wasLocked = locked;
  locked = true;
  stopPolling();
  stopWatch();
  if ($('ban-dialog').open) $('ban-dialog').close();
  $('app').hidden = true;
  $('forget').hidden = true;
  hideBanner();
  setLive('locked', 'token needed');
  $('token-form').hidden = false;
  const error = $('token-error');
  if (token && err) {
    error.textContent = `The server did not accept this token: ${err.message}.`;
    error.hidden = false;
  } else if (!wasLocked) {
    error.hidden = true;
  }
  token = '';
  $('token').focus();
}

function unlock() {
  locked = false;
  $('token-form').hidden = true;
  $('token-error').hidden = true;
  $('app').hidden = false;
  $('forget').hidden = !token;
  if (view.room) startWatch(view.room);
  refreshNow();
}

$('token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const typed = $('token').value.trim();
  $('token').value = ''; // not even the DOM keeps it
  if (!/^[\x21-\x7e]+$/.test(typed)) {
    $('token-error').textContent = 'An admin token is visible ASCII without spaces.';
    $('token-error').hidden = false;
    return;
  }
  token = typed;
  $('token-submit').disabled = true;
  try {
    await api('GET', '/v1/rooms?pageSize=1');
    unlock();
  } catch (err) {
    if (err.status !== 401) {
      $('token-error').textContent = err.describe();
      $('token-error').hidden = false;
      token = '';
    }
  } finally {
    $('token-submit').disabled = false;
  }
});

$('forget').addEventListener('click', () => {
  token = '';
  lock();
});

// ---- Polling ----

let pollTimer = 0;
let polling = false; // a refresh is in progress
let again = false; // another was asked for meanwhile

function setLive(state, text) {
  $('live').dataset.state = state;
  $('live').textContent = text;
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = 0;
}

// refreshNow refreshes at once (after the refresh in progress, if any),
// then every POLL_MS while the tab is visible.
function refreshNow() {
  if (polling) {
    again = true;
    return;
  }
  stopPolling();
  poll();
}

async function poll() {
  pollTimer = 0;
  if (locked) return;
  if (document.hidden) {
    setLive('paused', 'paused while hidden');
    return;
  }
  polling = true;
  again = false;
  try {
    await refresh();
    $('app').hidden = false; // shown once the API has answered: no flash before the token form
    setLive('live', 'live');
    if (bannerFromPoll) hideBanner();
  } catch (err) {
    if (!locked) {
      setLive('error', err.status === 0 ? 'unreachable' : 'error');
      banner('error', err instanceof APIError ? err.describe() : String(err), true);
    }
  } finally {
    polling = false;
  }
  if (!locked && !document.hidden) pollTimer = setTimeout(poll, again ? 0 : POLL_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && !locked) refreshNow();
});

async function refresh() {
  const gen = view.gen;
  const rooms = api('GET', `/v1/rooms?pageSize=${PAGE_SIZE}`);
  const detail = view.room ? refreshRoom(view.room, gen) : refreshOverview(gen);
  const [list] = await Promise.all([rooms, detail]);
  renderRooms(list);
}

// ---- Rooms (the sidebar) ----

let lastRooms = { rooms: [] };

function renderRooms(list) {
  lastRooms = list;
  const filter = $('room-filter').value.trim().toLowerCase();
  const rooms = (list.rooms || []).filter((r) => !filter || r.roomId.toLowerCase().includes(filter));
  sync($('rooms'), rooms, (r) => r.roomId, (r) => {
    const li = el('li', { tabIndex: 0, data: { room: r.roomId } },
      el('span', { class: 'name', text: r.roomId }),
      el('span', { class: 'count' }));
    li.setAttribute('role', 'button');
    li.addEventListener('click', () => selectRoom(r.roomId));
    li.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        selectRoom(r.roomId);
      }
    });
    return li;
  }, (li, r) => {
    const n = r.clientCount || 0;
    setCell(li.querySelector('.count'), String(n));
    li.title = `${r.roomId}: ${plural(n, 'member', 'members')}` + (r.autoCreated ? '; made by a client joining, it goes with its last member' : '');
    li.classList.toggle('occupied', n > 0);
    li.classList.toggle('selected', r.roomId === view.room);
  });
  const total = (list.rooms || []).length;
  $('room-total').textContent = `(${total}${list.nextPageToken ? '+' : ''})`;
  const notes = [];
  if (list.nextPageToken) notes.push(`Showing the first ${PAGE_SIZE} rooms by id.`);
  if (list.partial) notes.push(`Not answering: ${(list.unreachableNodes || []).join(', ')}.`);
  $('rooms-note').textContent = notes.join(' ');
  $('rooms-note').hidden = notes.length === 0;
}

$('room-filter').addEventListener('input', () => renderRooms(lastRooms));

$('create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const roomId = $('create-id').value.trim();
  if (!roomId) return;
  $('create').disabled = true;
  try {
    await api('POST', '/v1/rooms', { roomId });
    $('create-id').value = '';
    banner('ok', `Created room ${roomId}.`);
    selectRoom(roomId);
  } catch (err) {
    failed(err);
  } finally {
    $('create').disabled = false;
  }
});

// ---- Switching views ----

function selectRoom(roomId) {
  if (roomId === view.room) return;
  view.room = roomId;
  view.gen++;
  view.roomGone = false;
  view.names = new Map();
  history.replaceState(null, '', '#room=' + enc(roomId));
  $('overview').hidden = true;
  $('room').hidden = false;
  $('nav-overview').classList.remove('selected');
  $('room-title').textContent = roomId;
  $('room-facts').replaceChildren();
  $('members').tBodies[0].replaceChildren();
  $('members-empty').hidden = true;
  $('member-count').textContent = '';
  $('members-note').textContent = '';
  $('events').replaceChildren();
  disarmDelete();
  for (const li of $('rooms').children) li.classList.toggle('selected', li.dataset.room === roomId);
  startWatch(roomId);
  refreshNow();
}

function showOverview() {
  view.room = '';
  view.gen++;
  stopWatch();
  history.replaceState(null, '', location.pathname);
  $('room').hidden = true;
  $('overview').hidden = false;
  $('nav-overview').classList.add('selected');
  for (const li of $('rooms').children) li.classList.remove('selected');
  refreshNow();
}

$('nav-overview').addEventListener('click', showOverview);

// ---- One room ----

async function refreshRoom(roomId, gen) {
  const path = `/v1/rooms/${enc(roomId)}`;
  const [got, clients] = await Promise.all([
    api('GET', path).catch((err) => {
      if (err.status === 404) return null;
      throw err;
    }),
    api('GET', `${path}/clients?pageSize=${PAGE_SIZE}`).catch((err) => {
      if (err.status === 404) return null;
      throw err;
    }),
  ]);
  if (gen !== view.gen) return;
  renderRoom(got && got.room, clients);
}

function fact(strong, rest) {
  return el('li', {}, strong === '' ? null : el('b', { text: strong }), rest);
}

// The room's last seq moves with every message: the event log keeps it
// current between polls. (A string: uint64 in JSON.)
function seqFact(seq) {
  const li = fact('seq ', '');
  li.id = 'room-seq';
  li.lastChild.after(String(seq || 0));
  return li;
}

function showSeq(seq) {
  const li = $('room-seq');
  if (!li || seq === undefined) return;
  const shown = BigInt(li.lastChild.textContent || '0');
  if (BigInt(seq) > shown) li.lastChild.textContent = String(seq);
}

function renderRoom(room, clients) {
  const gone = !room;
  if (gone !== view.roomGone) {
    view.roomGone = gone;
    if (gone) stopWatch('The room no longer exists.');
  }
  if (!gone && !watch) startWatch(view.room, true);
  $('publish').disabled = gone;
  $('publish-text').disabled = gone;
  $('delete-room').disabled = gone;
  if (gone) {
    $('room-facts').replaceChildren(fact('', 'no longer exists'));
    $('members').tBodies[0].replaceChildren();
    $('member-count').textContent = '';
    $('members-note').textContent = '';
    $('members-empty').textContent = 'This room no longer exists.';
    $('members-empty').hidden = false;
    return;
  }
  const created = fact('created ', clock(room.createTime));
  created.title = fullTime(room.createTime);
  const facts = [
    fact(String(room.clientCount || 0), room.clientCount === 1 ? ' member' : ' members'),
    room.maxClients ? fact('max ', String(room.maxClients)) : fact('', 'no member limit'),
    fact('echo ', room.echo ? 'on' : 'off'),
    fact('presence ', room.presence ? 'on' : 'off'),
    fact('history ', String(room.historySize || 0)),
    seqFact(room.lastSeq),
    fact('', room.autoCreated ? 'made by joining' : 'made through the API'),
    created,
  ];
  for (const [k, v] of Object.entries(room.metadata || {})) facts.push(fact(k + ' ', v));
  $('room-facts').replaceChildren(...facts);

  const list = (clients && clients.clients) || [];
  for (const c of list) if (c.userId) view.names.set(c.clientId, c.userId);
  // By user, as a person looks for them; those without one last.
  const byUser = [...list].sort((a, b) => (!a.userId - !b.userId) || (a.userId || '').localeCompare(b.userId || '') || a.clientId.localeCompare(b.clientId));
  sync($('members').tBodies[0], byUser, (c) => c.clientId, memberRow, updateMember);
  $('member-count').textContent = `(${room.clientCount || 0})`;
  $('members-empty').textContent = 'Nobody is in this room.';
  $('members-empty').hidden = list.length > 0;
  const notes = [];
  if (clients && clients.nextPageToken) notes.push(`showing the first ${list.length}`);
  if (clients && clients.partial) notes.push(`not answering: ${(clients.unreachableNodes || []).join(', ')}`);
  $('members-note').textContent = notes.join('; ');
}

function memberRow(c) {
  const kick = el('button', { type: 'button', class: 'small secondary kick', text: 'Kick', title: 'Close this connection with 4000' });
  const ban = el('button', { type: 'button', class: 'small danger ban', text: 'Kick + ban…' });
  const tr = el('tr', { data: { clientId: c.clientId } },
    el('td', {}, el('span', { class: 'user' }), el('span', { class: 'client sub mono' })),
    el('td', {}, el('span', { class: 'node' }), el('span', { class: 'addr sub mono' })),
    el('td', { class: 'since' }), el('td', { class: 'actions' }, kick, ban));
  kick.addEventListener('click', () => kickClient(tr.member, kick));
  ban.addEventListener('click', () => openBan(tr.member));
  return tr;
}

function updateMember(tr, c) {
  tr.member = c;
  tr.dataset.userId = c.userId || '';
  const user = tr.querySelector('.user');
  setCell(user, c.userId || '(no user id)');
  user.classList.toggle('muted', !c.userId);
  setCell(tr.querySelector('.client'), c.clientId);
  setCell(tr.querySelector('.node'), c.node || '');
  setCell(tr.querySelector('.addr'), c.remoteAddr || '');
  setCell(tr.querySelector('.since'), clock(c.connectTime), `${fullTime(c.connectTime)} (${ago(c.connectTime)})`);
  const ban = tr.querySelector('.ban');
  ban.disabled = !c.userId;
  ban.title = c.userId ? `Kick and keep ${c.userId} out of this room for a while` : 'A client without a user id cannot be banned';
}

async function kickClient(c, button) {
  button.disabled = true;
  try {
    await api('POST', `/v1/clients/${enc(c.clientId)}:kick`, {});
    banner('ok', `Kicked ${c.userId || c.clientId} (${c.clientId}).`);
    refreshNow();
  } catch (err) {
    failed(err);
    button.disabled = false;
  }
}

// The ban dialog: reason and duration, for one member.
let banning = null;

function openBan(c) {
  banning = c;
  $('ban-user').textContent = c.userId;
  $('ban-what').textContent = `Closes ${c.clientId} with 4000 and keeps ${c.userId} out of ${c.roomId || view.room}; their other connections in the room are closed too.`;
  $('ban-reason').value = '';
  $('ban-error').hidden = true;
  $('ban-dialog').showModal();
  $('ban-reason').focus();
}

$('ban-cancel').addEventListener('click', () => $('ban-dialog').close());

$('ban-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const c = banning;
  if (!c) return;
  const banSeconds = Number($('ban-duration').value);
  $('ban-confirm').disabled = true;
  try {
    const resp = await api('POST', `/v1/clients/${enc(c.clientId)}:kick`, { reason: $('ban-reason').value, banSeconds });
    $('ban-dialog').close();
    const until = resp.ban && resp.ban.expireTime;
    banner('ok', `Kicked ${c.userId} and banned them from ${c.roomId || view.room}` + (until ? ` until ${clock(until)}.` : '.'));
    refreshNow();
  } catch (err) {
    if (err.status === 401) $('ban-dialog').close();
    $('ban-error').textContent = err instanceof APIError ? err.describe() : String(err);
    $('ban-error').hidden = false;
  } finally {
    $('ban-confirm').disabled = false;
  }
});

$('publish-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('publish-text').value;
  if (!text || !view.room) return;
  $('publish').disabled = true;
  try {
    const resp = await api('POST', `/v1/rooms/${enc(view.room)}/messages`, { text });
    $('publish-text').value = '';
    refreshNow(); // the room's last seq
    const n = resp.recipientCount || 0;
    banner('ok', `Published to ${view.room}: seq ${resp.seq}, handed to ${plural(n, 'member', 'members')} on this node.`);
  } catch (err) {
    failed(err);
  } finally {
    $('publish').disabled = view.roomGone;
  }
});

// Deleting takes two clicks: the first arms the button for a few seconds.
let armTimer = 0;

function disarmDelete() {
  clearTimeout(armTimer);
  $('delete-room').classList.remove('armed');
  $('delete-room').textContent = 'Delete room';
}

$('delete-room').addEventListener('click', async () => {
  const button = $('delete-room');
  const roomId = view.room;
  if (!button.classList.contains('armed')) {
    button.classList.add('armed');
    button.textContent = 'Click again to delete';
    armTimer = setTimeout(disarmDelete, 4000);
    return;
  }
  disarmDelete();
  button.disabled = true;
  try {
    const resp = await api('DELETE', `/v1/rooms/${enc(roomId)}`);
    banner('ok', `Deleted ${roomId}: ${plural(resp.removedCount || 0, 'member', 'members')} removed, ${resp.disconnectedCount || 0} of them disconnected (4001).`);
    showOverview();
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = view.roomGone;
  }
});

// ---- The event log: WatchRoom over REST, one JSON object per line ----

let watch = null; // {roomId, controller, deleted}
let lastWatchEnd = ''; // why the last watch ended

const leaveCauses = {
  LEAVE_CAUSE_LEFT: 'left the room',
  LEAVE_CAUSE_CLOSED_BY_CLIENT: 'closed the connection',
  LEAVE_CAUSE_DROPPED: 'was dropped',
  LEAVE_CAUSE_KICKED: 'was kicked',
  LEAVE_CAUSE_ROOM_DELETED: 'left: room deleted',
  LEAVE_CAUSE_SHUTDOWN: 'left: server shutting down',
};

function setWatch(state, text) {
  $('watch').dataset.state = state;
  $('watch').textContent = text;
}

// stopWatch ends the watch of the room shown, with a note in the log if why.
function stopWatch(why) {
  if (!watch) return;
  watch.controller.abort();
  watch = null;
  setWatch('ended', 'not live');
  if (why) logNote(why);
}

// startWatch watches roomId; again says it is a new watch after one ended.
function startWatch(roomId, again = false) {
  if (watch) watch.controller.abort();
  const w = { roomId, controller: new AbortController() };
  watch = w;
  setWatch('off', 'connecting…');
  runWatch(w, again);
}

async function runWatch(w, again) {
  const current = () => watch === w;
  let why = '';
  try {
    const resp = await fetch(`/v1/rooms/${enc(w.roomId)}/events`, { headers: headers(), signal: w.controller.signal, cache: 'no-store' });
    if (!resp.ok) {
      const err = await errorOf(resp);
      if (resp.status === 401) lock(err);
      throw err;
    }
    if (!current()) return;
    setWatch('live', 'live');
    lastWatchEnd = '';
    if (again) logNote('Watching again: what happened while the watch was down is not shown.');
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line || !current()) continue;
        const msg = JSON.parse(line);
        if (msg.error) why = `The watch was ended: ${msg.error.message}.`;
        else if (msg.result) {
          if (msg.result.roomDeleted) w.deleted = true;
          showEvent(msg.result);
        }
      }
    }
    if (!why) why = 'The watch ended.';
  } catch (err) {
    if (w.controller.signal.aborted) return;
    // A missing room is what the room pane says; no need to repeat it.
    if (err.status === 404) w.deleted = true;
    why = `The watch ended: ${err instanceof APIError ? err.describe() : err.message}.`;
  }
  if (!current() || locked) return;
  watch = null;
  setWatch('ended', 'not live');
  // Said once, not at every attempt to start it again.
  if (!w.deleted && !view.roomGone && why !== lastWatchEnd) logNote(why + ' It starts again with the next refresh.');
  lastWatchEnd = why;
}

function logLine(kind, time, ...text) {
  const log = $('events');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const li = el('li', { data: { kind } },
    el('span', { class: 'time', text: time ? clock(time) : '', title: fullTime(time) }),
    el('span', { class: 'text' }, ...text));
  log.append(li);
  while (log.children.length > MAX_EVENTS) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
  return li;
}

function logNote(text) {
  logLine('note', new Date().toISOString(), text);
}

const who = (c) => (c && (c.userId || c.clientId)) || '?';

function showEvent(ev) {
  if (ev.clientJoined) {
    const c = ev.clientJoined.client || {};
    if (c.userId) view.names.set(c.clientId, c.userId);
    logLine('joined', ev.time, el('span', { class: 'who', text: who(c) }),
      `joined on ${c.node || '?'} from ${c.remoteAddr || '?'}`).title = c.clientId;
    refreshNow();
  } else if (ev.clientLeft) {
    const l = ev.clientLeft;
    const c = l.client || {};
    const how = leaveCauses[l.cause] || 'left';
    // The reason, unless the cause already says it ("room deleted").
    const reason = l.reason && !how.includes(l.reason) ? `“${l.reason}”` : '';
    const detail = [l.closeCode ? String(l.closeCode) : '', reason].filter(Boolean).join(' ');
    logLine('left', ev.time, el('span', { class: 'who', text: who(c) }), how + (detail ? ` (${detail})` : '')).title = c.clientId;
    refreshNow();
  } else if (ev.messagePublished) {
    const m = ev.messagePublished;
    const from = m.fromClientId ? (view.names.get(m.fromClientId) || m.fromClientId) : 'admin API';
    let text = m.text;
    if (text === undefined) {
      const b64 = m.binary || '';
      const bytes = Math.floor(b64.length * 3 / 4) - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0);
      text = `[${plural(bytes, 'byte', 'bytes')} of binary]`;
    }
    logLine('message', ev.time, el('span', { class: 'who', text: from + ':' }), text).title =
      `seq ${m.seq}, handed to ${plural(m.recipientCount || 0, 'member', 'members')} on this node`;
    showSeq(m.seq);
  } else if (ev.roomDeleted) {
    logLine('deleted', ev.time, 'The room was deleted.');
    refreshNow();
  }
}

$('clear-events').addEventListener('click', () => $('events').replaceChildren());

// ---- Overview: nodes and bans ----

async function refreshOverview(gen) {
  const [nodes, bans] = await Promise.all([
    api('GET', '/v1/nodes'),
    api('GET', `/v1/bans?pageSize=${PAGE_SIZE}`),
  ]);
  if (gen !== view.gen) return;
  renderNodes(nodes);
  renderBans(bans);
}

function renderNodes(resp) {
  const nodes = resp.nodes || [];
  sync($('nodes').tBodies[0], nodes, (n) => n.name, () => el('tr', {},
    el('td', { class: 'name' }), el('td', { class: 'public mono' }), el('td', { class: 'admin mono' }),
    el('td', { class: 'num clients' }), el('td', { class: 'started' }), el('td', { class: 'beat' }), el('td', { class: 'version mono' }),
  ), (tr, n) => {
    tr.dataset.node = n.name;
    setCell(tr.querySelector('.name'), n.name);
    setCell(tr.querySelector('.public'), n.publicUrl || '');
    setCell(tr.querySelector('.admin'), n.adminHttpAddr || '');
    setCell(tr.querySelector('.clients'), String(n.clientCount || 0));
    setCell(tr.querySelector('.started'), clock(n.startTime), fullTime(n.startTime));
    setCell(tr.querySelector('.beat'), ago(n.lastHeartbeat), fullTime(n.lastHeartbeat));
    setCell(tr.querySelector('.version'), n.version || '');
  });
  const notes = [plural(nodes.length, 'node', 'nodes')];
  if (resp.partial) notes.push(`not answering: ${(resp.unreachableNodes || []).join(', ')}`);
  $('nodes-note').textContent = notes.join('; ');
}

function renderBans(resp) {
  const bans = resp.bans || [];
  sync($('bans').tBodies[0], bans, (b) => b.userId + '\n' + b.roomId, (b) => {
    const where = b.roomId ? `from ${b.roomId}` : 'from every room';
    const lift = el('button', { type: 'button', class: 'small secondary lift', text: 'Lift', title: `Lift this ban of ${b.userId} (${where})` });
    const tr = el('tr', { data: { userId: b.userId, roomId: b.roomId } },
      el('td', { class: 'user' }), el('td', { class: 'room' }), el('td', { class: 'reason' }),
      el('td', { class: 'since' }), el('td', { class: 'until' }), el('td', { class: 'actions' }, lift));
    lift.addEventListener('click', () => liftBan(b.userId, b.roomId, lift));
    return tr;
  }, (tr, b) => {
    setCell(tr.querySelector('.user'), b.userId);
    const room = tr.querySelector('.room');
    setCell(room, b.roomId || 'every room');
    room.classList.toggle('muted', !b.roomId);
    setCell(tr.querySelector('.reason'), b.reason || '');
    setCell(tr.querySelector('.since'), clock(b.createTime), fullTime(b.createTime));
    setCell(tr.querySelector('.until'), `${clock(b.expireTime)} (${fromNow(b.expireTime)})`, fullTime(b.expireTime));
  });
  $('bans-empty').hidden = bans.length > 0;
  $('bans-note').textContent = bans.length ? plural(bans.length, 'ban', 'bans') + (resp.nextPageToken ? ` (the first ${PAGE_SIZE})` : '') : '';
}

// liftBan lifts one ban: roomId's, or ('') the one from every room ("*"
// to the API, whose empty room id would lift them all).
async function liftBan(userId, roomId, button) {
  button.disabled = true;
  try {
    await api('DELETE', `/v1/bans/${enc(userId)}?roomId=${enc(roomId || '*')}`);
    banner('ok', `Lifted the ban of ${userId} from ${roomId || 'every room'}.`);
    refreshNow();
  } catch (err) {
    failed(err);
    button.disabled = false;
  }
}

// ---- Start ----

$('where').textContent = location.host;
{
  const m = /^#room=(.+)$/.exec(location.hash);
  let roomId = '';
  try {
    roomId = m ? decodeURIComponent(m[1]) : '';
  } catch { /* a malformed hash: start on the overview */ }
  if (roomId) selectRoom(roomId);
  else showOverview();
}
