// The demo page: a "TV" and a "phone" pane, each a device with its own SDK
// client. Everything it does goes through /sdk/playhead.js.
import { Client } from '/sdk/playhead.js';

const CATALOG = [
  { id: 'ep-1', title: 'Demo Show · S1E1', series_id: 'demo-show', next_video: 'ep-2', duration_ms: 22 * 60000 },
  { id: 'ep-2', title: 'Demo Show · S1E2', series_id: 'demo-show', next_video: 'ep-3', duration_ms: 22 * 60000 },
  { id: 'ep-3', title: 'Demo Show · S1E3', series_id: 'demo-show', duration_ms: 22 * 60000 },
  { id: 'film', title: 'The Long Film', duration_ms: 110 * 60000 },
];
const byId = Object.fromEntries(CATALOG.map((v) => [v.id, v]));

const hash = new URLSearchParams(location.hash.slice(1));
const query = new URLSearchParams(location.search);
const token = hash.get('token') || query.get('token') || '';
const profile = hash.get('profile') || query.get('profile') || 'me';
const only = query.get('pane');

for (const p of ['tv', 'phone']) {
  const a = document.getElementById(`open-${p}`);
  a.href = `/?pane=${p}#${hash}`;
  a.target = '_blank';
}
if (!token) document.getElementById('no-token').hidden = false;

const rid = () => (crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2)).slice(0, 8);
const fmt = (ms) => {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
};
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};

class Pane {
  constructor(device, label) {
    this.device = device;
    this.label = label;
    const root = document.getElementById('pane').content.firstElementChild.cloneNode(true);
    root.dataset.pane = device;
    root.id = `pane-${device}`;
    this.root = root;
    this.$ = (role) => root.querySelector(`[data-role="${role}"]`);
    this.$('title').textContent = label;
    this.$('title').id = `title-${device}`;
    root.setAttribute('aria-labelledby', `title-${device}`);
    for (const v of CATALOG) this.$('video').append(el('option', { value: v.id, textContent: v.title }));
    document.getElementById('panes').append(root);
    this.video = CATALOG[0];
    this.position = 0;
    this.playing = false;
    this.tracker = null;
    /** Every push event, in arrival order (the browser tests read it). */
    this.events = [];
    this.#render();
  }

  async start() {
    this.client = await Client.open({ baseURL: '', token, device: this.device, queueName: `playhead-demo-${this.device}` });
    this.client.onQueue((n) => { this.$('queued').textContent = `${n} queued`; });
    this.$('queued').textContent = `${this.client.queued} queued`;
    this.#wire();
    this.#render();
    this.sub = this.client.subscribe(profile, (ev) => this.#onEvent(ev), {
      onStatus: (t, err) => { this.$('transport').textContent = t ? `push: ${t}` : `push: reconnecting (${err ? err.message : ''})`; },
    });
    await Promise.all([this.refresh(), this.#loadResume(), this.#loadPaused()]);
  }

  #wire() {
    this.$('play').onclick = () => this.play();
    this.$('pause').onclick = () => this.pause();
    this.$('video').onchange = (e) => this.load(e.target.value, null);
    this.$('position').oninput = (e) => { this.position = Number(e.target.value); this.#render(); };
    this.$('position').onchange = (e) => this.seek(Number(e.target.value));
    this.$('offline').onchange = async (e) => {
      this.log(e.target.checked ? 'device offline: reports are queued' : 'device online: sending the queue');
      await this.client.setOffline(e.target.checked);
      this.refresh();
    };
    this.$('search').onsubmit = (e) => { e.preventDefault(); this.refreshHistory(); };
    this.$('paused').onchange = async (e) => {
      try {
        const v = await this.client.setHistoryPaused(profile, e.target.checked);
        this.log(`history ${v ? 'paused' : 'resumed'}`);
      } catch (err) { this.log(`settings: ${err.message}`); }
    };
    this.$('delete-all').onclick = async () => {
      try { await this.client.deleteAllHistory(profile); this.log('deleted all history'); } catch (err) { this.log(`delete all: ${err.message}`); }
      this.refresh();
    };
    setInterval(() => this.#tick(), 250);
  }

  log(text) {
    const li = el('li', { textContent: `${new Date().toLocaleTimeString()} ${text}` });
    const log = this.$('log');
    log.prepend(li);
    while (log.children.length > 60) log.lastChild.remove();
  }

  banner(text) {
    const b = this.$('banner');
    b.hidden = !text;
    b.textContent = text || '';
  }

  #render() {
    const r = this.$('position');
    r.max = this.video.duration_ms;
    if (document.activeElement !== r || this.playing) r.value = this.position;
    r.setAttribute('aria-valuetext', fmt(this.position));
    this.$('clock').textContent = `${fmt(this.position)} / ${fmt(this.video.duration_ms)}`;
    this.$('video').value = this.video.id;
    this.$('play').disabled = this.playing;
    this.$('pause').disabled = !this.playing;
  }

  async report(u) {
    if (!u) return;
    const res = await this.client.report(profile, u);
    this.log(`sent ${u.state} ${u.video} at ${fmt(u.position_ms)}: ${res.outcome}${res.error ? ' (' + res.error.message + ')' : ''}`);
    return res;
  }

  /** A new session starts when none runs, or after a takeover. */
  async play() {
    const now = this.client.nowMs();
    this.banner('');
    if (!this.tracker || this.tracker.superseded) {
      this.tracker = this.client.tracker({ session: `${this.device}-${rid()}`, video: this.video.id,
        meta: { title: this.video.title, ...(this.video.series_id && { series_id: this.video.series_id }), ...(this.video.next_video && { next_video: this.video.next_video }) } });
      this.playing = true;
      this.lastTick = performance.now();
      this.#render();
      return this.report(this.tracker.start(now, this.position, this.video.duration_ms));
    }
    this.playing = true;
    this.lastTick = performance.now();
    this.#render();
    return this.report(this.tracker.play(now, this.position));
  }

  async pause() {
    if (!this.playing) return;
    this.playing = false;
    this.#render();
    if (this.tracker) return this.report(this.tracker.pause(this.client.nowMs(), this.position));
  }

  async seek(pos) {
    this.position = pos;
    this.#render();
    if (this.tracker && !this.tracker.superseded) return this.report(this.tracker.seekTo(this.client.nowMs(), pos));
  }

  /** Loads a video: at its resume position (from the node) unless told where. */
  async load(id, at) {
    if (this.playing && this.tracker) await this.report(this.tracker.stop(this.client.nowMs(), this.position));
    this.playing = false;
    this.tracker = null;
    this.video = byId[id] || { id, title: id, duration_ms: 60 * 60000 };
    this.position = at ?? 0;
    this.#render();
    if (at == null) await this.#loadResume();
  }

  async #loadResume() {
    try {
      const cur = await this.client.resume(profile, this.video.id);
      if (cur && !this.playing) { this.position = cur.resume_ms; this.#render(); }
    } catch (err) { this.log(`resume: ${err.message}`); }
  }

  async #loadPaused() {
    try { this.$('paused').checked = await this.client.historyPaused(profile); } catch { /* offline */ }
  }

