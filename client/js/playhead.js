// playhead JavaScript SDK: plain ES module, no build step, no dependencies.
// The browser counterpart of the Go SDK (client/): the device's HLC kept in
// step with Playhead-HLC, an offline queue in IndexedDB replayed in true
// order, push over WebSocket with SSE and long-poll fallbacks, takeover
// events, clock-skew recovery, and session-consistent resume reads
// (Playhead-Seen). Every endpoint of docs/API.md has a method here:
//
//   PUT  …/positions/{video}       report()  (queued when offline)
//   POST …/positions               flush()   (the queue, in batches)
//   GET  …/positions/{video}       resume()
//   GET  …/changes                 subscribe() long-poll fallback
//   GET  …/events                  subscribe() WebSocket, then SSE
//   GET  …/continue-watching       continueWatching()
//   GET  …/history                 history()
//   DELETE …/history/{entry_id}    deleteEntry()
//   DELETE …/history?video=ID      deleteVideo()
//   DELETE …/history               deleteAllHistory()
//   GET/PUT …/settings             historyPaused() / setHistoryPaused()
//
//   import { Client } from '/sdk/playhead.js';
//   const c = await Client.open({ baseURL: 'https://node', token, device: 'tv' });
//   const t = c.tracker({ session: crypto.randomUUID(), video: 'ep-1' });
//   await c.report('me', t.start(c.nowMs(), 0, 2580000));
//   c.subscribe('me', (ev) => console.log(ev));

import { Clock, parseHLC, physical, maxHLC, versionOf, compareVersions } from './hlc.js';
import { Queue } from './queue.js';
import { Tracker } from './tracker.js';

export { Clock, Queue, Tracker, parseHLC, versionOf, compareVersions };

/** No answer from the node (network down, or the client set offline). */
export class OfflineError extends Error {
  constructor(msg) { super(msg); this.name = 'OfflineError'; }
}

/** An error answer: status, code (API.md "Errors"), message, retryAfterMs. */
export class APIError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(`playhead: ${status} ${code}: ${message}`);
    this.name = 'APIError';
    Object.assign(this, { status, code, apiMessage: message, retryAfterMs });
  }
  /** The node refused a stamp as too far ahead of its clock. */
  get clockSkew() { return this.status === 400 && /max_clock_skew|timestamp too far in the future/.test(this.apiMessage); }
}

/**
 * @typedef {object} Config
 * @property {string} baseURL the node, e.g. "https://playhead.example.com" ('' = this page's origin)
 * @property {string} token bearer token (JWT)
 * @property {string} device this device's stable id
 * @property {string} [queueName] IndexedDB name of the offline queue; default "playhead-queue-" + device
 * @property {number} [requestTimeoutMs] default 10000
 * @property {number} [longPollWaitMs] default 25000
 * @property {number} [clockSyncThresholdMs] default 1000
 * @property {number} [wsFailuresBeforeFallback] failures of a transport in a row before the next one; default 2
 * @property {string[]} [transports] push transports to try, in order; default ['websocket', 'sse', 'longpoll']
 * @property {number} [retryFirstTransportMs] how often a subscription that fell back tries the first transport again; default 120000
 * @property {typeof fetch} [fetch] default globalThis.fetch
 * @property {() => number} [now] device clock, ms; default Date.now
 */

export class Client {
  /** Opens a client and loads its offline queue. @param {Config} cfg */
  static async open(cfg) {
    const c = new Client(cfg);
    await c.queue.open();
    return c;
  }

  /** @param {Config} cfg */
  constructor(cfg) {
    if (!cfg || !cfg.device) throw new Error('playhead: Config.device is required');
    this.cfg = { baseURL: '', requestTimeoutMs: 10000, longPollWaitMs: 25000, clockSyncThresholdMs: 1000,
      wsFailuresBeforeFallback: 2, transports: ['websocket', 'sse', 'longpoll'], retryFirstTransportMs: 120000, now: () => Date.now(), ...cfg };
    this.cfg.baseURL = this.cfg.baseURL.replace(/\/$/, '');
    this.fetch = cfg.fetch || globalThis.fetch.bind(globalThis);
    this.queue = new Queue(cfg.queueName || `playhead-queue-${cfg.device}`);
    this._clock = new Clock();
    this.offsetMs = 0;
    this.serverHLC = 0n; // largest Playhead-HLC or version seen
    /** @type {Map<string, import('./hlc.js').Version>} largest version shown, per profile/video */
    this.seen = new Map();
    this.offline = false;
    this.holdUntil = 0;
    /** @type {Set<Subscription>} */
    this.subs = new Set();
    /** @type {Set<(n: number) => void>} */
    this.queueListeners = new Set();
    this.flushing = null;
    if (typeof window !== 'undefined') window.addEventListener('online', () => this.flush().catch(() => {}));
  }

