// @ts-check
/**
 * Draws the view on one canvas once per animation frame when something changed: the windowed
 * image (LUT applied only to the visible part of the right pyramid level, cached until the window
 * or the visible part changes), the error-map overlay, boxes, suggestions, the box being drawn
 * and the measurement.
 */

import { HANDLES, TAG_H, handlePoint, length, placeTag, toScreen, viewMatrix, visibleRect } from "./geometry.js";
import { applyLut, buildLut } from "./lut.js";
import { Pyramid } from "./pyramid.js";
import { formatScore } from "./score.js";

/** @typedef {import("./store.js").Store} Store */

const REDRAW_TOPICS = ["view", "wl", "image", "annotations", "suggestions", "selection", "overlay", "measure", "render"];
const LABEL_COLOURS = ["#4fc3f7", "#ffb74d", "#81c784", "#f06292", "#ba68c8", "#e6ee9c", "#90a4ae"];

/**
 * @param {string[]} labels
 * @param {string} label
 * @returns {string}
 */
export function labelColour(labels, label) {
  const i = labels.indexOf(label);
  return LABEL_COLOURS[(i < 0 ? labels.length : i) % LABEL_COLOURS.length];
}

export class Renderer {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {Store} store
   */
  constructor(canvas, store) {
    this.canvas = canvas;
    this.store = store;
    const ctx = canvas.getContext("2d", { alpha: false });
    if (!ctx) throw new Error("no 2D canvas");
    this.ctx = ctx;
    this.layer = document.createElement("canvas");
    const lctx = this.layer.getContext("2d");
    if (!lctx) throw new Error("no 2D canvas");
    this.lctx = lctx;
    this.lut = new Uint32Array(65536);
    this.lutKey = "";
    this.layerKey = "";
    /** @type {Pyramid|null} */
    this.pyramid = null;
    /** @type {ImageData|null} */
    this.imageData = null;
    /** @type {CanvasImageSource|null} the error map, coloured (heatmap.js) */
    this.overlay = null;
    /** @type {{x: number, y: number, w: number, h: number}[]} name tags drawn in this frame */
    this.tags = [];
    this.scheduled = false;
    this.dpr = 1;
    /** Frame timings for the performance report: [start, end] in ms since navigation. */
    /** @type {number[]} */
    this.frameTimes = [];
    this.frames = 0;
    this.imageShown = false;
    /** Time spent per phase (ms, summed) for the performance report. */
    this.phases = { lut: 0, put: 0, layers: 0 };
    // Only what changes the picture; pointer moves (readout), saves and notices do not.
    for (const t of REDRAW_TOPICS) store.on(t, () => this.request());
  }