  #tick() {
    if (!this.playing) return;
    const t = performance.now();
    this.position = Math.min(this.video.duration_ms, this.position + (t - this.lastTick));
    this.lastTick = t;
    if (this.position >= this.video.duration_ms) {
      this.playing = false;
      this.report(this.tracker.complete(this.client.nowMs()));
    } else {
      this.report(this.tracker.observe(this.client.nowMs(), this.position));
    }
    this.#render();
  }

  #onEvent(ev) {
    this.events.push(ev);
    if (ev.type === 'cursor') {
      const c = ev.cursor;
      const mine = this.tracker && c.session === this.tracker.cfg.session;
      this.log(`push: ${c.device} ${c.state} ${c.video} at ${fmt(c.position_ms)}`);
      if (!mine && c.video === this.video.id && !this.playing) {
        this.position = c.position_ms;
        this.#render();
      }
    } else if (ev.type === 'takeover') {
      this.log(`takeover: ${ev.video} by ${ev.by.device}`);
      if (this.tracker && ev.session === this.tracker.cfg.session) {
        this.tracker.superseded = true;
        this.playing = false;
        this.banner(`Taken over by ${ev.by.device}: press Play to continue here.`);
        this.#render();
      }
    } else if (ev.type === 'cleared') {
      this.log(ev.entry ? `history entry deleted` : ev.video ? `history of ${ev.video} deleted` : 'all history deleted');
      if (!ev.entry && (ev.video == null || ev.video === this.video.id) && !this.playing) { this.position = 0; this.#render(); }
    }
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), 150);
  }

  async refresh() { await Promise.all([this.refreshRow(), this.refreshHistory()]); }

  async refreshRow() {
    let items;
    try { items = await this.client.continueWatching(profile); } catch (err) { return; }
    const row = this.$('cw');
    row.replaceChildren(...items.map((c) => {
      const v = byId[c.video];
      const pct = Math.round((100 * c.resume_ms) / c.duration_ms);
      const li = el('li', {}, el('strong', { textContent: c.title || (v && v.title) || c.video }), el('br'),
        el('progress', { max: 100, value: pct, textContent: `${pct}%`, ariaLabel: `${pct}% watched` }),
        el('span', { textContent: ` ${fmt(c.resume_ms)} on ${c.device}` }), el('br'),
        el('button', { type: 'button', textContent: 'Resume', onclick: () => this.load(c.video, c.resume_ms) }));
      li.dataset.video = c.video;
      if (c.next_video) {
        li.append(' ', el('button', { type: 'button', textContent: `Next: ${(byId[c.next_video] || {}).title || c.next_video}`, onclick: () => this.load(c.next_video, 0) }));
      }
      return li;
    }));
  }

  async refreshHistory() {
    const q = this.$('q').value.trim(), from = this.$('from').value, to = this.$('to').value;
    let page;
    try {
      page = await this.client.history(profile, { q, from: from ? new Date(`${from}T00:00`) : undefined, to: to ? new Date(`${to}T23:59:59.999`) : undefined, limit: 50 });
    } catch (err) { return; }
    this.$('history').replaceChildren(...page.entries.map((e) => {
      const li = el('li', {}, el('span', { textContent: `${e.title || e.video} · ${e.device} · ${new Date(e.last_at).toLocaleString()} · ${Math.round(e.completion_pct)}%` }),
        el('button', { type: 'button', textContent: 'Delete', ariaLabel: `delete this entry of ${e.title || e.video}`,
          onclick: async () => { await this.client.deleteEntry(profile, e.id).catch((err) => this.log(err.message)); this.refresh(); } }),
        el('button', { type: 'button', textContent: 'Delete video', ariaLabel: `delete all of ${e.title || e.video}`,
          onclick: async () => { await this.client.deleteVideo(profile, e.video).catch((err) => this.log(err.message)); this.refresh(); } }));
      li.dataset.video = e.video;
      return li;
    }));
  }
}

const panes = [['tv', 'TV (living room)'], ['phone', 'Phone']].filter(([d]) => !only || only === d);
window.playhead = {};
for (const [d, label] of panes) {
  const p = new Pane(d, label);
  window.playhead[d] = p;
  p.ready = p.start().catch((err) => p.log(`start: ${err.message}`));
}
