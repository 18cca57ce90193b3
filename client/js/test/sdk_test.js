// The JavaScript SDK's own tests, run in headless Chromium against a real
// node by web/jssdk_test.go (the page is /jstest/index.html there).
// Results land in window.results: [{name, ok, error}].
import { Client, Clock, Queue, Tracker, parseHLC, compareVersions, versionOf } from '/sdk/playhead.js';
import { makeHLC, physical } from '/sdk/hlc.js';

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const eq = (a, b, what) => { if (a !== b) throw new Error(`${what}: got ${a}, want ${b}`); };
const ok = (c, what) => { if (!c) throw new Error(what); };
const until = async (cond, what, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) { if (Date.now() > end) throw new Error(`timed out: ${what}`); await new Promise((r) => setTimeout(r, 10)); }
};
let n = 0;
const uniq = (p) => `${p}-${Date.now().toString(36)}-${n++}`;
const open = (extra = {}) => Client.open({ baseURL: '', token, device: uniq('dev'), queueName: uniq('q'), ...extra });

test('HLC: 64-bit exact, monotonic within a millisecond, observes', () => {
  const h = makeHLC(1764979200123, 7);
  eq(physical(h), 1764979200123, 'physical');
  eq(parseHLC(h.toString()), h, 'round trip');
  eq(parseHLC('18446744073709551615'), 18446744073709551615n, 'max u64 is exact');
  const c = new Clock();
  const a = c.now(1000), b = c.now(1000), d = c.now(999);
  ok(a < b && b < d, 'strictly increasing when time stands or goes back');
  c.observe(makeHLC(5000));
  ok(c.now(1000) > makeHLC(5000), 'a stamp after observe is above the observed');
  let threw = false;
  try { parseHLC('12a'); } catch { threw = true; }
  ok(threw, 'garbage is refused');
});

test('versions: by epoch, then seq, then session', () => {
  const v = (e, s, x) => ({ epoch: BigInt(e), seq: BigInt(s), session: x });
  ok(compareVersions(v(1, 9, 'z'), v(2, 2, 'a')) < 0, 'epoch first');
  ok(compareVersions(v(2, 3, 'a'), v(2, 2, 'z')) > 0, 'then seq');
  ok(compareVersions(v(2, 2, 'a'), v(2, 2, 'b')) < 0, 'then session');
  eq(compareVersions(v(2, 2, 'a'), v(2, 2, 'a')), 0, 'equal');
});

test('queue: coalesces per session, true order, survives reopening', async () => {
  const name = uniq('queue');
  const q = await new Queue(name).open();
  ok(q.persistent, 'IndexedDB is used');
  const u = (video, session, epoch, seq, pos) => ({ video, session, epoch: String(epoch), seq: String(seq), position_ms: pos });
  await q.add({ profile: 'me', update: u('b', 's2', 20, 21, 1) });
  await q.add({ profile: 'me', update: u('a', 's1', 10, 11, 1) });
  await q.add({ profile: 'me', update: u('a', 's1', 10, 15, 2) }); // newer: replaces
  await q.add({ profile: 'me', update: u('a', 's1', 10, 12, 3) }); // older: ignored
  eq(q.length, 2, 'coalesced length');
  eq(q.list().map((p) => p.update.video + p.update.position_ms).join(','), 'a2,b1', 'true order');
  const again = await new Queue(name).open();
  eq(again.list().map((p) => p.update.video + p.update.position_ms).join(','), 'a2,b1', 'reloaded');
  await again.remove([{ profile: 'me', update: u('a', 's1', 10, 11, 1) }]); // an older copy: a2 stays
  eq(again.length, 2, 'a newer queued version is not removed by an older delivery');
  await again.remove(again.list());
  eq((await new Queue(name).open()).length, 0, 'removed for good');
});

