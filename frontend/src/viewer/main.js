// @ts-check
/**
 * The viewer page's entry point: reads the page's configuration, loads the 16-bit image and the
 * image's labels, and wires the store to the renderer, tools, keyboard, panels, autosave and live
 * updates. Everything else lives in its own module; this file only connects them.
 */

import { api, fetchBitmap, fetchBytes } from "./api.js";
import { Store, fromServer, isDirty, suggestionFromServer } from "./store.js";
import { History } from "./history.js";
import { Renderer } from "./render.js";
import { decodePng16 } from "./png16.js";
import { preset, stats } from "./lut.js";
import { fitZoom, moveBox, toImage, toScreen, zoomAt } from "./geometry.js";
import { Autosave } from "./sync.js";
import { TimeSpent } from "./timer.js";
import { connectLive } from "./live.js";
import { mergeRemote } from "./conflict.js";
import { journalKey, restoreJournal, writeJournal } from "./journal.js";
import { shortcutFor } from "./keys.js";
import { boxTool } from "./tools/box.js";
import { panTool } from "./tools/pan.js";
import { windowLevelTool } from "./tools/windowlevel.js";
import { measureTool } from "./tools/measure.js";
import { acceptSuggestion } from "./commands/acceptSuggestion.js";
import { rejectSuggestion } from "./commands/rejectSuggestion.js";
import { acceptAll } from "./commands/acceptAll.js";
import { deleteBox } from "./commands/deleteBox.js";
import { updateBox } from "./commands/updateBox.js";
import { editSuggestion } from "./commands/editSuggestion.js";
import { mountBoxes } from "./ui/boxes.js";
import { mountHeads } from "./ui/heads.js";
import { mountStatus } from "./ui/status.js";
import { showConflict, showHelp } from "./ui/dialogs.js";

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

const config = JSON.parse(byId("viewer-config").textContent ?? "{}");
const imageId = Number(config.image.id);
const store = new Store(config);
const timer = new TimeSpent();
const autosave = new Autosave(store, api, { imageId, timeSpent: () => timer.take() });
const history = new History(() => {
  updateUndoButtons();
  void autosave.flush();
});
if (!config.can_edit) {
  // Viewers read only: refuse edits here rather than letting the server answer 403 after the fact.
  history.run = () => {
    store.emit("notice", { level: "info", text: "Read only: your role in this project cannot change labels." });
    store.emit("annotations"); // panels redraw what is really there
  };
}
const ctx = { store, history };
const canvas = /** @type {HTMLCanvasElement} */ (byId("view"));
const renderer = new Renderer(canvas, store);

/** @type {Record<string, import("./tools/tool.js").Tool>} */
const tools = { box: boxTool(ctx), pan: panTool(ctx), windowlevel: windowLevelTool(ctx), measure: measureTool(ctx) };

const debug = {
  store,
  history,
  renderer,
  autosave,
  firstFrameMs: /** @type {number|null} */ (null),
  decodeMs: /** @type {number|null} */ (null),
  fetchMs: /** @type {number|null} */ (null),
  loadStartMs: /** @type {number|null} */ (null),
  pixelsMs: /** @type {number|null} */ (null),
  ready: false,
};
/** @type {any} */ (window).skelexViewer = debug;
/**
 * Where an image pixel is in the page (for tests and debugging).
 * @param {number} x
 * @param {number} y
 */
/** @type {any} */ (debug).clientPoint = (x, y) => {
  const r = canvas.getBoundingClientRect();
  const p = toScreen(store.state.view, { x, y });
  return { x: r.left + p.x, y: r.top + p.y };
};
store.on("first-frame", (/** @type {number} */ t) => {
  debug.firstFrameMs = t;
});

// ---- layout and panels -------------------------------------------------------------------------
mountStatus({ sync: byId("sync"), readout: byId("readout"), notices: byId("notices") }, store);
mountBoxes(byId("boxes-panel"), ctx);
mountHeads(byId("heads-panel"), ctx);
new ResizeObserver(() => {
  renderer.resize();
  renderer.request();
}).observe(canvas);
renderer.resize();

