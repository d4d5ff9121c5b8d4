// @ts-check
/**
 * Plain geometry: boxes in image pixels (hit tests, handles, move, resize, clamping) and the view
 * transform between image pixels and screen pixels under zoom, pan, rotation and flips.
 *
 * Screen = translate(vw/2 + panX, vh/2 + panY) · scale(zoom) · rotate(rotation·90° cw) · flip · (p − centre).
 */

/** @typedef {import("./types.js").Box} Box */
/** @typedef {import("./types.js").Handle} Handle */
/** @typedef {import("./types.js").View} View */
/** @typedef {{x: number, y: number}} Point */

export const HANDLES = /** @type {Handle[]} */ (["nw", "n", "ne", "e", "se", "s", "sw", "w"]);

/**
 * @param {number} x0
 * @param {number} y0
 * @param {number} x1
 * @param {number} y1
 * @returns {Box} the box with ordered corners
 */
export function normalize(x0, y0, x1, y1) {
  return { x0: Math.min(x0, x1), y0: Math.min(y0, y1), x1: Math.max(x0, x1), y1: Math.max(y0, y1) };
}

/**
 * @param {Box} b
 * @param {number} w image width
 * @param {number} h image height
 * @returns {Box} the box clipped to the image
 */
export function clampBox(b, w, h) {
  const c = (/** @type {number} */ v, /** @type {number} */ hi) => Math.min(Math.max(v, 0), hi);
  return normalize(c(b.x0, w), c(b.y0, h), c(b.x1, w), c(b.y1, h));
}

/**
 * @param {Box} b
 * @param {Point} p
 * @param {number} [tol] tolerance in image pixels
 * @returns {boolean}
 */
export function contains(b, p, tol = 0) {
  return p.x >= b.x0 - tol && p.x <= b.x1 + tol && p.y >= b.y0 - tol && p.y <= b.y1 + tol;
}

/**
 * @param {Box} b
 * @param {Handle} h
 * @returns {Point} where a handle sits
 */
export function handlePoint(b, h) {
  const cx = (b.x0 + b.x1) / 2;
  const cy = (b.y0 + b.y1) / 2;
  const x = h.includes("w") ? b.x0 : h.includes("e") ? b.x1 : cx;
  const y = h.startsWith("n") ? b.y0 : h.startsWith("s") ? b.y1 : cy;
  return { x, y };
}

/**
 * @param {Box} b
 * @param {Point} p
 * @param {number} tol tolerance in image pixels (screen tolerance / zoom)
 * @returns {Handle|null} the handle under the point, corners first
 */
export function hitHandle(b, p, tol) {
  for (const h of HANDLES) {
    const q = handlePoint(b, h);
    if (Math.abs(q.x - p.x) <= tol && Math.abs(q.y - p.y) <= tol) return h;
  }
  return null;
}

/**
 * The topmost (last) smallest box containing the point: nested boxes stay reachable.
 * @template {Box} T
 * @param {T[]} boxes
 * @param {Point} p
 * @param {number} [tol]
 * @returns {T|null}
 */
export function hitBox(boxes, p, tol = 0) {
  /** @type {T|null} */
  let best = null;
  let bestArea = Infinity;
  for (let i = boxes.length - 1; i >= 0; i--) {
    const b = boxes[i];
    if (!contains(b, p, tol)) continue;
    const area = (b.x1 - b.x0) * (b.y1 - b.y0);
    if (area < bestArea) {
      best = b;
      bestArea = area;
    }
  }
  return best;
}

/**
 * @param {Box} b
 * @param {number} dx
 * @param {number} dy
 * @param {number} w image width (the box is kept inside)
 * @param {number} h image height
 * @returns {Box}
 */
export function moveBox(b, dx, dy, w, h) {
  const bw = b.x1 - b.x0;
  const bh = b.y1 - b.y0;
  const x0 = Math.min(Math.max(b.x0 + dx, 0), Math.max(w - bw, 0));
  const y0 = Math.min(Math.max(b.y0 + dy, 0), Math.max(h - bh, 0));
  return { x0, y0, x1: x0 + bw, y1: y0 + bh };
}

/**
 * Drags one handle to a point; dragging past the opposite edge flips the box instead of
 * inverting it, and the result is clipped to the image.
 * @param {Box} b
 * @param {Handle} h
 * @param {Point} p
 * @param {number} w
 * @param {number} hgt
 * @returns {Box}
 */
export function resizeBox(b, h, p, w, hgt) {
  let { x0, y0, x1, y1 } = b;
  if (h.includes("w")) x0 = p.x;
  if (h.includes("e")) x1 = p.x;
  if (h.startsWith("n")) y0 = p.y;
  if (h.startsWith("s")) y1 = p.y;
  return clampBox(normalize(x0, y0, x1, y1), w, hgt);
}

/**
 * @param {Box} a
 * @param {Box} b
 * @param {number} [tol] pixels
 * @returns {boolean} whether two boxes are the same within a tolerance
 */
export function sameBox(a, b, tol = 0.5) {
  return (
    Math.abs(a.x0 - b.x0) <= tol && Math.abs(a.y0 - b.y0) <= tol && Math.abs(a.x1 - b.x1) <= tol && Math.abs(a.y1 - b.y1) <= tol
  );
}