  /** Asks for a redraw on the next animation frame (coalesced). */
  request() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.draw();
    });
  }

  /** Matches the canvas to its box and the device pixel ratio; updates the view size. */
  resize() {
    const rect = this.canvas.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(rect.width * this.dpr));
    this.canvas.height = Math.max(1, Math.round(rect.height * this.dpr));
    const v = this.store.state.view;
    v.vw = rect.width;
    v.vh = rect.height;
    this.layerKey = "";
  }

  draw() {
    const t0 = performance.now();
    const { ctx, store } = this;
    const s = store.state;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (s.image) {
      this.drawImage();
      if (this.overlay && s.overlay.visible) {
        const [a, b, c, d, e, f] = viewMatrix(s.view);
        const r = this.dpr;
        ctx.setTransform(a * r, b * r, c * r, d * r, e * r, f * r);
        ctx.globalAlpha = s.overlay.opacity;
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(this.overlay, 0, 0, s.view.iw, s.view.ih);
        ctx.globalAlpha = 1;
      }
      ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      this.drawShapes();
    }
    const t1 = performance.now();
    this.frames += 1;
    this.frameTimes.push(t0, t1);
    if (this.frameTimes.length > 2000) this.frameTimes.splice(0, 1000);
    if (!this.imageShown && s.image) {
      this.imageShown = true;
      performance.mark("skelex:first-image-frame");
      store.emit("first-frame", t1);
    }
  }

  drawImage() {
    const s = this.store.state;
    const img = /** @type {NonNullable<typeof s.image>} */ (s.image);
    if (!this.pyramid) this.pyramid = new Pyramid({ width: img.width, height: img.height, data: img.data });
    const lutKey = `${s.wl.center}|${s.wl.width}|${s.wl.invert}`;
    if (lutKey !== this.lutKey) {
      buildLut(s.wl, this.lut);
      this.lutKey = lutKey;
    }
    // While the window is being dragged, one level coarser (a quarter of the pixels) keeps the
    // drag fluid; releasing the button redraws at full detail.
    const detail = s.interacting ? 0.5 : 1;
    const { level, index } = this.pyramid.forZoom(s.view.zoom * this.dpr * detail);
    const scale = 2 ** index;
    const r = visibleRect(s.view);
    const lx0 = Math.max(0, Math.floor(r.x0 / scale));
    const ly0 = Math.max(0, Math.floor(r.y0 / scale));
    const lx1 = Math.min(level.width, Math.ceil(r.x1 / scale));
    const ly1 = Math.min(level.height, Math.ceil(r.y1 / scale));
    const w = lx1 - lx0;
    const h = ly1 - ly0;
    if (w <= 0 || h <= 0) return;
    const key = `${lutKey}|${index}|${lx0},${ly0},${w},${h}`;
    if (key !== this.layerKey) {
      if (!this.imageData || this.imageData.width !== w || this.imageData.height !== h) {
        this.imageData = new ImageData(w, h);
        this.layer.width = w;
        this.layer.height = h;
      }
      const out = new Uint32Array(this.imageData.data.buffer);
      const t0 = performance.now();
      applyLut(level.data, level.width, lx0, ly0, w, h, this.lut, out);
      const t1 = performance.now();
      this.lctx.putImageData(this.imageData, 0, 0);
      this.phases.lut += t1 - t0;
      this.phases.put += performance.now() - t1;
      this.phases.layers += 1;
      this.layerKey = key;
    }
    const [a, b, c, d, e, f] = viewMatrix(s.view);
    const dpr = this.dpr;
    this.ctx.setTransform(a * dpr, b * dpr, c * dpr, d * dpr, e * dpr, f * dpr);
    // Smooth when minified or mildly magnified; show real pixels when zoomed far in.
    this.ctx.imageSmoothingEnabled = s.view.zoom < 3;
    this.ctx.drawImage(this.layer, 0, 0, w, h, lx0 * scale, ly0 * scale, w * scale, h * scale);
  }

  /**
   * @param {{x0: any, y0: any, x1: any, y1: any}} b
   * @returns {{x: number, y: number, w: number, h: number}} the box on screen
   */
  screenRect(b) {
    const v = this.store.state.view;
    const p = toScreen(v, { x: b.x0, y: b.y0 });
    const q = toScreen(v, { x: b.x1, y: b.y1 });
    return { x: Math.min(p.x, q.x), y: Math.min(p.y, q.y), w: Math.abs(q.x - p.x), h: Math.abs(q.y - p.y) };
  }

  drawShapes() {
    const { ctx, store } = this;
    const s = store.state;
    const labels = store.config.schema?.box_labels ?? [];
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    this.tags = [];
    for (const sg of store.pendingSuggestions()) {
      const r = this.screenRect(sg);
      const selected = s.selected === `s${sg.id}`;
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = selected ? 2.5 : 1.5;
      ctx.strokeStyle = selected ? "#ffee58" : "#fdd835";
      ctx.strokeRect(r.x, r.y, r.w, r.h);
      ctx.setLineDash([]);
      this.tag(`${sg.label || "suggestion"} ${formatScore(sg)}`, r.x, r.y, "#fdd835");
      if (selected) this.handles(sg);
    }
    for (const a of store.boxes()) {
      const r = this.screenRect(a);
      const colour = labelColour(labels, a.label);
      const selected = s.selected === a.lid;
      ctx.lineWidth = selected ? 2.5 : 1.5;
      ctx.strokeStyle = a.conflict ? "#ef5350" : colour;
      ctx.strokeRect(r.x, r.y, r.w, r.h);
      const mark = a.origin === "suggestion-accepted" ? " ✓" : a.origin === "suggestion-edited" ? " ✎" : "";
      this.tag(`${a.label}${mark}`, r.x, r.y, colour);
      if (selected) this.handles(a);
    }
    if (s.draft) {
      const r = this.screenRect(s.draft);
      ctx.setLineDash([3, 3]);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 1;
      ctx.strokeRect(r.x, r.y, r.w, r.h);
      ctx.setLineDash([]);
    }
    if (s.measure) {
      const a = toScreen(s.view, s.measure.a);
      const b = toScreen(s.view, s.measure.b);
      ctx.strokeStyle = "#00e5ff";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
      ctx.stroke();
      const img = store.config.image ?? {};
      const len = length(s.measure.a, s.measure.b, img.pixel_spacing_row, img.pixel_spacing_col);
      const text = len.mm !== null ? `${len.mm.toFixed(1)} mm` : `${len.px.toFixed(0)} px (no spacing)`;
      this.tag(text, b.x + 6, b.y - 4, "#00e5ff");
    }
  }

  /**
   * @param {string} text
   * @param {number} x
   * @param {number} y
   * @param {string} colour
   */
  tag(text, x, y, colour) {
    const { ctx } = this;
    const w = ctx.measureText(text).width + 6;
    const at = placeTag(x, y, w, this.tags);
    this.tags.push({ x, y: at - TAG_H, w, h: TAG_H });
    ctx.fillStyle = "rgba(0,0,0,0.65)";
    ctx.fillRect(x, at - TAG_H, w, TAG_H - 1);
    ctx.fillStyle = colour;
    ctx.fillText(text, x + 3, at - 2);
  }

  /** @param {any} box */
  handles(box) {
    const { ctx } = this;
    const v = this.store.state.view;
    ctx.fillStyle = "#fff";
    for (const h of HANDLES) {
      const p = toScreen(v, handlePoint(box, h));
      ctx.fillRect(p.x - 3.5, p.y - 3.5, 7, 7);
    }
  }

  /**
   * Average frame rate over frames drawn since `since` (ms since navigation).
   * @param {number} since
   * @returns {{frames: number, fps: number, meanDrawMs: number}}
   */
  frameStats(since) {
    const starts = [];
    let draw = 0;
    for (let i = 0; i < this.frameTimes.length; i += 2) {
      if (this.frameTimes[i] >= since) {
        starts.push(this.frameTimes[i]);
        draw += this.frameTimes[i + 1] - this.frameTimes[i];
      }
    }
    if (starts.length < 2) return { frames: starts.length, fps: 0, meanDrawMs: draw };
    const span = starts[starts.length - 1] - starts[0];
    return { frames: starts.length, fps: ((starts.length - 1) * 1000) / span, meanDrawMs: draw / starts.length };
  }
}
