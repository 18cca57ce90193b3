// Hybrid logical clock, as crdt/hlc.go: physical milliseconds in the high
// 48 bits, a logical counter in the low 16. HLCs are BigInts here and
// decimal strings on the wire (JavaScript numbers cannot hold 64 bits).

/** @typedef {bigint} HLC */

/** @param {number} physicalMs @param {number} [logical] @returns {HLC} */
export function makeHLC(physicalMs, logical = 0) {
  return (BigInt(Math.max(0, Math.floor(physicalMs))) << 16n) | BigInt(logical & 0xffff);
}

/** @param {HLC} h @returns {number} physical milliseconds */
export function physical(h) { return Number(h >> 16n); }

/** @param {string|number|bigint|undefined|null} v @returns {HLC} 0n for empty */
export function parseHLC(v) {
  if (v === undefined || v === null || v === '') return 0n;
  const s = String(v);
  if (!/^[0-9]{1,20}$/.test(s)) throw new Error(`playhead: ${s} is not an HLC`);
  return BigInt(s);
}

/** @param {...HLC} xs @returns {HLC} */
export function maxHLC(...xs) { return xs.reduce((a, b) => (b > a ? b : a), 0n); }

/**
 * A version orders writes: (epoch, seq, session), compared left to right.
 * @typedef {{epoch: HLC, seq: HLC, session: string}} Version
 */

/** @param {Version} a @param {Version} b @returns {number} -1, 0 or 1 */
export function compareVersions(a, b) {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return a.session < b.session ? -1 : a.session > b.session ? 1 : 0;
}

/** The version of a cursor or update as the node sends it (decimal strings). */
export function versionOf(c) {
  return { epoch: parseHLC(c.epoch), seq: parseHLC(c.seq), session: c.session || '' };
}

/** Clock is the device's HLC. It never reads the wall clock: callers pass time in. */
export class Clock {
  /** @param {HLC} [start] */
  constructor(start = 0n) { /** @type {HLC} */ this.last = start; }
  /** A fresh timestamp, above every one issued or observed. @param {number} physicalMs */
  now(physicalMs) {
    const p = makeHLC(physicalMs);
    this.last = p > this.last ? p : this.last + 1n;
    return this.last;
  }
  /** Keep the clock above a timestamp seen elsewhere. @param {HLC} remote */
  observe(remote) { if (remote > this.last) this.last = remote; }
}
