// Tracker follows one playback session of one video and decides what to
// report and when, as client/tracker.go does: a state machine fed what the
// player does, always with the time, returning the update to send or null.
// Versions: seq is a fresh HLC of the client's clock; a new epoch (epoch =
// seq) opens at start, on resume after a pause, on a seek (explicit, or a
// position playback cannot explain). Coalescing: while playing, at most one
// update per playingIntervalMs (endingIntervalMs in the last endingShare of
// the video); at once on start, pause, play, seek, stop and completion.

/**
 * @typedef {object} TrackerConfig
 * @property {string} device
 * @property {string} session a new id for each playback start
 * @property {string} video
 * @property {{title?: string, series_id?: string, next_video?: string}} [meta] sent with the first update
 * @property {number} [playingIntervalMs] default 10000
 * @property {number} [endingIntervalMs] default 2000
 * @property {number} [endingShare] default 0.05
 * @property {number} [seekToleranceMs] default 5000
 * @property {number} [maxPlaybackRate] default 2
 */

export class Tracker {
  /** @param {{clock: () => import('./hlc.js').Clock}} owner @param {TrackerConfig} cfg */
  constructor(owner, cfg) {
    this.owner = owner;
    this.cfg = { playingIntervalMs: 10000, endingIntervalMs: 2000, endingShare: 0.05, seekToleranceMs: 5000, maxPlaybackRate: 2, ...cfg };
    this.state = 'stopped';
    this.epoch = 0n;
    this.positionMs = 0;
    this.durationMs = 0;
    this.lastAt = 0; // time of the last observation
    this.sentAt = -Infinity;
    this.metaSent = false;
    /** True once another session took this video over: nothing more is reported. */
    this.superseded = false;
  }

  /** Playback starts at positionMs of a video durationMs long. */
  start(nowMs, positionMs, durationMs) {
    this.durationMs = durationMs;
    return this.#emit(nowMs, positionMs, 'playing', true);
  }
  play(nowMs, positionMs = this.#explained(nowMs)) { return this.#emit(nowMs, positionMs, 'playing', this.state !== 'playing'); }
  pause(nowMs, positionMs = this.#explained(nowMs)) { return this.#emit(nowMs, positionMs, 'paused', false); }
  seekTo(nowMs, positionMs) { return this.#emit(nowMs, positionMs, this.state === 'stopped' ? 'paused' : this.state, true); }
  stop(nowMs, positionMs = this.#explained(nowMs)) { return this.#emit(nowMs, positionMs, 'stopped', false); }
  complete(nowMs) { return this.#emit(nowMs, this.durationMs, 'completed', false); }

  /** The player reports where it is; an update comes only when one is due. */
  observe(nowMs, positionMs) {
    if (this.state !== 'playing' || this.superseded) return null;
    const elapsed = Math.max(0, nowMs - this.lastAt);
    const delta = positionMs - this.positionMs;
    const tol = this.cfg.seekToleranceMs;
    if (delta < -tol || delta > elapsed * this.cfg.maxPlaybackRate + tol) return this.#emit(nowMs, positionMs, 'playing', true);
    const ending = positionMs >= this.durationMs * (1 - this.cfg.endingShare);
    const every = ending ? this.cfg.endingIntervalMs : this.cfg.playingIntervalMs;
    this.positionMs = positionMs;
    this.lastAt = nowMs;
    if (nowMs < this.sentAt || nowMs - this.sentAt >= every) return this.#emit(nowMs, positionMs, 'playing', false);
    return null;
  }

  #explained(nowMs) {
    if (this.state !== 'playing') return this.positionMs;
    return Math.min(this.durationMs, this.positionMs + Math.max(0, nowMs - this.lastAt));
  }

  #emit(nowMs, positionMs, state, newEpoch) {
    if (this.superseded) return null;
    const pos = Math.max(0, Math.min(Math.round(positionMs), this.durationMs));
    if (!newEpoch && state === this.state && state !== 'playing' && pos === this.positionMs) return null;
    const resume = state === 'playing' && this.state !== 'playing';
    const seq = this.owner.clock().now(nowMs);
    if (newEpoch || resume || this.epoch === 0n || seq < this.epoch) this.epoch = seq;
    this.state = state;
    this.positionMs = pos;
    this.lastAt = nowMs;
    this.sentAt = nowMs;
    const u = {
      video: this.cfg.video, position_ms: pos, duration_ms: this.durationMs, device: this.cfg.device,
      session: this.cfg.session, state, epoch: this.epoch.toString(), seq: seq.toString(),
    };
    if (!this.metaSent && this.cfg.meta) Object.assign(u, this.cfg.meta);
    this.metaSent = true;
    return u;
  }
}
