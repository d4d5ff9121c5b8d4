// @ts-check
/**
 * The project page, live: listens on the project's websocket (/ws/projects/<id>/), shows a
 * progress bar per running job, and re-reads the page's figures (counts, who labelled what, the
 * learning curve and rounds, uploads and exports) when they change, without touching its forms.
 * Regions marked `data-live="name"` are swapped for the same regions of a fresh copy of the page.
 */

import { connectProject } from "../viewer/live.js";
import { describeJob, makesStale } from "./progress.js";

const REFRESH_DELAY_MS = 800; // gather a burst of events into one re-read
const REFRESH_MIN_GAP_MS = 4000; // and never re-read more often than this
const FINISHED_SHOWN_MS = 6000;

const script = /** @type {HTMLScriptElement|null} */ (document.querySelector("script[data-project]"));
const projectId = Number(script?.dataset.project);
const jobsNode = /** @type {HTMLElement|null} */ (document.querySelector("[data-testid=live-jobs]"));
const state = { connected: false, everConnected: false, refreshes: 0, lastRefresh: 0, timer: /** @type {any} */ (null) };
/** @type {any} */ (window).skelexProject = state;

/** @type {Map<string, {node: HTMLElement, timer: any}>} */
const bars = new Map();

/** @param {any} payload */
function showJob(payload) {
  const job = describeJob(payload);
  if (!job || !jobsNode) return;
  let entry = bars.get(job.key);
  if (!entry) {
    const node = document.createElement("div");
    node.className = "job";
    node.dataset.job = job.key;
    node.innerHTML =
      '<span class="title"></span><div class="bar" role="progressbar" aria-valuemin="0"><span></span></div><span class="text"></span>';
    jobsNode.append(node);
    entry = { node, timer: null };
    bars.set(job.key, entry);
  }
  const { node } = entry;
  /** @type {HTMLElement} */ (node.querySelector(".title")).textContent = job.title;
  /** @type {HTMLElement} */ (node.querySelector(".text")).textContent = job.text;
  const pct = job.total ? Math.min(100, (100 * job.done) / job.total) : 0;
  /** @type {HTMLElement} */ (node.querySelector(".bar span")).style.width = `${pct.toFixed(0)}%`;
  const bar = /** @type {HTMLElement} */ (node.querySelector(".bar"));
  bar.setAttribute("aria-label", job.title);
  bar.setAttribute("aria-valuemax", String(job.total || 1));
  bar.setAttribute("aria-valuenow", String(job.total ? job.done : 0));
  bar.setAttribute("aria-valuetext", job.text);
  node.classList.toggle("finished", job.finished);
  node.classList.toggle("stopped", job.state !== "ok"); // failed or not run: not the green of done
  clearTimeout(entry.timer);
  if (job.finished) {
    entry.timer = setTimeout(() => {
      node.remove();
      bars.delete(job.key);
    }, FINISHED_SHOWN_MS);
  }
}

async function refresh() {
  state.timer = null;
  state.lastRefresh = Date.now();
  let html;
  try {
    const res = await fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!res.ok) return;
    html = await res.text();
  } catch {
    return; // offline: the next event or reconnect tries again
  }
  const fresh = new DOMParser().parseFromString(html, "text/html");
  for (const node of fresh.querySelectorAll("[data-live]")) {
    const name = /** @type {HTMLElement} */ (node).dataset.live;
    const here = document.querySelector(`[data-live="${name}"]`);
    if (here) here.replaceWith(document.importNode(node, true));
  }
  state.refreshes += 1;
}

function scheduleRefresh() {
  if (state.timer) return;
  const wait = Math.max(REFRESH_DELAY_MS, state.lastRefresh + REFRESH_MIN_GAP_MS - Date.now());
  state.timer = setTimeout(() => void refresh(), wait);
}

if (projectId) {
  connectProject(projectId, {
    onEvent: (msg) => {
      // Messages are {"type", "project", ...payload} (skelex_web/events.py).
      if (msg.type === "job.progress") showJob(msg);
      if (makesStale(msg)) scheduleRefresh();
    },
    onReconnect: scheduleRefresh, // events may have been missed meanwhile
    onState: (connected) => {
      // Just after an action (a message shows: a round, export or upload started a moment ago),
      // its events may have come between rendering this page and now.
      if (connected && !state.everConnected && document.querySelector(".messages")) scheduleRefresh();
      state.connected = connected;
      state.everConnected ||= connected;
    },
  });
}

// Forms marked `data-confirm="question"` (removing a member) ask before they are sent. Delegated
// from the document, so forms in regions swapped by a refresh keep asking.
document.addEventListener("submit", (event) => {
  const form = /** @type {HTMLFormElement} */ (event.target);
  const question = form?.dataset?.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Forms marked `data-confirm-typed="word"` (deleting the project) are sent only once that word is
// typed into their `confirm` field: their button stays disabled until then. The server checks the
// word again, so without this script a wrong one is refused, not sent through.
/** @param {HTMLFormElement} form */
function armTyped(form) {
  const typed = /** @type {HTMLInputElement|null} */ (form.elements.namedItem("confirm"));
  const button = form.querySelector("button[type=submit]");
  if (button instanceof HTMLButtonElement) button.disabled = typed?.value.trim() !== form.dataset.confirmTyped;
}
document.querySelectorAll("form[data-confirm-typed]").forEach((form) => armTyped(/** @type {HTMLFormElement} */ (form)));
document.addEventListener("input", (event) => {
  const form = /** @type {HTMLInputElement} */ (event.target).form;
  if (form?.dataset.confirmTyped !== undefined) armTyped(form);
});