/**
 * @param {Point} a
 * @param {Point} b
 * @param {number|null|undefined} spacingRow mm per pixel along y
 * @param {number|null|undefined} spacingCol mm per pixel along x
 * @returns {{px: number, mm: number|null}} a length in pixels, and in mm when the spacing is known
 */
export function length(a, b, spacingRow, spacingCol) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const px = Math.hypot(dx, dy);
  const mm = spacingRow && spacingCol ? Math.hypot(dx * spacingCol, dy * spacingRow) : null;
  return { px, mm };
}

/**
 * The linear part of the view transform as a 2×2 matrix [a, b, c, d] (screen = M · image).
 * @param {View} v
 * @returns {[number, number, number, number]}
 */
function linear(v) {
  // Flip first (in image space), then rotate clockwise by quarter turns (y points down on screen).
  const fx = v.flipH ? -1 : 1;
  const fy = v.flipV ? -1 : 1;
  const r = ((v.rotation % 4) + 4) % 4;
  const cos = [1, 0, -1, 0][r];
  const sin = [0, 1, 0, -1][r];
  // Rotation (cw on screen, y down) [cos -sin; sin cos] times diag(fx, fy).
  return [cos * fx * v.zoom, -sin * fy * v.zoom, sin * fx * v.zoom, cos * fy * v.zoom];
}

/**
 * The full transform as canvas `setTransform(a, b, c, d, e, f)` arguments.
 * @param {View} v
 * @returns {[number, number, number, number, number, number]}
 */
export function viewMatrix(v) {
  const [m00, m01, m10, m11] = linear(v);
  const cx = v.iw / 2;
  const cy = v.ih / 2;
  const tx = v.vw / 2 + v.panX - (m00 * cx + m01 * cy);
  const ty = v.vh / 2 + v.panY - (m10 * cx + m11 * cy);
  // Canvas order: x' = a·x + c·y + e, y' = b·x + d·y + f.
  return [m00, m10, m01, m11, tx, ty];
}

/**
 * @param {View} v
 * @param {Point} p image pixels
 * @returns {Point} screen pixels
 */
export function toScreen(v, p) {
  const [a, b, c, d, e, f] = viewMatrix(v);
  return { x: a * p.x + c * p.y + e, y: b * p.x + d * p.y + f };
}

/**
 * @param {View} v
 * @param {Point} s screen pixels
 * @returns {Point} image pixels
 */
export function toImage(v, s) {
  const [a, b, c, d, e, f] = viewMatrix(v);
  const det = a * d - b * c;
  const x = s.x - e;
  const y = s.y - f;
  return { x: (d * x - c * y) / det, y: (-b * x + a * y) / det };
}

/**
 * @param {View} v
 * @returns {number} the zoom that fits the whole (rotated) image in the viewport
 */
export function fitZoom(v) {
  const quarter = ((v.rotation % 4) + 4) % 4 === 1 || ((v.rotation % 4) + 4) % 4 === 3;
  const w = quarter ? v.ih : v.iw;
  const h = quarter ? v.iw : v.ih;
  return Math.min(v.vw / w, v.vh / h);
}

/**
 * Zooms by a factor keeping the image point under the screen point fixed.
 * @param {View} v
 * @param {number} factor
 * @param {Point} s screen point
 * @returns {View}
 */
export function zoomAt(v, factor, s) {
  const zoom = Math.min(Math.max(v.zoom * factor, 0.02), 40);
  const p = toImage(v, s);
  const next = { ...v, zoom };
  const q = toScreen(next, p);
  return { ...next, panX: next.panX + (s.x - q.x), panY: next.panY + (s.y - q.y) };
}

/**
 * The image rectangle visible in the viewport (clipped to the image), in image pixels.
 * @param {View} v
 * @returns {Box}
 */
export function visibleRect(v) {
  const corners = [
    toImage(v, { x: 0, y: 0 }),
    toImage(v, { x: v.vw, y: 0 }),
    toImage(v, { x: 0, y: v.vh }),
    toImage(v, { x: v.vw, y: v.vh }),
  ];
  const xs = corners.map((c) => c.x);
  const ys = corners.map((c) => c.y);
  return clampBox(
    { x0: Math.floor(Math.min(...xs)), y0: Math.floor(Math.min(...ys)), x1: Math.ceil(Math.max(...xs)), y1: Math.ceil(Math.max(...ys)) },
    v.iw,
    v.ih,
  );
}

/** Height of a box's name tag on screen (px). */
export const TAG_H = 16;

/**
 * Where a box's name tag goes on screen: its bottom edge at `y` (above the box's top-left corner),
 * or, when that would cover a tag already placed in this frame, one tag height lower at a time (into
 * the box), so that tags of boxes starting near each other stay readable. Gives up after `tries`
 * and keeps `y`.
 * @param {number} x
 * @param {number} y the tag's bottom edge as wanted
 * @param {number} w the tag's width
 * @param {{x: number, y: number, w: number, h: number}[]} placed tags drawn so far (their rectangles)
 * @param {number} [tries]
 * @returns {number} the bottom edge to draw at
 */
export function placeTag(x, y, w, placed, tries = 6) {
  const free = (/** @type {number} */ yy) =>
    placed.every((r) => x + w <= r.x || r.x + r.w <= x || yy <= r.y || r.y + r.h <= yy - TAG_H);
  for (let k = 0; k < tries; k++) {
    const yy = y + k * TAG_H;
    if (free(yy)) return yy;
  }
  return y;
}