  /** The device's HLC (replaced after a clock-skew refusal: call again rather than keep it). */
  clock() { return this._clock; }
  /** The device clock corrected by the node's (Playhead-HLC): pass it to trackers. */
  nowMs() { return this.cfg.now() + this.offsetMs; }
  /** A tracker for one playback session of this device. @param {Omit<import('./tracker.js').TrackerConfig,'device'> & {device?: string}} cfg */
  tracker(cfg) { return new Tracker(this, { device: this.cfg.device, ...cfg }); }
  /** Replaces the token (after a refresh). */
  setToken(token) { this.cfg.token = token; }
  /** Updates waiting in the offline queue. */
  get queued() { return this.queue.length; }
  /** Calls fn(queued) whenever the queue changes; returns an unsubscribe function. */
  onQueue(fn) { this.queueListeners.add(fn); return () => this.queueListeners.delete(fn); }
  #queueChanged() { for (const f of this.queueListeners) f(this.queue.length); }

  /**
   * Takes the device offline (true) or back online (false), as the page's
   * switch does: offline, no request leaves and reports are queued;
   * online again, subscriptions reconnect from their watermark and the
   * queue is flushed in true order.
   */
  async setOffline(off) {
    this.offline = off;
    for (const s of this.subs) s._reconnect();
    if (!off) await this.flush().catch(() => {});
  }

  // ---- HTTP ----

  url(path, query) {
    const q = query && Object.keys(query).length ? '?' + new URLSearchParams(query) : '';
    return this.cfg.baseURL + path + q;
  }