function updateUndoButtons() {
  /** @type {HTMLButtonElement|null} */ (document.querySelector('[data-action="undo"]'))?.toggleAttribute("disabled", !history.canUndo);
  /** @type {HTMLButtonElement|null} */ (document.querySelector('[data-action="redo"]'))?.toggleAttribute("disabled", !history.canRedo);
}
updateUndoButtons();

/** @param {string} name */
function setTool(name) {
  store.state.tool = name;
  for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("on", /** @type {HTMLElement} */ (b).dataset.tool === name);
  canvas.style.cursor = tools[name].cursor;
  store.emit("tool");
}
setTool("box");

// ---- loading -----------------------------------------------------------------------------------
let imageStats = { min: 0, max: 65535, p1: 0, p99: 65535 };

async function loadImage() {
  const t0 = performance.now();
  debug.loadStartMs = t0;
  /** @type {{width: number, height: number, data: Uint16Array}} */
  let png;
  // The page's boot script started a worker on the image before these modules loaded.
  const early = /** @type {Promise<any>|undefined} */ (/** @type {any} */ (window).skelexImage);
  const decoded = early ? await early.catch(() => null) : null;
  if (decoded) {
    png = decoded;
    debug.fetchMs = decoded.fetchMs;
    debug.decodeMs = decoded.decodeMs;
  } else {
    const bytes = await fetchBytes(config.image.display_url);
    const t1 = performance.now();
    png = await decodePng16(bytes);
    debug.fetchMs = t1 - t0;
    debug.decodeMs = performance.now() - t1;
  }
  debug.pixelsMs = performance.now();
  imageStats = stats(png.data);
  store.state.image = { width: png.width, height: png.height, data: png.data, min: imageStats.min, max: imageStats.max };
  Object.assign(store.state.view, { iw: png.width, ih: png.height });
  applyPreset("auto");
  fit();
  store.emit("image");
}

/** @param {string} name */
function applyPreset(name) {
  const w = preset(name, { ...imageStats, center: config.image.window_center, width: config.image.window_width });
  Object.assign(store.state.wl, w);
  store.emit("wl");
}

function fit() {
  const v = store.state.view;
  Object.assign(v, { zoom: fitZoom(v), panX: 0, panY: 0 });
  store.emit("view");
}

async function loadAnnotations() {
  const r = await api.annotations(imageId);
  if (!r.ok) throw new Error(`annotations: ${r.status}`);
  store.state.annotations = r.data.map(fromServer);
  store.emit("annotations");
}

async function loadSuggestions() {
  const r = await api.suggestions(imageId);
  if (!r.ok) throw new Error(`suggestions: ${r.status}`);
  store.state.suggestions = r.data.map(suggestionFromServer);
  store.emit("suggestions");
}

async function loadOverlay() {
  if (!config.image.errormap_url) return;
  renderer.overlay = await fetchBitmap(config.image.errormap_url);
  store.state.overlay.available = renderer.overlay !== null;
  byId("overlay-controls").toggleAttribute("hidden", !store.state.overlay.available);
  store.emit("overlay");
}

const journal = journalKey(imageId, config.user?.id ?? "anon");
let journalling = false;
let journalQueued = false;
const queueJournal = () => {
  if (!journalling || journalQueued) return;
  journalQueued = true;
  setTimeout(() => {
    journalQueued = false;
    writeJournal(store, localStorage, journal);
  }, 0);
};
for (const t of ["annotations", "suggestions", "sync"]) store.on(t, queueJournal);

Promise.all([loadImage(), loadAnnotations(), loadSuggestions(), loadOverlay()])
  .then(() => {
    // Only now: journalling before the server state is loaded would erase the previous session's edits.
    const restored = restoreJournal(store, localStorage, journal);
    journalling = true;
    if (restored) {
      store.emit("annotations");
      store.emit("suggestions");
      store.emit("notice", { level: "info", text: `Restored ${restored} unsaved change${restored > 1 ? "s" : ""} from your last visit; saving.` });
      void autosave.flush();
    }
    debug.ready = true;
    document.body.dataset.ready = "1";
  })
  .catch((err) => {
    store.emit("notice", { level: "error", text: `Could not load the image: ${err.message ?? err}` });
  });

