// The offline queue: updates not yet delivered, kept in IndexedDB across
// page reloads, coalesced to the newest version per (profile, video,
// session), replayed in true order (by version). Without IndexedDB (old
// browsers, private modes) it is kept in memory and says so.

import { compareVersions, versionOf } from './hlc.js';

/** @typedef {{profile: string, update: object}} Pending */

const STORE = 'updates';

/** @param {Pending} p */
function keyOf(p) { return `${p.profile}\u0000${p.update.video}\u0000${p.update.session}`; }

export class Queue {
  /**
   * @param {string} name IndexedDB database name (one per device)
   * @param {number} [limit] most updates kept; beyond it the oldest is dropped
   */
  constructor(name, limit = 10000) {
    this.name = name;
    this.limit = limit;
    /** @type {Map<string, Pending>} */
    this.items = new Map();
    /** @type {IDBDatabase|null} */
    this.db = null;
    this.persistent = false;
  }

  /** Opens the database and loads what an earlier page left. */
  async open() {
    if (typeof indexedDB === 'undefined') return this;
    try {
      this.db = await new Promise((resolve, reject) => {
        const req = indexedDB.open(this.name, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE);
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const all = await this.#tx('readonly', (s) => s.getAll());
      for (const p of all || []) this.items.set(keyOf(p), p);
      this.persistent = true;
    } catch (e) {
      this.db = null; // memory only
    }
    return this;
  }

  /** @param {'readonly'|'readwrite'} mode @param {(s: IDBObjectStore) => IDBRequest|void} fn */
  #tx(mode, fn) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  get length() { return this.items.size; }

  /** Queues an update; an older version of the same session's video is replaced. @param {Pending} p */
  async add(p) {
    const k = keyOf(p);
    const old = this.items.get(k);
    if (old && compareVersions(versionOf(old.update), versionOf(p.update)) >= 0) return;
    this.items.set(k, p);
    const dropped = [];
    while (this.items.size > this.limit) {
      const oldest = this.list()[0];
      this.items.delete(keyOf(oldest));
      dropped.push(keyOf(oldest));
    }
    if (this.db) {
      await this.#tx('readwrite', (s) => { s.put(p, k); for (const d of dropped) s.delete(d); });
    }
  }

  /** Removes delivered updates (a newer version queued meanwhile stays). @param {Pending[]} done */
  async remove(done) {
    const gone = [];
    for (const p of done) {
      const k = keyOf(p);
      const cur = this.items.get(k);
      if (cur && compareVersions(versionOf(cur.update), versionOf(p.update)) <= 0) {
        this.items.delete(k);
        gone.push(k);
      }
    }
    if (this.db && gone.length) await this.#tx('readwrite', (s) => { for (const k of gone) s.delete(k); });
  }

  /** Replaces queued updates (re-stamped after a clock reset). @param {Pending[]} ps */
  async replace(ps) {
    for (const p of ps) this.items.set(keyOf(p), p);
    if (this.db && ps.length) await this.#tx('readwrite', (s) => { for (const p of ps) s.put(p, keyOf(p)); });
  }

  /** Every queued update in true order: by version, then profile and video. @returns {Pending[]} */
  list() {
    return [...this.items.values()].sort((a, b) =>
      compareVersions(versionOf(a.update), versionOf(b.update)) ||
      (a.profile < b.profile ? -1 : a.profile > b.profile ? 1 : 0) ||
      (a.update.video < b.update.video ? -1 : a.update.video > b.update.video ? 1 : 0));
  }
}
