// @ts-check
/**
 * Time spent on the image: counts only while the page is visible. Each save takes the time
 * accumulated since the previous save, so the annotations of an image add up to the time spent.
 */

export class TimeSpent {
  /** @param {() => number} [now] */
  constructor(now) {
    this.now = now ?? (() => performance.now());
    this.banked = 0;
    /** @type {number|null} */
    this.since = this.now();
  }

  pause() {
    if (this.since !== null) this.banked += this.now() - this.since;
    this.since = null;
  }

  resume() {
    if (this.since === null) this.since = this.now();
  }

  /** @returns {number} whole milliseconds since the last take, and restarts the count */
  take() {
    const t = this.now();
    const ms = this.banked + (this.since !== null ? t - this.since : 0);
    this.banked = 0;
    if (this.since !== null) this.since = t;
    return Math.max(0, Math.round(ms));
  }
}
