// @ts-check
/**
 * The error-map overlay's colours. The server stores each map as 8-bit grey (0 = typical, 255 = the
 * 99.5th percentile of that image's reconstruction error). Drawn as grey over the radiograph it
 * dulls the whole image; coloured here, the typical bulk (a map's median is ~5-15) is transparent
 * and only what the model found hard to reconstruct shows, from red to yellow to white.
 */

/** Below this grey level the overlay is fully transparent. */
export const HEAT_FLOOR = 48;
/** At and above this level it is fully opaque (the slider's opacity still applies). */
export const HEAT_FULL = 200;

/** @param {number} x */
const clamp01 = (x) => Math.min(1, Math.max(0, x));

/**
 * RGBA for each grey level 0..255.
 * @returns {Uint8ClampedArray} 256 × 4 bytes
 */
export function heatLut() {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let v = 0; v < 256; v++) {
    const t = clamp01((v - HEAT_FLOOR) / (255 - HEAT_FLOOR));
    lut[v * 4] = 255;
    lut[v * 4 + 1] = Math.round(255 * clamp01(t / 0.7));
    lut[v * 4 + 2] = Math.round(255 * clamp01((t - 0.8) / 0.2));
    lut[v * 4 + 3] = Math.round(255 * clamp01((v - HEAT_FLOOR) / (HEAT_FULL - HEAT_FLOOR)));
  }
  return lut;
}

/**
 * Colours a grey error map in place (RGBA pixels as read from a canvas). A map that already has
 * colour (any sampled pixel with R, G and B unequal) is left as it is.
 * @param {Uint8ClampedArray} rgba
 * @returns {boolean} whether it was coloured
 */
export function colourizeHeat(rgba) {
  const n = rgba.length / 4;
  const stride = Math.max(1, Math.floor(n / 4096));
  for (let i = 0; i < n; i += stride) {
    const o = i * 4;
    if (rgba[o] !== rgba[o + 1] || rgba[o] !== rgba[o + 2]) return false;
  }
  const lut = heatLut();
  for (let o = 0; o < rgba.length; o += 4) {
    const v = rgba[o] * 4;
    rgba[o] = lut[v];
    rgba[o + 1] = lut[v + 1];
    rgba[o + 2] = lut[v + 2];
    rgba[o + 3] = Math.round((lut[v + 3] * rgba[o + 3]) / 255);
  }
  return true;
}
