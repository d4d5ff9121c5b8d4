// @ts-check
/**
 * Half-resolution copies of the 16-bit image (2×2 means), so window/level at a zoom below 1:1
 * touches about as many pixels as the screen shows instead of all 6.6 million of a 2880×2304 film.
 */

/** @typedef {{width: number, height: number, data: Uint16Array}} Level */

/**
 * @param {Level} src
 * @returns {Level} the next level down (ceil halves; edge pixels average what exists)
 */
export function halve(src) {
  const w = Math.ceil(src.width / 2);
  const h = Math.ceil(src.height / 2);
  const out = new Uint16Array(w * h);
  const sw = src.width;
  const sh = src.height;
  const d = src.data;
  for (let y = 0; y < h; y++) {
    const y0 = 2 * y;
    const y1 = Math.min(y0 + 1, sh - 1);
    for (let x = 0; x < w; x++) {
      const x0 = 2 * x;
      const x1 = Math.min(x0 + 1, sw - 1);
      out[y * w + x] = (d[y0 * sw + x0] + d[y0 * sw + x1] + d[y1 * sw + x0] + d[y1 * sw + x1] + 2) >> 2;
    }
  }
  return { width: w, height: h, data: out };
}

export class Pyramid {
  /** @param {Level} base */
  constructor(base) {
    /** @type {Level[]} */
    this.levels = [base];
  }

  /**
   * The level whose pixels are at most one screen pixel wide at this zoom (built on demand).
   * @param {number} devicePixelsPerImagePixel zoom × devicePixelRatio
   * @returns {{level: Level, index: number}}
   */
  forZoom(devicePixelsPerImagePixel) {
    let index = 0;
    while (devicePixelsPerImagePixel * 2 ** (index + 1) <= 1 && index < 6) index++;
    while (this.levels.length <= index) {
      const last = this.levels[this.levels.length - 1];
      if (last.width <= 64 || last.height <= 64) break;
      this.levels.push(halve(last));
    }
    index = Math.min(index, this.levels.length - 1);
    return { level: this.levels[index], index };
  }
}