// ---- actions (keys and toolbar buttons share them) ---------------------------------------------
/** @returns {import("./types.js").Suggestion|undefined} the selected suggestion, else the best pending */
function targetSuggestion() {
  const sel = store.state.selected;
  if (sel?.startsWith("s")) {
    const s = store.suggestion(Number(sel.slice(1)));
    if (s && s.state === "pending") return s;
  }
  return [...store.pendingSuggestions()].sort((a, b) => b.score - a.score)[0];
}

/**
 * @param {string} name
 * @param {KeyboardEvent} [e]
 */
async function act(name, e) {
  const s = store.state;
  const labels = /** @type {string[]} */ (config.schema?.box_labels ?? []);
  if (name.startsWith("tool:")) return setTool(name.slice(5));
  if (name.startsWith("preset:")) return applyPreset(name.slice(7));
  switch (name) {
    case "accept": {
      const sg = targetSuggestion();
      if (sg) history.run(acceptSuggestion(store, sg.id));
      return;
    }
    case "reject": {
      const sg = targetSuggestion();
      if (sg) history.run(rejectSuggestion(store, sg.id));
      return;
    }
    case "acceptAll":
      if (store.pendingSuggestions().length) history.run(acceptAll(store));
      return;
    case "cycle": {
      const ids = [...store.pendingSuggestions().map((x) => `s${x.id}`), ...store.boxes().map((a) => a.lid)];
      if (!ids.length) return;
      const i = ids.indexOf(s.selected ?? "");
      const step = e?.shiftKey ? -1 : 1;
      s.selected = ids[(i + step + ids.length) % ids.length];
      store.emit("selection");
      return;
    }
    case "label": {
      const label = labels[Number(e?.code.slice(5)) - 1];
      if (!label) return;
      s.currentLabel = label;
      byId("current-label").textContent = label;
      const a = s.selected ? store.annotation(s.selected) : undefined;
      if (a && !a.deleted && a.kind === "box" && a.label !== label) history.run(updateBox(store, a.lid, { label }));
      return;
    }
    case "nudge": {
      if (!s.selected || !e) return;
      const step = e.shiftKey ? 10 : 1;
      const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key] ?? [0, 0];
      if (s.selected.startsWith("s")) {
        const sg = store.suggestion(Number(s.selected.slice(1)));
        if (!sg || sg.state !== "pending") return;
        const box = moveBox({ x0: Number(sg.x0), y0: Number(sg.y0), x1: Number(sg.x1), y1: Number(sg.y1) }, d[0] * step, d[1] * step, s.view.iw, s.view.ih);
        history.run(editSuggestion(store, sg.id, box));
      } else {
        const a = store.annotation(s.selected);
        if (!a || a.deleted || a.kind !== "box") return;
        const box = moveBox({ x0: Number(a.x0), y0: Number(a.y0), x1: Number(a.x1), y1: Number(a.y1) }, d[0] * step, d[1] * step, s.view.iw, s.view.ih);
        history.run(updateBox(store, a.lid, box));
      }
      return;
    }
    case "delete": {
      if (!s.selected) return;
      if (s.selected.startsWith("s")) history.run(rejectSuggestion(store, Number(s.selected.slice(1))));
      else history.run(deleteBox(store, s.selected));
      return;
    }
    case "escape":
      s.selected = null;
      s.draft = null;
      s.measure = null;
      store.emit("selection");
      return;
    case "undo":
      history.undo();
      return;
    case "redo":
      history.redo();
      return;
    case "next":
    case "prev": {
      const url = name === "next" ? config.next_url : config.prev_url;
      if (!url) {
        store.emit("notice", { level: "info", text: name === "next" ? "This is the last image of the worklist." : "This is the first image of the worklist." });
        return;
      }
      await autosave.flush();
      location.href = url;
      return;
    }
    case "invert":
      s.wl.invert = !s.wl.invert;
      store.emit("wl");
      return;
    case "overlay":
      if (!s.overlay.available) {
        store.emit("notice", { level: "info", text: "No error map for this image yet." });
        return;
      }
      s.overlay.visible = !s.overlay.visible;
      /** @type {HTMLInputElement} */ (byId("overlay-toggle")).checked = s.overlay.visible;
      store.emit("overlay");
      return;
    case "fit":
      return fit();
    case "oneToOne": {
      const v = s.view;
      const centre = toImage(v, { x: v.vw / 2, y: v.vh / 2 });
      Object.assign(v, { zoom: 1, panX: 0, panY: 0 });
      // Keep the image point that was at the centre of the screen there.
      const q = toScreen(v, centre);
      Object.assign(v, { panX: v.vw / 2 - q.x, panY: v.vh / 2 - q.y });
      store.emit("view");
      return;
    }
    case "zoomKey":
    case "zoomIn":
    case "zoomOut": {
      const v = s.view;
      const factor = name === "zoomIn" || e?.key === "+" || e?.key === "=" ? 1.25 : 0.8;
      Object.assign(v, zoomAt(v, factor, { x: v.vw / 2, y: v.vh / 2 }));
      store.emit("view");
      return;
    }
    case "rotate":
    case "rotateLeft":
    case "rotateRight":
      s.view.rotation = (s.view.rotation + (name === "rotateLeft" || e?.key === "[" ? 3 : 1)) % 4;
      fit();
      return;
    case "flip":
    case "flipH":
    case "flipV":
      if (name === "flipH" || e?.key === "H") s.view.flipH = !s.view.flipH;
      else s.view.flipV = !s.view.flipV;
      store.emit("view");
      return;
    case "help":
      showHelp(/** @type {HTMLDialogElement} */ (byId("help")));
      return;
  }
}