  /** One request; observes Playhead-HLC; a failure to get any answer is an OfflineError. */
  async request(method, path, { query, body, headers = {}, extraMs = 0 } = {}) {
    if (this.offline) throw new OfflineError(`playhead: offline: ${method} ${path} not sent`);
    const h = { Accept: 'application/json', ...headers };
    if (this.cfg.token) h.Authorization = `Bearer ${this.cfg.token}`;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.cfg.requestTimeoutMs + extraMs);
    let res, text;
    try {
      res = await this.fetch(this.url(path, query), { method, headers: h, signal: ctl.signal,
        body: body === undefined ? undefined : JSON.stringify(body) });
      text = await res.text();
    } catch (e) {
      throw new OfflineError(`playhead: ${method} ${path}: ${e.message}`);
    } finally {
      clearTimeout(timer);
    }
    this.#observeHeader(res.headers.get('Playhead-HLC'));
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, json };
  }

  #observeHeader(v) {
    if (!v) return;
    let h;
    try { h = parseHLC(v); } catch { return; }
    if (h === 0n) return;
    this._clock.observe(h);
    this.serverHLC = maxHLC(this.serverHLC, h);
    const diff = physical(h) - this.cfg.now();
    if (Math.abs(diff - this.offsetMs) > this.cfg.clockSyncThresholdMs) this.offsetMs = diff;
  }

  /** @param {{status: number, headers: Headers, json: any}} r */
  apiError(r) {
    const e = (r.json && r.json.error) || {};
    let retry = 0;
    if (r.status === 429 || r.status === 503) {
      const ra = Number(r.headers.get('Retry-After'));
      retry = Number.isFinite(ra) && ra >= 0 ? ra * 1000 : 1000;
    }
    return new APIError(r.status, e.code || '', e.message || `HTTP ${r.status}`, retry);
  }

  observeCursor(profile, cur) {
    if (!cur) return;
    const v = versionOf(cur);
    this._clock.observe(maxHLC(v.epoch, v.seq, parseHLC(cur.updated_hlc)));
    this.serverHLC = maxHLC(this.serverHLC, v.seq, parseHLC(cur.updated_hlc));
    const k = `${profile}\u0000${cur.video}`;
    const old = this.seen.get(k);
    if (!old || compareVersions(old, v) < 0) this.seen.set(k, v);
  }

  #forget(profile, video) {
    for (const k of [...this.seen.keys()]) {
      const [p, v] = k.split('\u0000');
      if (p === profile && (video == null || v === video)) this.seen.delete(k);
    }
  }

  /** Whether a pushed cursor is older than what this device was shown. */
  olderThanSeen(profile, cur) {
    const s = this.seen.get(`${profile}\u0000${cur.video}`);
    return !!s && compareVersions(versionOf(cur), s) < 0;
  }

  // ---- writes ----

  /**
   * Reports an update (from a Tracker). Outcomes: "applied", "stale" (a
   * larger version is stored; cursor is it), "queued" (offline, 429 or
   * 503: kept and sent by flush()), "refused" (400/403/413: never
   * retried; error says why). A null update is a no-op.
   * @returns {Promise<{outcome: string, cursor?: object, error?: Error}>}
   */
  async report(profile, update) {
    if (!update) return { outcome: 'none' };
    if (this.queue.length > 0 || this.offline || this.cfg.now() < this.holdUntil) {
      await this.queue.add({ profile, update });
      this.#queueChanged();
      if (!this.offline) this.flush().catch(() => {});
      return { outcome: 'queued' };
    }
    return this.#send(profile, update, true);
  }

  async #send(profile, update, mayReset) {
    let r;
    try {
      r = await this.request('PUT', `/v1/profiles/${enc(profile)}/positions/${enc(update.video)}`, { body: update });
    } catch (e) {
      await this.queue.add({ profile, update });
      this.#queueChanged();
      return { outcome: 'queued', error: e };
    }
    if (r.status === 200 || r.status === 409) {
      this.observeCursor(profile, r.json && r.json.cursor);
      return { outcome: r.status === 200 ? 'applied' : 'stale', cursor: r.json && r.json.cursor };
    }
    const err = this.apiError(r);
    if (r.status === 429 || r.status === 503) {
      this.holdUntil = this.cfg.now() + err.retryAfterMs;
      await this.queue.add({ profile, update });
      this.#queueChanged();
      return { outcome: 'queued', error: err };
    }
    if (mayReset && err.clockSkew) {
      const again = await this.#recoverClockSkew([{ profile, update }]);
      if (again.length) return this.#send(profile, again[0].update, false);
    }
    return { outcome: 'refused', error: err };
  }

  /**
   * After a clock-skew refusal: a new HLC from the largest one the nodes
   * showed, and fresh versions — in their true order — for the queued
   * updates (and the refused ones) stamped ahead of the node's clock.
   * @param {{profile: string, update: object}[]} refused
   */
  async #recoverClockSkew(refused) {
    this._clock = new Clock(this.serverHLC);
    const limit = maxHLC(this.serverHLC, BigInt(this.nowMs() + this.cfg.clockSyncThresholdMs) << 16n);
    const all = [...this.queue.list(), ...refused].sort((a, b) => compareVersions(versionOf(a.update), versionOf(b.update)));
    const restamped = [];
    for (const p of all) {
      const v = versionOf(p.update);
      if (v.seq <= limit) continue;
      const seq = this._clock.now(this.nowMs());
      const u = { ...p.update, seq: seq.toString(), epoch: (v.epoch > limit ? seq : v.epoch).toString() };
      restamped.push({ profile: p.profile, update: u });
    }
    const queued = restamped.filter((p) => !refused.some((r) => r.update.session === p.update.session && r.update.video === p.update.video && r.profile === p.profile));
    await this.queue.replace(queued);
    return restamped.filter((p) => !queued.includes(p));
  }

  /**
   * Sends the offline queue in true order (consecutive updates of one
   * profile in one batch of at most 500). Resolves to the number sent;
   * stops at the first failure (they stay queued).
   */
  flush() {
    if (!this.flushing) {
      this.flushing = this.#flush().finally(() => { this.flushing = null; this.#queueChanged(); });
    }
    return this.flushing;
  }

  async #flush() {
    let sent = 0;
    let mayReset = true;
    while (this.queue.length > 0 && !this.offline) {
      const hold = this.holdUntil - this.cfg.now(); // a 429 or 503 asked to wait
      if (hold > 0) await sleep(Math.min(hold, 60000));
      const items = this.queue.list();
      const batch = [];
      for (const p of items) {
        if (p.profile !== items[0].profile || batch.length === 500) break;
        batch.push(p);
      }
      const r = await this.request('POST', `/v1/profiles/${enc(batch[0].profile)}/positions`,
        { body: { updates: batch.map((p) => p.update) } });
      if (r.status === 200) {
        (r.json.results || []).forEach((res) => this.observeCursor(batch[0].profile, res.cursor));
        await this.queue.remove(batch);
        sent += batch.length;
        this.#queueChanged();
        continue;
      }
      const err = this.apiError(r);
      if (r.status === 400 && err.clockSkew && mayReset) {
        mayReset = false;
        await this.#recoverClockSkew([]);
        continue;
      }
      if (r.status === 400 || r.status === 403 || r.status === 413) {
        await this.queue.remove(batch); // can never succeed: dropped, as the Go SDK does
        this.#queueChanged();
        throw err;
      }
      if (err.retryAfterMs) this.holdUntil = this.cfg.now() + err.retryAfterMs;
      throw err;
    }
    return sent;
  }

  // ---- reads ----

  /**
   * Where to resume video (cursor.resume_ms), or null when there is no
   * cursor. Sends Playhead-Seen (the largest version this device was shown)
   * so the answer is never older; an answer older than what arrived while
   * it was in flight is read again once; 503 is retried after Retry-After.
   */
  async resume(profile, video) {
    for (let attempt = 0; ; attempt++) {
      const k = `${profile}\u0000${video}`;
      const seen = this.seen.get(k);
      const headers = seen ? { 'Playhead-Seen': `${seen.epoch} ${seen.seq} ${seen.session}` } : {};
      const r = await this.request('GET', `/v1/profiles/${enc(profile)}/positions/${enc(video)}`, { headers });
      if (r.status === 503 && attempt < 3) {
        await sleep(this.apiError(r).retryAfterMs);
        continue;
      }
      if (r.status !== 200 && r.status !== 404) throw this.apiError(r);
      const cur = r.status === 200 ? r.json : null;
      const now = this.seen.get(k);
      if (now && (!cur || compareVersions(versionOf(cur), now) < 0) && (!seen || compareVersions(seen, now) < 0) && attempt === 0) continue;
      this.observeCursor(profile, cur);
      return cur;
    }
  }

  /** The "continue watching" row, newest first (limit ≤ 50; 0 = the node's default). */
  async continueWatching(profile, limit = 0) {
    return (await this.#get(`/v1/profiles/${enc(profile)}/continue-watching`, limit ? { limit } : {})).items;
  }

  /**
   * One page of history, newest first.
   * @param {{limit?: number, page?: string, from?: Date|string, to?: Date|string, q?: string}} [hq]
   * @returns {Promise<{entries: object[], next_page: string|null}>}
   */
  async history(profile, hq = {}) {
    const q = {};
    if (hq.limit) q.limit = hq.limit;
    if (hq.page) q.page = hq.page;
    if (hq.from) q.from = new Date(hq.from).toISOString();
    if (hq.to) q.to = new Date(hq.to).toISOString();
    if (hq.q) q.q = hq.q;
    return this.#get(`/v1/profiles/${enc(profile)}/history`, q);
  }

  async #get(path, query) {
    const r = await this.request('GET', path, { query });
    if (r.status !== 200) throw this.apiError(r);
    return r.json;
  }

  // ---- history controls ----

  /** Deletes one history entry (its id from history()); the cursor stays. */
  async deleteEntry(profile, entryID) { await this.#delete(`/v1/profiles/${enc(profile)}/history/${enc(entryID)}`); }
  /** Deletes a video's history entries and its cursor. */
  async deleteVideo(profile, video) { await this.#delete(`/v1/profiles/${enc(profile)}/history`, { video }); this.#forget(profile, video); }
  /** Deletes the profile's whole history and every cursor. */
  async deleteAllHistory(profile) { await this.#delete(`/v1/profiles/${enc(profile)}/history`); this.#forget(profile, null); }

  async #delete(path, query) {
    const r = await this.request('DELETE', path, { query });
    if (r.status !== 204 && r.status !== 200) throw this.apiError(r);
  }

  /** Reads history_paused (while true, playback saves positions but no history). */
  async historyPaused(profile) { return (await this.#get(`/v1/profiles/${enc(profile)}/settings`)).history_paused; }
  /** Sets history_paused; resolves to the value in force. */
  async setHistoryPaused(profile, paused) {
    const r = await this.request('PUT', `/v1/profiles/${enc(profile)}/settings`, { body: { history_paused: !!paused } });
    if (r.status !== 200) throw this.apiError(r);
    return r.json.history_paused;
  }

  // ---- push ----

  /**
   * Follows the profile's changes: handler(event) gets {"type": "cursor",
   * cursor}, {"type": "takeover", video, session, by} and {"type":
   * "cleared", video|null, entry?} (API.md "Push events"), in order, each
   * once. WebSocket first; after wsFailuresBeforeFallback failures SSE,
   * then long-poll (GET …/changes?include=cleared). Reconnects resume from
   * the subscription's resume point (after=): where it started (the node's
   * HLC at the first contact, held back by RESUME_HOLD_BACK_MS), not the
   * newest updated_hlc seen — changes arrive out of that order — so nothing
   * is missed; what was already delivered is dropped (API.md "Push events").
   * @param {(ev: object) => void} handler
   * @param {{after?: string|bigint, onStatus?: (transport: string, err?: Error) => void}} [opts]
   */
  subscribe(profile, handler, opts = {}) {
    const s = new Subscription(this, profile, handler, opts);
    this.subs.add(s);
    s._run();
    return s;
  }

  /** Delivers one event through a subscription's filter. @internal */
  _deliver(s, ev) {
    if (ev.type === 'cursor' && ev.cursor) {
      const c = ev.cursor;
      const u = parseHLC(c.updated_hlc);
      if (u <= (s.lastByVideo.get(c.video) || 0n)) return;
      s.lastByVideo.set(c.video, u);
      s.newest = maxHLC(s.newest, u);
      if (this.olderThanSeen(s.profile, c)) return;
      this.observeCursor(s.profile, c);
    } else if (ev.type === 'cleared' && !ev.entry) {
      this.#forget(s.profile, ev.video ?? null);
      if (ev.video == null) s.lastByVideo.clear(); else s.lastByVideo.delete(ev.video);
    } else if (ev.type !== 'takeover') {
      return;
    }
    s.handler(ev);
  }
}

/** One profile's push stream; close() ends it. */
export class Subscription {
  constructor(client, profile, handler, opts) {
    Object.assign(this, { client, profile, handler, opts });
    /** The resume point (after= of a reconnect): every change stamped at or below it was delivered. */
    this.after = opts.after !== undefined ? parseHLC(opts.after) : 0n;
    this.haveAfter = opts.after !== undefined;
    /** The newest updated_hlc seen (or long-poll hlc): what a long-poll waits past. */
    this.newest = this.after;
    /** @type {Map<string, bigint>} newest updated_hlc delivered per video */
    this.lastByVideo = new Map();
    this.transport = '';
    this.closed = false;
    this.failures = 0;
    this.stopCurrent = () => {};
    this.wake = () => {};
  }

  close() {
    this.closed = true;
    this.client.subs.delete(this);
    this.stopCurrent();
    this.wake();
  }

  _reconnect() { this.stopCurrent(); this.wake(); }

  #status(t, err) {
    // Back in contact: what was queued meanwhile goes now, in order.
    if (t && t !== 'offline' && t !== this.transport && this.client.queued > 0) this.client.flush().catch(() => {});
    this.transport = t;
    if (this.opts.onStatus) this.opts.onStatus(t, err);
  }

  #base() {
    const c = this.client;
    if (!this.haveAfter) {
      const h = c.serverHLC || (BigInt(c.nowMs()) << 16n);
      this.after = resumePointAt(h);
      this.newest = maxHLC(this.newest, h);
      this.haveAfter = true;
    }
    return `/v1/profiles/${enc(this.profile)}`;
  }

  async _run() {
    const c = this.client;
    let delay = 250;
    while (!this.closed) {
      if (c.offline) {
        this.#status('offline');
        await new Promise((r) => { this.wake = r; });
        continue;
      }
      const ts = c.cfg.transports;
      let mode = ts[Math.min(Math.floor(this.failures / Math.max(1, c.cfg.wsFailuresBeforeFallback)), ts.length - 1)];
      if (mode === ts[0]) {
        this.fellBackAt = 0;
      } else if (!this.fellBackAt) {
        this.fellBackAt = Date.now();
      } else if (Date.now() - this.fellBackAt >= c.cfg.retryFirstTransportMs) {
        this.failures = 0; // try the first transport again, as the Go SDK does (WSRetryInterval)
        this.fellBackAt = 0;
        mode = ts[0];
      }
      let connected = false;
      try {
        connected = await (mode === 'websocket' ? this.#ws() : mode === 'sse' ? this.#sse() : this.#poll());
      } catch (e) {
        this.pollWarm = false;
        this.#status('', e);
      }
      if (this.closed) return;
      if (connected) { delay = 250; continue; }
      this.failures++;
      await new Promise((r) => { this.wake = r; setTimeout(r, delay * (0.5 + Math.random())); });
      delay = Math.min(delay * 2, 30000);
    }
  }

  /** The token and resume point in the query (browsers cannot set WebSocket/EventSource headers). */
  #streamURL(scheme) {
    const path = this.#base() + '/events';
    const u = new URL(this.client.url(path, { access_token: this.client.cfg.token, after: this.after.toString() }), location.href);
    if (scheme) u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.toString();
  }

  #ws() {
    return new Promise((resolve) => {
      let opened = false;
      const ws = new WebSocket(this.#streamURL(true));
      this.stopCurrent = () => ws.close();
      ws.onopen = () => { opened = true; this.failures = 0; this.#status('websocket'); };
      ws.onmessage = (m) => {
        let ev;
        try { ev = JSON.parse(m.data); } catch { return; }
        for (const e of Array.isArray(ev) ? ev : [ev]) this.client._deliver(this, e);
      };
      ws.onerror = () => {};
      ws.onclose = () => { this.stopCurrent = () => {}; resolve(opened); };
    });
  }

  #sse() {
    return new Promise((resolve) => {
      let opened = false;
      const es = new EventSource(this.#streamURL(false));
      const done = () => { es.close(); this.stopCurrent = () => {}; resolve(opened); };
      this.stopCurrent = done;
      es.onopen = () => { opened = true; this.#status('sse'); };
      for (const t of ['cursor', 'takeover', 'cleared']) {
        es.addEventListener(t, (m) => { try { this.client._deliver(this, JSON.parse(m.data)); } catch { /* bad event */ } });
      }
      es.onerror = done; // reconnect ourselves, from our resume point
      // A fallback stream ends in time for the first transport to be tried again.
      if (this.client.cfg.transports[0] !== 'sse') setTimeout(done, this.client.cfg.retryFirstTransportMs);
    });
  }

  async #poll() {
    const c = this.client;
    const path = this.#base() + '/changes';
    // The first poll answers at once (the catch-up, and proof of contact);
    // the next ones wait for changes.
    const wait = this.pollWarm ? Math.round(c.cfg.longPollWaitMs / 1000) : 0;
    let stop = false;
    this.stopCurrent = () => { stop = true; };
    // after= is what to wait past; since= where to resume when the node
    // starts a new subscription for this poll (API.md "/changes").
    const query = { after: this.newest.toString(), since: this.after.toString(), wait: `${wait}s`, include: 'cleared' };
    if (this.pollID) query.poll = this.pollID; // the node kept the last poll's subscription: what came in between
    const r = await c.request('GET', path, { query, extraMs: c.cfg.longPollWaitMs });
    if (stop || this.closed) return true;
    if (r.status !== 200) throw c.apiError(r);
    this.pollWarm = true;
    this.pollID = r.json.poll || '';
    this.#status('longpoll');
    for (const ev of r.json.cleared || []) c._deliver(this, ev);
    for (const cur of r.json.cursors || []) c._deliver(this, { type: 'cursor', cursor: cur });
    this.newest = maxHLC(this.newest, parseHLC(r.json.hlc));
    return true;
  }
}

/**
 * How far below the node's HLC at the first contact a subscription's
 * resume point starts: the cluster's default max_clock_skew (Go:
 * api.ResumeHoldBack). A change coordinated by a node whose clock lags can
 * be stamped below that HLC and still come after it.
 */
export const RESUME_HOLD_BACK_MS = 60000;

/** The resume point of a subscription whose first contact answered HLC h. */
export function resumePointAt(h) {
  const p = physical(h) - RESUME_HOLD_BACK_MS;
  return p > 0 ? BigInt(p) << 16n : 0n;
}

function enc(s) { return encodeURIComponent(s); }
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
