// @ts-check
/**
 * Window/level on 16-bit data through a lookup table: one packed RGBA word per stored value, so
 * applying a new window is 65,536 table writes plus one read per displayed pixel.
 */

/** @typedef {import("./types.js").WindowLevel} WindowLevel */

export const LUT_SIZE = 65536;

/**
 * DICOM-style linear window (PS3.3 C.11.2.1.2, simplified to the continuous form).
 * @param {number} value stored value
 * @param {number} center
 * @param {number} width
 * @returns {number} display value 0..255
 */
export function windowValue(value, center, width) {
  const w = Math.max(width, 1);
  const lo = center - w / 2;
  const t = (value - lo) / w;
  if (t <= 0) return 0;
  if (t >= 1) return 255;
  return Math.round(t * 255);
}

/**
 * Fills (or creates) a table of packed little-endian RGBA grey pixels for a window.
 * @param {WindowLevel} wl
 * @param {Uint32Array} [out]
 * @returns {Uint32Array}
 */
export function buildLut(wl, out) {
  const lut = out ?? new Uint32Array(LUT_SIZE);
  const w = Math.max(wl.width, 1);
  const lo = wl.center - w / 2;
  const scale = 255 / w;
  for (let v = 0; v < LUT_SIZE; v++) {
    let g = (v - lo) * scale;
    g = g <= 0 ? 0 : g >= 255 ? 255 : Math.round(g);
    if (wl.invert) g = 255 - g;
    // ImageData bytes are R, G, B, A; read as a little-endian word that is A<<24 | B<<16 | G<<8 | R.
    lut[v] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;
  }
  return lut;
}

/**
 * Applies the table to a rectangle of 16-bit pixels, writing packed RGBA words.
 * @param {Uint16Array} src row-major pixels of a `srcWidth`-wide image
 * @param {number} srcWidth
 * @param {number} x0 rectangle left
 * @param {number} y0 rectangle top
 * @param {number} w rectangle width
 * @param {number} h rectangle height
 * @param {Uint32Array} lut
 * @param {Uint32Array} out at least w*h words
 */
export function applyLut(src, srcWidth, x0, y0, w, h, lut, out) {
  let o = 0;
  for (let y = 0; y < h; y++) {
    let i = (y0 + y) * srcWidth + x0;
    const end = i + w;
    while (i < end) out[o++] = lut[src[i++]];
  }
}

/**
 * Presets in fractions of the image's stored range, because display PNGs are rescaled per image
 * (absolute Hounsfield-like numbers mean nothing on radiographs): bone is narrow and high,
 * soft tissue wide and lower.
 * @param {string} name "bone" | "soft" | "full" | "auto"
 * @param {{min: number, max: number, p1?: number, p99?: number, center?: number|null, width?: number|null}} stats
 * @returns {{center: number, width: number}}
 */
export function preset(name, stats) {
  const lo = stats.min;
  const hi = Math.max(stats.max, lo + 1);
  const range = hi - lo;
  switch (name) {
    case "bone":
      return { center: lo + 0.7 * range, width: 0.45 * range };
    case "soft":
      return { center: lo + 0.4 * range, width: 0.6 * range };
    case "full":
      return { center: (lo + hi) / 2, width: range };
    default: {
      if (stats.center != null && stats.width != null && stats.width > 0) return { center: stats.center, width: stats.width };
      const p1 = stats.p1 ?? lo;
      const p99 = Math.max(stats.p99 ?? hi, p1 + 1);
      return { center: (p1 + p99) / 2, width: p99 - p1 };
    }
  }
}

/**
 * Min, max and 1st/99th percentiles from a histogram of (a sample of) the pixels.
 * @param {Uint16Array} data
 * @param {number} [step] sample every `step`-th pixel
 * @returns {{min: number, max: number, p1: number, p99: number}}
 */
export function stats(data, step = 7) {
  const hist = new Uint32Array(LUT_SIZE);
  let n = 0;
  let min = 65535;
  let max = 0;
  for (let i = 0; i < data.length; i += step) {
    const v = data[i];
    hist[v]++;
    n++;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (n === 0) return { min: 0, max: 65535, p1: 0, p99: 65535 };
  const q = (/** @type {number} */ frac) => {
    const target = frac * n;
    let acc = 0;
    for (let v = 0; v < LUT_SIZE; v++) {
      acc += hist[v];
      if (acc >= target) return v;
    }
    return max;
  };
  return { min, max, p1: q(0.01), p99: q(0.99) };
}

/**
 * A mouse drag → new window: horizontal changes width, vertical changes level (up = brighter
 * window centre lower), scaled to the stored range so a drag across the screen spans it.
 * @param {{center: number, width: number}} start
 * @param {number} dx screen pixels
 * @param {number} dy screen pixels
 * @param {number} range stored range (max − min)
 * @returns {{center: number, width: number}}
 */
export function dragWindow(start, dx, dy, range) {
  const k = Math.max(range, 1) / 600;
  return { center: start.center + dy * k, width: Math.max(1, start.width + dx * k * 2) };
}