test('tracker: epochs on start, resume and seek; coalesced heartbeats; metadata once; superseded is silent', () => {
  const owner = { c: new Clock(), clock() { return this.c; } };
  const t = new Tracker(owner, { device: 'd', session: 's', video: 'v', meta: { title: 'T' }, playingIntervalMs: 10000 });
  const s = t.start(100000, 0, 600000);
  eq(s.epoch, s.seq, 'start opens an epoch');
  eq(s.title, 'T', 'metadata on the first update');
  eq(t.observe(105000, 5000), null, 'within the interval: nothing');
  const hb = t.observe(110500, 10500);
  ok(hb && hb.epoch === s.epoch && BigInt(hb.seq) > BigInt(s.seq), 'heartbeat: same epoch, larger seq');
  eq(hb.title, undefined, 'no metadata after the first');
  const back = t.observe(111000, 1000);
  ok(back && BigInt(back.epoch) > BigInt(s.epoch), 'a jump back is a seek: new epoch');
  const p = t.pause(112000, 2000);
  eq(p.state, 'paused', 'pause reported at once');
  eq(p.epoch, back.epoch, 'pause keeps the epoch');
  const r = t.play(113000, 2000);
  ok(BigInt(r.epoch) > BigInt(p.epoch), 'resume opens an epoch');
  t.superseded = true;
  eq(t.observe(200000, 90000), null, 'superseded: silent');
});

test('client: report, Playhead-HLC observed, resume sends Playhead-Seen', async () => {
  const sent = [];
  const c = await open({ fetch: (url, init) => { sent.push(init.headers); return fetch(url, init); } });
  const video = uniq('v');
  const t = c.tracker({ session: uniq('s'), video });
  const r = await c.report('me', t.start(c.nowMs(), 120000, 600000));
  eq(r.outcome, 'applied', 'outcome');
  ok(c.serverHLC > 0n, 'Playhead-HLC read (exposed header)');
  const cur = await c.resume('me', video);
  eq(cur.position_ms, 120000, 'resume');
  const seen = sent[sent.length - 1]['Playhead-Seen'];
  eq(seen, `${r.cursor.epoch} ${r.cursor.seq} ${r.cursor.session}`, 'Playhead-Seen of the write the device saw');
  eq(await c.resume('me', uniq('none')), null, 'no cursor: null');
});

test('client: offline updates queue and flush in true order in batches', async () => {
  const bodies = [];
  const c = await open({ fetch: (url, init) => { if (init.method === 'POST') bodies.push(JSON.parse(init.body)); return fetch(url, init); } });
  await c.setOffline(true);
  const vids = [uniq('a'), uniq('b'), uniq('c')];
  for (const v of vids) {
    const t = c.tracker({ session: uniq('s'), video: v });
    eq((await c.report('me', t.start(c.nowMs(), 100000, 600000))).outcome, 'queued', 'offline report');
  }
  eq(c.queued, 3, 'queued');
  await c.setOffline(false);
  await until(() => c.queued === 0, 'queue sent');
  eq(bodies.length, 1, 'one batch');
  eq(bodies[0].updates.map((u) => u.video).join(','), vids.join(','), 'true order');
  for (const v of vids) eq((await c.resume('me', v)).position_ms, 100000, `delivered ${v}`);
});

test('client: clock-skew recovery re-stamps and delivers', async () => {
  // The device clock is an hour ahead; the node refuses its first stamp.
  const c = await open({ now: () => Date.now() + 3600000 });
  const video = uniq('skew');
  const t = c.tracker({ session: uniq('s'), video });
  const r = await c.report('me', t.start(c.nowMs(), 100000, 600000));
  eq(r.outcome, 'applied', `outcome (${r.error && r.error.message})`);
  ok(Math.abs(physical(versionOf(r.cursor).seq) - Date.now()) < 60000, 're-stamped near the node clock');
  ok(Math.abs(c.nowMs() - Date.now()) < 5000, 'nowMs corrected by the node clock');
});

