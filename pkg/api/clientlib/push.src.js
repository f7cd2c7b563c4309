// pushcluster's browser library: PushClient, served by every node as
// /push.js (a classic script), /push.mjs (an ES module) and /push.d.ts.
// This is the source; go generate ./pkg/api/clientlib minifies it with
// esbuild into the files the node serves.
//
// One PushClient holds one connection: WebSocket, else an event stream
// read with fetch, else long polling, falling back when one does not get
// through and climbing back up later. Every channel resumes from the last
// position it delivered, on whatever node the connection reaches, so a
// handler gets every message once, in order, or a gap. With shared: true
// the tabs of an origin elect a leader (Web Locks) that holds the only
// connection and relays to the others (BroadcastChannel).

const TRANSPORTS = ['websocket', 'sse', 'poll'];
const DEFAULTS = {
  transports: TRANSPORTS,
  shared: false,
  connectTimeout: 5000, // a transport that shows no welcome in this long is not getting through
  stallTimeout: 45000, // a connection that shows nothing, not even a heartbeat, in this long is replaced
  upgradeAfter: 60000, // on a fallback, try the better transports again after this long
  pollWait: 25000,
  minBackoff: 250,
  maxBackoff: 15000,
};

// Entry IDs are "<ms>-<seq>", decimal: compare them as numbers of any size.
function cmpNum(a, b) {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
function compareIDs(a, b) {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  return cmpNum(am, bm) || cmpNum(as, bs);
}

// The name of a set of channels in a cursor: FNV-1a 32 over the names,
// each followed by a zero byte, as 8 hex digits.
function channelSetHash(channels) {
  let h = 0x811c9dc5;
  const enc = new TextEncoder();
  for (const c of channels) {
    for (const b of [...enc.encode(c), 0]) {
      h ^= b;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h.toString(16).padStart(8, '0');
}

// A cursor: the position of one channel, or "<hash>:<id>,<id>,…" of
// several in sorted order.
function encodeCursor(channels, pos) {
  if (channels.length === 1) return pos[channels[0]];
  return channelSetHash(channels) + ':' + channels.map((c) => pos[c]).join(',');
}
function decodeCursor(s, channels) {
  if (channels.length === 1) return [s];
  const i = s.indexOf(':');
  return i < 0 ? null : s.slice(i + 1).split(',');
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal && signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

class Failure extends Error {
  constructor(message, { early = false, fatal = false, status = 0, code = '' } = {}) {
    super(message);
    this.early = early; // before the welcome: the transport did not get through
    this.fatal = fatal; // the node asked not to come back
    this.status = status;
    this.code = code;
  }
}

async function readError(resp) {
  try {
    const b = await resp.json();
    return new Failure(b.error.message, { status: resp.status, code: b.error.code, fatal: resp.status === 400 || resp.status === 403 });
  } catch {
    return new Failure('HTTP ' + resp.status, { status: resp.status });
  }
}

// Engine holds the one connection for a set of channels, and their
// positions.
class Engine {
  constructor(url, opts, sink) {
    this.url = url;
    this.opts = opts;
    this.sink = sink; // {message, gap, direct, state, error}
    this.pos = {}; // channel -> last position delivered (undefined: from now)
    this.session = opts.session || '';
    this.level = 0;
    this.conn = null;
    this.refs = new Map(); // publish ref -> {resolve, reject}
    this.subRefs = new Map(); // subscribe ref -> channel
    this.nextRef = 1;
    this.stopped = false;
    this.wake = null;
    this.run();
  }

  channels() {
    return Object.keys(this.pos).sort();
  }

  // setChannels makes the connection's channels those of want (channel ->
  // position or undefined), keeping the positions it has.
  setChannels(want) {
    const before = this.channels().join('\n');
    for (const c of Object.keys(this.pos)) if (!(c in want)) delete this.pos[c];
    for (const [c, p] of Object.entries(want)) if (!(c in this.pos)) this.pos[c] = p;
    if (this.channels().join('\n') === before) return;
    if (this.conn && this.conn.update) this.conn.update();
    else if (this.conn) this.conn.restart();
    if (this.wake) this.wake();
  }

  stop() {
    this.stopped = true;
    if (this.conn) this.conn.close();
    if (this.wake) this.wake();
    for (const { reject } of this.refs.values()) reject(new Failure('closed'));
  }

  async run() {
    let attempt = 0;
    while (!this.stopped) {
      if (this.channels().length === 0) {
        await new Promise((r) => (this.wake = r));
        this.wake = null;
        continue;
      }
      const transports = this.opts.transports;
      const name = transports[Math.min(this.level, transports.length - 1)];
      this.sink.state({ state: 'connecting', transport: name });
      let connected = false;
      try {
        await this.connect(name, () => {
          connected = true;
          attempt = 0;
        });
      } catch (e) {
        if (this.stopped) break;
        if (e.fatal) {
          // Refused for good (a channel not allowed, a disconnect): no
          // reconnection mends it.
          this.sink.state({ state: 'disconnected', transport: name, error: e });
          this.sink.error(e);
          return this.stop();
        } else if (e.early && this.level < transports.length - 1) {
          this.level++; // the transport did not get through: the next, at once
          continue;
        }
      }
      if (this.stopped) break;
      this.sink.state({ state: 'disconnected', transport: name });
      if (connected && this.climb) {
        this.climb = false;
        this.level = 0;
        continue;
      }
      const cap = Math.min(this.opts.maxBackoff, this.opts.minBackoff * 2 ** attempt++);
      await sleep(Math.random() * cap);
    }
  }

  // credential returns the query parameters and headers of a connection:
  // a fresh ticket, or the token.
  async credential(headers) {
    const q = new URLSearchParams();
    const { ticket, token } = this.opts;
    if (ticket) q.set('ticket', await ticket());
    else if (token) {
      const t = typeof token === 'function' ? await token() : token;
      if (headers) headers.Authorization = 'Bearer ' + t;
      else q.set('token', t);
    }
    if (this.session) q.set('session', this.session);
    return q;
  }

  // positions makes sure every channel has a position when any has one,
  // for a cursor: a channel that has none gets its stream's newest ID.
  async positions() {
    const chs = this.channels();
    if (!chs.some((c) => this.pos[c])) return null;
    for (const c of chs) {
      if (this.pos[c]) continue;
      const headers = {};
      const q = await this.credential(headers);
      q.delete('session');
      q.set('channel', c);
      q.set('limit', '1');
      const resp = await fetch(this.url + '/api/history?' + q, { headers });
      if (!resp.ok) throw await readError(resp);
      this.pos[c] = (await resp.json()).last || '0-0';
    }
    return encodeCursor(chs, this.pos);
  }

  welcome(f, transport, connected) {
    if (f.session) this.session = f.session;
    this.client = f.client;
    connected();
    this.sink.state({ state: 'connected', transport, node: f.node, client: f.client });
    if (this.level > 0) this.upgradeTimer = setTimeout(() => ((this.climb = true), this.conn && this.conn.close()), this.opts.upgradeAfter);
  }

  // frame handles one server frame; false means it was nothing to deliver.
  frame(f) {
    switch (f.type) {
      case 'message': {
        const last = this.pos[f.channel];
        if (!(f.channel in this.pos) || (last && compareIDs(f.id, last) <= 0)) return;
        this.pos[f.channel] = f.id;
        this.sink.message({ channel: f.channel, id: f.id, event: f.event || '', data: f.data });
        return;
      }
      case 'gap':
        if (!(f.channel in this.pos)) return;
        if (f.resume) this.pos[f.channel] = f.resume;
        this.sink.gap(f);
        return;
      case 'direct':
        this.sink.direct({ id: f.id, event: f.event || '', data: f.data });
        return;
      case 'subscribed':
        this.subRefs.delete(f.ref);
        if (f.channel in this.pos && !this.pos[f.channel] && f.position) this.pos[f.channel] = f.position;
        return;
      case 'ack':
      case 'error': {
        const channel = this.subRefs.get(f.ref);
        if (channel !== undefined) {
          // A subscription refused (a channel the credential may not read):
          // the others go on.
          this.subRefs.delete(f.ref);
          delete this.pos[channel];
          return this.sink.error(Object.assign(new Failure(f.message, { code: f.code }), { channel }));
        }
        const r = f.ref !== undefined && this.refs.get(f.ref);
        if (r) {
          this.refs.delete(f.ref);
          f.type === 'ack' ? r.resolve(f.duplicate ? { id: f.id, duplicate: true } : { id: f.id }) : r.reject(new Failure(f.message, { code: f.code }));
          return;
        }
        if (f.type === 'error') {
          const e = new Failure(f.message, { code: f.code, fatal: f.code === 'forbidden' || f.code === 'disconnected' });
          if (e.fatal) throw e;
          this.sink.error(e);
        }
      }
    }
  }

  async connect(name, connected) {
    clearTimeout(this.upgradeTimer);
    const conn = { closed: false };
    this.conn = conn;
    try {
      if (name === 'websocket') await this.websocket(conn, connected);
      else if (name === 'sse') await this.stream(conn, connected);
      else await this.poll(conn, connected);
    } finally {
      clearTimeout(this.upgradeTimer);
      if (this.conn === conn) this.conn = null;
    }
  }

  websocket(conn, connected) {
    return new Promise(async (resolve, reject) => {
      let q;
      try {
        q = await this.credential(null);
      } catch (e) {
        return reject(e);
      }
      const ws = new WebSocket(this.url.replace(/^http/, 'ws') + '/ws?' + q);
      let welcomed = false;
      let stall;
      const alive = () => {
        clearTimeout(stall);
        stall = setTimeout(() => ws.close(), welcomed ? this.opts.stallTimeout : this.opts.connectTimeout);
      };
      const pinger = setInterval(() => ws.readyState === 1 && ws.send('{"type":"ping"}'), this.opts.stallTimeout / 3);
      const subscribe = (c) => {
        const ref = this.nextRef++;
        this.subRefs.set(ref, c);
        ws.send(JSON.stringify({ type: 'subscribe', channel: c, since: this.pos[c] || undefined, ref }));
      };
      const subscribed = new Set();
      conn.update = () => {
        if (!welcomed) return;
        for (const c of this.channels()) if (!subscribed.has(c)) (subscribed.add(c), subscribe(c));
        for (const c of subscribed) if (!(c in this.pos)) (subscribed.delete(c), ws.send(JSON.stringify({ type: 'unsubscribe', channel: c })));
      };
      conn.close = () => ((conn.closed = true), ws.close());
      conn.publish = (frame) => ws.send(JSON.stringify(frame));
      alive();
      ws.onmessage = (e) => {
        alive();
        let f;
        try {
          f = JSON.parse(e.data);
          if (f.type === 'welcome') {
            welcomed = true;
            this.welcome(f, 'websocket', connected);
            conn.update();
            return;
          }
          this.frame(f);
        } catch (err) {
          ws.onclose = null;
          ws.close();
          finish(err instanceof Failure ? err : new Failure(String(err)));
        }
      };
      const finish = (err) => {
        clearTimeout(stall);
        clearInterval(pinger);
        conn.publish = null;
        this.subRefs.clear();
        for (const { reject } of this.refs.values()) reject(new Failure('the connection closed first: the publish may or may not have happened'));
        this.refs.clear();
        err ? reject(err) : resolve();
      };
      ws.onclose = (e) => {
        if (e.code === 4009) return finish(new Failure('disconnected by the server', { fatal: true, code: 'disconnected' }));
        finish(welcomed || conn.closed ? null : new Failure('the WebSocket did not get through', { early: true }));
      };
    });
  }

  // stream reads an event stream with fetch: every event name, and the
  // heartbeat comments that show a quiet stream is alive.
  async stream(conn, connected) {
    const abort = new AbortController();
    conn.close = () => ((conn.closed = true), abort.abort());
    conn.restart = conn.close;
    const headers = { Accept: 'text/event-stream' };
    const q = await this.credential(headers);
    const chs = this.channels();
    for (const c of chs) q.append('channel', c);
    const cursor = await this.positions();
    if (cursor) headers['Last-Event-ID'] = cursor;
    let welcomed = false;
    let stall;
    const alive = () => {
      clearTimeout(stall);
      stall = setTimeout(() => abort.abort(), welcomed ? this.opts.stallTimeout : this.opts.connectTimeout);
    };
    alive();
    try {
      const resp = await fetch(this.url + '/sse?' + q, { headers, signal: abort.signal, cache: 'no-store' });
      if (!resp.ok) throw await readError(resp);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      let ev = { event: '', data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        alive();
        buf += value;
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          if (buf[nl] === '\r' && nl === buf.length - 1) break; // a CR that may be half of a CRLF
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (ev.data.length) welcomed = this.sseEvent(ev, chs, connected) || welcomed;
            ev = { event: '', data: [], id: ev.id };
            continue;
          }
          const i = line.indexOf(':');
          if (i === 0) continue; // a comment: the heartbeat
          const field = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? '' : line.slice(i + (line[i + 1] === ' ' ? 2 : 1));
          if (field === 'data') ev.data.push(value);
          else if (field === 'event') ev.event = value;
          else if (field === 'id' && !value.includes('\0')) ev.id = value;
        }
      }
    } catch (e) {
      if (e instanceof Failure) throw e;
      if (!welcomed && !conn.closed) throw new Failure('the event stream did not get through', { early: true });
    } finally {
      clearTimeout(stall);
    }
    if (!welcomed && !conn.closed) throw new Failure('the event stream did not get through', { early: true });
  }

  // sseEvent turns an event into the frame a WebSocket would carry.
  sseEvent(ev, chs, connected) {
    const data = ev.data.join('\n');
    switch (ev.event) {
      case 'push.welcome': {
        const ids = ev.id && decodeCursor(ev.id, chs);
        if (ids) chs.forEach((c, i) => c in this.pos && !this.pos[c] && (this.pos[c] = ids[i]));
        this.welcome(JSON.parse(data), 'sse', connected);
        return true;
      }
      case 'push.gap': {
        const g = JSON.parse(data);
        const ids = ev.id && decodeCursor(ev.id, chs);
        for (const c of g.channels) {
          const i = chs.indexOf(c);
          this.frame({ type: 'gap', channel: c, reason: g.reason, from: g.from, resume: ids && i >= 0 ? ids[i] : g.resume });
        }
        return;
      }
      case 'push.direct':
        return this.frame({ type: 'direct', ...JSON.parse(data) });
      case 'push.error': {
        const e = JSON.parse(data);
        return this.frame({ type: 'error', code: e.code, message: e.message });
      }
    }
    const ids = ev.id && decodeCursor(ev.id, chs);
    if (!ids) return;
    // The channel of a message is the one whose position its ID moved.
    const i = chs.findIndex((c, i) => !this.pos[c] || compareIDs(ids[i], this.pos[c]) > 0);
    if (i >= 0) this.frame({ type: 'message', channel: chs[i], id: ids[i], event: ev.event === 'message' ? '' : ev.event, data });
  }

  async poll(conn, connected) {
    const abort = new AbortController();
    conn.close = () => ((conn.closed = true), abort.abort());
    conn.restart = conn.close;
    let key = '';
    let since = await this.positions();
    let welcomed = false;
    for (;;) {
      const headers = {};
      const q = key ? new URLSearchParams() : await this.credential(headers);
      if (key) {
        q.set('poll', key);
        if (this.opts.token && !this.opts.ticket) await this.credential(headers); // for a node that does not know the key
      }
      const chs = this.channels();
      for (const c of chs) q.append('channel', c);
      if (since) q.set('since', since);
      q.set('wait', this.opts.pollWait / 1000 + 's');
      const timer = setTimeout(() => abort.abort(), (welcomed ? this.opts.pollWait : 0) + this.opts.connectTimeout + 5000);
      let a;
      try {
        const resp = await fetch(this.url + '/poll?' + q, { headers, signal: abort.signal, cache: 'no-store' });
        if (!resp.ok) throw await readError(resp);
        a = await resp.json();
      } catch (e) {
        if (e instanceof Failure) throw e;
        if (conn.closed) return;
        throw new Failure('the long poll did not get through', { early: !welcomed });
      } finally {
        clearTimeout(timer);
      }
      for (const f of a.messages) {
        if (f.type === 'welcome') {
          welcomed = true;
          this.welcome(f, 'poll', connected);
        } else this.frame(f);
      }
      // The answer's since is the position after what it carried.
      const ids = decodeCursor(a.since, chs);
      if (ids) chs.forEach((c, i) => c in this.pos && ids[i] && (this.pos[c] = ids[i]));
      if (!a.poll || conn.closed) return;
      key = a.poll;
      since = a.since;
      if (this.channels().join('\n') !== chs.join('\n')) return; // the channels changed: a new session
    }
  }

  // publish sends over the WebSocket when one is held, else POSTs.
  async publish(body) {
    if (this.conn && this.conn.publish && !body.exclude) {
      const ref = this.nextRef++;
      return new Promise((resolve, reject) => {
        this.refs.set(ref, { resolve, reject });
        this.conn.publish({ type: 'publish', ref, ...body });
      });
    }
    return httpPublish(this.url, this.opts, body);
  }
}

async function httpPublish(url, opts, body) {
  const headers = { 'Content-Type': 'application/json' };
  const q = new URLSearchParams();
  if (opts.token) headers.Authorization = 'Bearer ' + (typeof opts.token === 'function' ? await opts.token() : opts.token);
  else if (opts.ticket) q.set('ticket', await opts.ticket());
  const resp = await fetch(url + '/api/publish' + (q.toString() ? '?' + q : ''), { method: 'POST', headers, body: JSON.stringify(body) });
  if (!resp.ok) throw await readError(resp);
  return resp.json();
}

export class PushClient {
  constructor(url, options = {}) {
    this.url = String(url || location.origin).replace(/\/+$/, '');
    this.opts = { ...DEFAULTS, ...options };
    this.opts.transports = this.opts.transports.filter((t) => TRANSPORTS.includes(t));
    if (!this.opts.transports.length) throw new Error('PushClient: no known transport');
    this.listeners = {};
    this.subs = new Map(); // channel -> {handlers: Set, pos}
    this.state = { state: 'disconnected' };
    this.closed = false;
    const sink = {
      message: (m) => this.deliver(m),
      gap: (g) => this.gap(g),
      direct: (d) => this.emit('direct', d),
      state: (s) => this.setState(s),
      error: (e) => this.emit('error', e),
    };
    if (this.opts.shared && typeof BroadcastChannel !== 'undefined' && typeof navigator !== 'undefined' && navigator.locks) {
      this.tabs = new Tabs(this, sink);
    } else {
      this.engine = new Engine(this.url, this.opts, sink);
    }
  }

  // on listens for 'state' ({state, transport, node}), 'direct' (messages
  // to this client alone) and 'error'; it returns a function that stops.
  on(event, fn) {
    (this.listeners[event] ||= new Set()).add(fn);
    if (event === 'state') fn(this.state);
    return () => this.listeners[event].delete(fn);
  }

  emit(event, v) {
    for (const fn of this.listeners[event] || []) {
      try {
        fn(v);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  setState(s) {
    this.state = s;
    this.emit('state', s);
  }

  // subscribe calls onMessage with every message of channel, from now or
  // after options.since, once each and in order, and options.onGap when
  // some may be missing.
  subscribe(channel, onMessage, options = {}) {
    let s = this.subs.get(channel);
    const sub = { channel, onMessage, onGap: options.onGap };
    if (!s) {
      s = { handlers: new Set(), pos: options.since };
      this.subs.set(channel, s);
    }
    s.handlers.add(sub);
    this.changed();
    sub.unsubscribe = () => {
      s.handlers.delete(sub);
      if (!s.handlers.size && this.subs.get(channel) === s) this.subs.delete(channel);
      this.changed();
    };
    return sub;
  }

  // wanted is every channel subscribed, with its position.
  wanted() {
    const w = {};
    for (const [c, s] of this.subs) w[c] = s.pos;
    return w;
  }

  changed() {
    if (this.engine) this.engine.setChannels(this.wanted());
    if (this.tabs) this.tabs.changed();
  }

  deliver(m) {
    const s = this.subs.get(m.channel);
    if (!s || (s.pos && compareIDs(m.id, s.pos) <= 0)) return; // never twice
    s.pos = m.id;
    for (const sub of s.handlers) {
      try {
        sub.onMessage(m);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  gap(g) {
    const s = this.subs.get(g.channel);
    if (!s) return;
    if (g.resume) s.pos = g.resume;
    for (const sub of s.handlers) sub.onGap && sub.onGap(g);
  }

  // publish sends data to channel: over the WebSocket when one is held,
  // else with POST /api/publish. It resolves to {id} ({id, duplicate:
  // true} for a repeated options.idempotencyKey: a retry stores nothing).
  publish(channel, data, options = {}) {
    const body = { channel, data: String(data), event: options.event, to: options.to, exclude: options.exclude, idempotency_key: options.idempotencyKey };
    if (this.engine) return this.engine.publish(body);
    return this.tabs.publish(body);
  }

  close() {
    this.closed = true;
    if (this.engine) this.engine.stop();
    if (this.tabs) this.tabs.close();
    this.setState({ state: 'disconnected' });
  }
}

// Tabs shares one connection between the tabs of an origin: the tab that
// holds the Web Lock leads, holds the engine for every tab's channels and
// broadcasts what it receives. A Web Lock is released when its tab closes
// or crashes, with no heartbeat to tune and no two leaders; a SharedWorker
// would be a second script to serve and is missing from some mobile
// browsers.
class Tabs {
  constructor(client, sink) {
    this.client = client;
    this.sink = sink;
    this.id = Math.random().toString(36).slice(2);
    this.name = 'pushcluster:' + client.url;
    this.bc = new BroadcastChannel(this.name);
    this.others = new Map(); // tab -> its wanted channels, while leading
    this.bc.onmessage = (e) => this.receive(e.data);
    this.release = null;
    navigator.locks.request(this.name, () => (this.closed ? null : this.lead()));
    this.send({ t: 'subs', tab: this.id, want: client.wanted() });
    addEventListener('pagehide', () => this.close());
  }

  send(m) {
    if (!this.closed) this.bc.postMessage(m);
  }

  lead() {
    this.leading = true;
    this.engine = new Engine(this.client.url, this.client.opts, {
      ...this.sink,
      message: (m) => (this.send({ t: 'message', m }), this.sink.message(m)),
      gap: (g) => (this.send({ t: 'gap', g }), this.sink.gap(g)),
      direct: (d) => (this.send({ t: 'direct', d }), this.sink.direct(d)),
      state: (s) => (this.send({ t: 'state', s: { ...s, error: undefined } }), this.sink.state(s)),
    });
    this.update();
    this.send({ t: 'leader', tab: this.id }); // the others tell their channels and positions
    return new Promise((r) => (this.release = r));
  }

  // update gives the engine the union of every tab's channels, each from
  // the earliest position any tab holds.
  update() {
    const all = { ...this.client.wanted() };
    for (const want of this.others.values()) {
      for (const [c, p] of Object.entries(want)) {
        if (!(c in all) || (all[c] && (!p || compareIDs(p, all[c]) < 0))) all[c] = p;
      }
    }
    this.engine.setChannels(all);
  }

  changed() {
    if (this.leading) this.update();
    else this.send({ t: 'subs', tab: this.id, want: this.client.wanted() });
  }

  receive(m) {
    if (this.leading) {
      if (m.t === 'subs') {
        this.others.set(m.tab, m.want);
        this.send({ t: 'state', s: { ...this.client.state, error: undefined } });
      } else if (m.t === 'bye') this.others.delete(m.tab);
      else return;
      this.update();
      return;
    }
    switch (m.t) {
      case 'leader':
        return this.send({ t: 'subs', tab: this.id, want: this.client.wanted() });
      case 'message':
        return this.sink.message(m.m);
      case 'gap':
        return this.sink.gap(m.g);
      case 'direct':
        return this.sink.direct(m.d);
      case 'state':
        return this.sink.state(m.s);
    }
  }

  publish(body) {
    return this.leading ? this.engine.publish(body) : httpPublish(this.client.url, this.client.opts, body);
  }

  close() {
    if (this.closed) return;
    this.send({ t: 'bye', tab: this.id });
    this.closed = true;
    if (this.engine) this.engine.stop();
    if (this.release) this.release();
    this.bc.close();
  }
}
