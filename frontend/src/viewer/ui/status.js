// @ts-check
/** Status bar (save state, pointer readout, zoom, window) and transient notices. */

import { el } from "./dom.js";

/**
 * @param {{sync: HTMLElement, readout: HTMLElement, notices: HTMLElement}} nodes
 * @param {import("../store.js").Store} store
 */
export function mountStatus(nodes, store) {
  const TEXT = { saved: "All changes saved", saving: "Saving…", offline: "Offline", error: "Not saved", conflict: "Conflict" };
  store.on("sync", () => {
    const s = store.state.sync;
    nodes.sync.className = `sync ${s.status}`;
    nodes.sync.dataset.status = s.status;
    nodes.sync.textContent = s.message || (s.pending && s.status !== "saving" ? `${TEXT[s.status]} (${s.pending} pending)` : TEXT[s.status]);
  });

  const readout = () => {
    const s = store.state;
    const p = s.pointer;
    const pos = p ? `x ${p.x.toFixed(0)}  y ${p.y.toFixed(0)}  value ${p.value ?? "—"}` : "";
    nodes.readout.textContent = `${pos}   zoom ${(s.view.zoom * 100).toFixed(0)}%   W ${s.wl.width.toFixed(0)} L ${s.wl.center.toFixed(0)}${s.wl.invert ? "  inverted" : ""}`;
  };
  for (const t of ["pointer", "view", "wl"]) store.on(t, readout);

  store.on("notice", (/** @type {{level: string, text: string}} */ n) => {
    const node = el("div", { class: `notice ${n.level}`, role: "status", text: n.text });
    nodes.notices.append(node);
    setTimeout(() => node.remove(), n.level === "error" ? 9000 : 5000);
  });
}