test('client: history controls and settings', async () => {
  const c = await open();
  const profile = uniq('p');
  const play = async (video) => {
    const t = c.tracker({ session: uniq('s'), video });
    eq((await c.report(profile, t.start(c.nowMs(), 100000, 600000))).outcome, 'applied', 'report');
  };
  await play('a'); await play('b'); await play('c');
  let h = await c.history(profile);
  eq(h.entries.length, 3, 'history');
  eq((await c.history(profile, { q: 'b' })).entries.length, 1, 'search');
  eq((await c.history(profile, { to: new Date(Date.now() - 86400000) })).entries.length, 0, 'date filter');
  await c.deleteEntry(profile, h.entries.find((e) => e.video === 'a').id);
  await c.deleteVideo(profile, 'b');
  h = await c.history(profile);
  eq(h.entries.map((e) => e.video).join(','), 'c', 'after deleting an entry and a video');
  ok((await c.resume(profile, 'a')) !== null, 'deleting an entry keeps the cursor');
  eq(await c.resume(profile, 'b'), null, 'deleting a video removes its cursor');
  await c.deleteAllHistory(profile);
  eq((await c.continueWatching(profile)).length, 0, 'delete all: row empty');
  eq(await c.historyPaused(profile), false, 'not paused');
  eq(await c.setHistoryPaused(profile, true), true, 'paused');
  await play('d');
  eq((await c.history(profile)).entries.length, 0, 'paused history adds nothing');
});

for (const transport of ['websocket', 'sse', 'longpoll']) {
  test(`push over ${transport}: cursors, takeover, cleared; pushes older than seen are dropped`, async () => {
    const profile = uniq('p');
    const tv = await open(), phone = await open({ transports: [transport], longPollWaitMs: 5000 });
    const got = [];
    const sub = phone.subscribe(profile, (ev) => got.push(ev));
    await until(() => sub.transport === transport, `${transport} connected`, 5000);
    const video = uniq('v');
    const t1 = tv.tracker({ session: uniq('tv'), video });
    await tv.report(profile, t1.start(tv.nowMs(), 100000, 600000));
    await until(() => got.some((e) => e.type === 'cursor' && e.cursor.video === video), 'cursor pushed');
    // The resume point stays where the subscription started: changes arrive
    // out of updated_hlc order, so the newest one seen is no resume point.
    ok(sub.after < parseHLC(got.find((e) => e.type === 'cursor').cursor.updated_hlc), 'resume point below the cursor pushed');
    const t2 = tv.tracker({ session: uniq('tv2'), video });
    await tv.report(profile, t2.start(tv.nowMs(), 50000, 600000));
    if (transport !== 'longpoll') {
      await until(() => got.some((e) => e.type === 'takeover' && e.session === t1.cfg.session), 'takeover pushed');
    }
    await until(() => got.filter((e) => e.type === 'cursor').length === 2, 'second cursor');
    await tv.deleteVideo(profile, video);
    await until(() => got.some((e) => e.type === 'cleared' && e.video === video), 'cleared pushed');
    // A push older than what the device was shown is dropped.
    const before = got.length;
    const old = { ...got.find((e) => e.type === 'cursor').cursor, updated_hlc: (c => c.toString())(parseHLC(got[got.length - 1].cursor?.updated_hlc || '0') + 10n ** 15n) };
    phone.observeCursor(profile, { ...old, epoch: (10n ** 19n).toString(), seq: (10n ** 19n).toString() });
    phone._deliver(sub, { type: 'cursor', cursor: old });
    eq(got.length, before, 'older push dropped');
    sub.close();
  });
}

test('push falls back when WebSockets fail, and tries them again later', async () => {
  const Real = window.WebSocket;
  class Broken { constructor() { setTimeout(() => this.onclose && this.onclose(), 0); } close() {} }
  window.WebSocket = Broken;
  const c = await open({ transports: ['websocket', 'longpoll'], wsFailuresBeforeFallback: 1, retryFirstTransportMs: 400, longPollWaitMs: 1000 });
  const sub = c.subscribe(uniq('p'), () => {});
  try {
    await until(() => sub.transport === 'longpoll', 'fell back to long-poll', 5000);
  } finally {
    window.WebSocket = Real;
  }
  await until(() => sub.transport === 'websocket', 'back on the WebSocket', 5000);
  sub.close();
});

window.results = [];
for (const t of tests) {
  try { await t.fn(); window.results.push({ name: t.name, ok: true }); } catch (e) { window.results.push({ name: t.name, ok: false, error: String(e && e.stack || e) }); }
}
window.done = true;
