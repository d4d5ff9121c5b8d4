// @ts-check
/**
 * The worklist, live: it does not reorder under the reader's eyes (a thumbnail moving away as it is
 * clicked), but says when its order or contents changed, with a link to reload.
 */

import { connectProject } from "../viewer/live.js";

const script = /** @type {HTMLScriptElement|null} */ (document.querySelector("script[data-project]"));
const projectId = Number(script?.dataset.project);
const banner = /** @type {HTMLElement|null} */ (document.querySelector("[data-testid=worklist-stale]"));
const text = /** @type {HTMLElement|null} */ (banner?.querySelector(".text") ?? null);
const state = { connected: false, added: 0, removed: 0, reordered: false };
/** @type {any} */ (window).skelexWorklist = state;

function show() {
  if (!banner || !text) return;
  const parts = [];
  if (state.reordered) parts.push("The labelling order changed (a training round finished or images were analysed).");
  if (state.added) parts.push(`${state.added} image${state.added > 1 ? "s" : ""} added.`);
  if (state.removed) parts.push(`${state.removed} image${state.removed > 1 ? "s" : ""} deleted.`);
  text.textContent = parts.join(" ");
  banner.hidden = parts.length === 0;
}

if (projectId) {
  connectProject(projectId, {
    onEvent: (msg) => {
      if (msg.type === "queue.updated") state.reordered = true;
      else if (msg.type === "image.ingested") state.added += 1;
      else if (msg.type === "image.deleted") state.removed += 1;
      else return;
      show();
    },
    onReconnect: () => {
      state.reordered = true; // events may have been missed meanwhile
      show();
    },
    onState: (connected) => {
      state.connected = connected;
    },
  });
}