document.addEventListener("keydown", (e) => {
  const t = /** @type {HTMLElement} */ (e.target);
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") && e.key !== "Escape") return;
  // An open dialog owns the keyboard (Escape closes it natively).
  if (document.querySelector("dialog[open]")) return;
  if (e.key === " ") {
    spaceHeld = true;
    e.preventDefault();
    return;
  }
  const sc = shortcutFor(e);
  if (!sc) return;
  e.preventDefault();
  void act(sc.action, e);
});
document.addEventListener("keyup", (e) => {
  if (e.key === " ") spaceHeld = false;
});

for (const b of document.querySelectorAll("[data-action]")) {
  b.addEventListener("click", () => void act(/** @type {HTMLElement} */ (b).dataset.action ?? ""));
}
for (const b of document.querySelectorAll("[data-tool]")) {
  b.addEventListener("click", () => setTool(/** @type {HTMLElement} */ (b).dataset.tool ?? "box"));
}
for (const b of document.querySelectorAll("[data-preset]")) {
  b.addEventListener("click", () => applyPreset(/** @type {HTMLElement} */ (b).dataset.preset ?? "auto"));
}
byId("overlay-toggle").addEventListener("change", () => void act("overlay"));
byId("overlay-opacity").addEventListener("input", (e) => {
  store.state.overlay.opacity = Number(/** @type {HTMLInputElement} */ (e.target).value) / 100;
  store.emit("overlay");
});
byId("current-label").textContent = store.state.currentLabel;

// ---- pointer -----------------------------------------------------------------------------------
let spaceHeld = false;
/** @type {import("./tools/tool.js").Tool|null} */
let dragTool = null;

/**
 * @param {PointerEvent|WheelEvent} e
 * @returns {import("./tools/tool.js").PointerInfo}
 */
function info(e) {
  const r = canvas.getBoundingClientRect();
  const sp = { x: e.clientX - r.left, y: e.clientY - r.top };
  return { s: sp, p: toImage(store.state.view, sp), button: e.button, shift: e.shiftKey, ctrl: e.ctrlKey || e.metaKey, alt: e.altKey };
}

