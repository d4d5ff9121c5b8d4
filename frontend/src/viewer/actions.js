// @ts-check
/**
 * Every viewer action by name (`accept`, `undo`, `preset:bone`, `next`…): the keyboard shortcuts
 * (keys.js) and the toolbar buttons run the same function, so they cannot drift apart.
 */

import { moveBox, toImage, toScreen, zoomAt } from "./geometry.js";
import { acceptSuggestion } from "./commands/acceptSuggestion.js";
import { rejectSuggestion } from "./commands/rejectSuggestion.js";
import { acceptAll } from "./commands/acceptAll.js";
import { deleteBox } from "./commands/deleteBox.js";
import { updateBox } from "./commands/updateBox.js";
import { editSuggestion } from "./commands/editSuggestion.js";
import { showHelp } from "./ui/dialogs.js";
import { request } from "./api.js";
import { nextInQueue } from "./queue.js";

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

/**
 * @param {{store: import("./store.js").Store, history: import("./history.js").History, config: any,
 *   autosave: import("./sync.js").Autosave, setTool: (name: string) => void, applyPreset: (name: string) => void,
 *   fit: () => void}} v
 * @returns {(name: string, e?: KeyboardEvent) => Promise<void>}
 */
export function makeActions(v) {
  const { store, history, config, autosave, setTool, applyPreset, fit } = v;
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
        // A selected suggestion given another label becomes your box with that label ("edited").
        const sg = s.selected?.startsWith("s") ? store.suggestion(Number(s.selected.slice(1))) : undefined;
        if (sg && sg.state === "pending" && sg.kind === "box") history.run(acceptSuggestion(store, sg.id, undefined, label));
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
        if (config.queue) {
          // Queue mode: Next asks the queue; the way back is the browser's history.
          if (name === "prev") {
            store.emit("notice", { level: "info", text: "Labelling from the queue: Next asks it for another image; your browser's Back returns to the ones before." });
            return;
          }
          await autosave.flush();
          const r = await nextInQueue(request, config.queue, config.project.id, config.image.id, sessionStorage);
          if ("url" in r) location.href = r.url;
          else store.emit("notice", r.notice);
          return;
        }
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

  return act;
}
