// @ts-check
/**
 * The viewer page's entry point: reads the page's configuration, loads the 16-bit image and the
 * image's labels, and wires the store to the renderer, tools, keyboard, panels, autosave and live
 * updates. Everything else lives in its own module; this file only connects them.
 */

import { api, fetchBitmap, request, sendOnLeave } from "./api.js";
import { loadDisplayImage } from "./displayImage.js";
import { Store, fromServer, isDirty, suggestionFromServer } from "./store.js";
import { History } from "./history.js";
import { colourizeHeat } from "./heatmap.js";
import { Renderer } from "./render.js";
import { preset, stats } from "./lut.js";
import { fitZoom, toImage, toScreen, zoomAt } from "./geometry.js";
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
import { mountBoxes } from "./ui/boxes.js";
import { mountHeads } from "./ui/heads.js";
import { mountStatus } from "./ui/status.js";
import { showConflict } from "./ui/dialogs.js";
import { makeActions } from "./actions.js";
import { CLAIM_REFRESH_MS, holderNotice, refreshClaim, releaseUrl } from "./queue.js";

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
} else if (config.can_edit_others === false) {
  // Annotators change their own records only (keys such as Delete, arrows and 1-9 act on the
  // selected box, which may be someone else's): say so here instead of a refusal after the fact.
  const run = history.run.bind(history);
  history.run = (cmd) => {
    if (cmd.record && !store.mayChange(cmd.record)) {
      const whose = cmd.record.author_name ? `${cmd.record.author_name}'s` : "someone else's";
      store.emit("notice", { level: "info", text: `That is ${whose} box: annotators change only their own (a reviewer can change it).` });
      store.emit("annotations");
      return;
    }
    run(cmd);
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
  // Milestones of opening the image, in ms since navigation start (also performance marks).
  firstFrameMs: /** @type {number|null} */ (null),
  loadStartMs: /** @type {number|null} */ (null),
  decodedMs: /** @type {number|null} */ (null),
  decodedIn: /** @type {string|null} */ (null),
  pixelsMs: /** @type {number|null} */ (null),
  ready: false,
  // Every notice shown, oldest first: they leave the screen after a few seconds, this list stays.
  notices: /** @type {string[]} */ ([]),
};
/** @type {any} */ (window).skelexViewer = debug;
store.on("notice", (/** @type {{text: string}} */ n) => debug.notices.push(n.text));
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
  performance.mark("skelex:modules-running");
  debug.loadStartMs = performance.now();
  // Usually already downloaded and decoded by the worker the page started before these modules.
  const png = await loadDisplayImage(config.image.display_url);
  debug.decodedMs = png.decodedMs;
  debug.decodedIn = png.decodedIn;
  performance.mark("skelex:image-pixels");
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
  const bitmap = await fetchBitmap(config.image.errormap_url);
  renderer.overlay = bitmap ? heatOverlay(bitmap) : null;
  store.state.overlay.available = renderer.overlay !== null;
  byId("overlay-controls").toggleAttribute("hidden", !store.state.overlay.available);
  store.emit("overlay");
}

/**
 * The error map as drawn: grey levels turned into transparent-to-hot colours (heatmap.js).
 * @param {ImageBitmap} bitmap
 * @returns {HTMLCanvasElement}
 */
function heatOverlay(bitmap) {
  const c = document.createElement("canvas");
  c.width = bitmap.width;
  c.height = bitmap.height;
  const g = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d", { willReadFrequently: true }));
  g.drawImage(bitmap, 0, 0);
  const pixels = g.getImageData(0, 0, c.width, c.height);
  if (colourizeHeat(pixels.data)) g.putImageData(pixels, 0, 0);
  bitmap.close();
  return c;
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

// ---- actions (keys and toolbar buttons share them: actions.js) -------------------------------
const act = makeActions({ store, history, config, autosave, setTool, applyPreset, fit });

// ---- the claim on this image (annotators) ----------------------------------------------------
// Opening the page claimed it; renew the claim while the tab is in use, so the queue does not
// hand the image to someone else after 10 idle minutes of the server's clock.
if (config.claim_url) {
  let holder = /** @type {string|null} */ (config.open_elsewhere ?? null);
  let claimedAt = /** @type {string|null} */ (config.claimed_at ?? null);
  /** @param {boolean} [always] also from a hidden tab (another of this browser's viewers left the image) */
  const renew = async (always = false) => {
    if (!always && document.visibilityState !== "visible") return;
    const reply = await refreshClaim(request, config.claim_url);
    if (!reply) return; // offline or refused: try again at the next renewal
    claimedAt = reply.at;
    const notice = holderNotice(holder, reply.holder);
    if (notice) store.emit("notice", notice);
    // The other viewer closed it: this one holds it now, and the warning goes.
    if (!reply.holder) document.querySelector("[data-testid=open-elsewhere]")?.remove();
    holder = reply.holder;
  };
  setInterval(renew, CLAIM_REFRESH_MS);
  document.addEventListener("visibilitychange", () => void renew());
  // Leaving the image (tab closed, another page opened) hands it back to the queue at once, instead
  // of holding it from the other annotators until the claim lapses 10 minutes later. Only the claim
  // this viewer made: a reload's new page has claimed the image again before this one goes, and
  // keeps it. A page restored from the back-forward cache claims it again.
  // Another tab or window of this browser on the same image (same user) claims it again when this
  // one leaves: the release would otherwise leave an image open there unclaimed until its next
  // renewal, free for the queue to hand to someone else.
  const tabs = "BroadcastChannel" in window ? new BroadcastChannel("skelex-viewer-claims") : null;
  tabs?.addEventListener("message", (e) => {
    if (e.data?.left === config.claim_url) void renew(true);
  });
  window.addEventListener("pagehide", () => {
    const url = releaseUrl(config.claim_url, holder, claimedAt);
    if (url) sendOnLeave("DELETE", url);
    tabs?.postMessage({ left: config.claim_url });
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) void renew();
  });
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
// The journal is written a tick after each change; a tab closed inside that tick still keeps it.
window.addEventListener("pagehide", () => {
  if (journalling) writeJournal(store, localStorage, journal);
});
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

/**
 * A lead deleted this image while it was open here: say so where it stays in view, with the way
 * back, and take no more edits (nothing could save them).
 * @param {string} by the lead's user name
 */
function imageDeleted(by) {
  if (document.querySelector("[data-testid=image-deleted]")) return;
  const note = document.createElement("div");
  note.className = "open-elsewhere";
  note.dataset.testid = "image-deleted";
  note.setAttribute("role", "alert");
  note.append(`Deleted by ${by || "a lead"}: this image is no longer in the project, and nothing more can be saved here. `);
  const back = document.createElement("a");
  back.href = config.worklist_url;
  back.textContent = "Back to the worklist";
  note.append(back);
  document.querySelector(".side")?.prepend(note);
  history.run = () => {
    store.emit("notice", { level: "info", text: "This image was deleted: nothing can be saved here." });
    store.emit("annotations"); // panels redraw what is really there
  };
}

connectLive(Number(config.project.id), imageId, {
  onImageEvent(type, payload) {
    if (type === "image.deleted") imageDeleted(String(payload.by ?? ""));
    else if (type === "annotation.saved") void refreshAnnotations(payload.author);
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