canvas.addEventListener("contextmenu", (e) => e.preventDefault());
canvas.addEventListener("pointerdown", (e) => {
  if (!store.state.image) return;
  const i = info(e);
  if (e.button === 2 || (e.button === 0 && i.ctrl)) dragTool = tools.windowlevel;
  else if (e.button === 1 || spaceHeld) dragTool = tools.pan;
  else if (e.button === 0) dragTool = tools[store.state.tool];
  else return;
  e.preventDefault();
  canvas.setPointerCapture(e.pointerId);
  dragTool.down(i);
});
canvas.addEventListener("pointermove", (e) => {
  if (!store.state.image) return;
  const i = info(e);
  const img = store.state.image;
  const x = Math.floor(i.p.x);
  const y = Math.floor(i.p.y);
  const inside = x >= 0 && y >= 0 && x < img.width && y < img.height;
  store.state.pointer = { x: i.p.x, y: i.p.y, value: inside ? img.data[y * img.width + x] : null };
  store.emit("pointer");
  if (dragTool) dragTool.move(i);
  else {
    const t = tools[store.state.tool];
    canvas.style.cursor = spaceHeld ? "grab" : (t.hover?.(i) ?? t.cursor);
  }
});
const release = (/** @type {PointerEvent} */ e) => {
  if (!dragTool) return;
  const t = dragTool;
  dragTool = null;
  t.up(info(e));
};
canvas.addEventListener("pointerup", release);
canvas.addEventListener("pointercancel", release);
canvas.addEventListener(
  "wheel",
  (e) => {
    e.preventDefault();
    const i = info(e);
    Object.assign(store.state.view, zoomAt(store.state.view, Math.exp(-e.deltaY * 0.0015), i.s));
    store.emit("view");
  },
  { passive: false },
);

// ---- saving, conflicts, live -------------------------------------------------------------------
store.on("conflict", (/** @type {import("./types.js").Annotation} */ a) => {
  showConflict(/** @type {HTMLDialogElement} */ (byId("conflict")), store, a, () => void autosave.flush());
});
window.addEventListener("online", () => void autosave.flush());
document.addEventListener("visibilitychange", () => (document.hidden ? timer.pause() : timer.resume()));
window.addEventListener("beforeunload", (e) => {
  if (autosave.unsavedCount() > 0) {
    void autosave.flush();
    e.preventDefault();
  }
});

const me = { id: config.user?.id, name: config.user?.name };

/** @param {any} author id or username from the event */
const isMe = (author) => author === me.id || author === me.name;

async function refreshAnnotations(/** @type {any} */ author) {
  // Let our own in-flight saves land first, so a record we just created is known by its id.
  while (autosave.running) await new Promise((r) => setTimeout(r, 50));
  const r = await api.annotations(imageId);
  if (!r.ok) return;
  const { annotations, changed } = mergeRemote(store.state.annotations, r.data, fromServer, isDirty);
  store.state.annotations = annotations;
  store.emit("annotations");
  if (changed.length && author !== undefined && !isMe(author)) {
    const name = typeof author === "string" ? author : changed[0]?.author_name || "Another user";
    store.emit("notice", { level: "info", text: `${name} saved a change to this image.` });
  }
}

async function refreshSuggestions(/** @type {boolean} */ announce) {
  const r = await api.suggestions(imageId);
  if (!r.ok) return;
  const local = new Map(store.state.suggestions.map((x) => [x.id, x]));
  let added = 0;
  for (const row of r.data) {
    const mine = local.get(row.id);
    if (!mine) {
      store.state.suggestions.push(suggestionFromServer(row));
      added += row.kind === "box" ? 1 : 0;
    } else if (mine.state === mine.savedState) {
      mine.state = row.state;
      mine.savedState = row.state;
    }
  }
  store.emit("suggestions");
  if (announce && added) store.emit("notice", { level: "info", text: `${added} new suggestion${added > 1 ? "s" : ""} from the model.` });
}

connectLive(Number(config.project.id), imageId, {
  onImageEvent(type, payload) {
    if (type === "annotation.saved") void refreshAnnotations(payload.author);
    else if (type === "suggestions.ready" || type === "image.analysed") {
      void refreshSuggestions(true);
      if (!store.state.overlay.available) {
        config.image.errormap_url = config.image.errormap_url || `/api/images/${imageId}/errormap/`;
        void loadOverlay();
      }
    } else if (type === "suggestion.resolved") void refreshSuggestions(false);
  },
  onReconnect() {
    void refreshAnnotations(undefined);
    void refreshSuggestions(false);
  },
  onState(connected) {
    const node = byId("live");
    node.classList.toggle("on", connected);
    node.title = connected ? "Live updates connected" : "Live updates disconnected (retrying)";
  },
});
