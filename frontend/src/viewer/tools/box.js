// @ts-check
/**
 * Box tool: drag on empty image to draw; click a box or suggestion to select it; drag it to move;
 * drag a handle of the selected one to resize. Moving or resizing a suggestion accepts it as edited.
 * While dragging, the shape changes in place for feedback; one command is recorded on release.
 */

import { clampBox, hitBox, hitHandle, moveBox, normalize, resizeBox, sameBox } from "../geometry.js";
import { makeAnnotation } from "../store.js";
import { addBox } from "../commands/addBox.js";
import { updateBox } from "../commands/updateBox.js";
import { editSuggestion } from "../commands/editSuggestion.js";

/** Handles and edges are this many screen pixels wide for the pointer. */
const GRAB_PX = 7;
/** A drag shorter than this (screen pixels) is a click, not a box. */
const MIN_BOX_PX = 4;

/** @typedef {import("../types.js").Box} Box */

/**
 * @param {import("./tool.js").ToolContext} ctx
 * @returns {import("./tool.js").Tool}
 */
export function boxTool(ctx) {
  const { store } = ctx;
  /** @type {null | {mode: "draw"|"move"|"resize", start: {x: number, y: number}, s0: {x: number, y: number},
   *   handle?: import("../types.js").Handle, target?: {lid?: string, sid?: number}, orig?: Box}} */
  let drag = null;

  const size = () => ({ w: store.state.view.iw, h: store.state.view.ih });
  const tol = () => GRAB_PX / store.state.view.zoom;

  /** @param {{lid?: string}} shape @returns {boolean} false for a box this user may not change */
  function changeable(shape) {
    const a = shape.lid ? store.annotation(shape.lid) : undefined;
    return !a || store.mayChange(a);
  }

  /** @returns {(Box & {lid?: string, sid?: number}) | null} the selected shape */
  function selectedShape() {
    const sel = store.state.selected;
    if (!sel) return null;
    if (sel.startsWith("s")) {
      const sg = store.suggestion(Number(sel.slice(1)));
      return sg && sg.state === "pending" ? { x0: Number(sg.x0), y0: Number(sg.y0), x1: Number(sg.x1), y1: Number(sg.y1), sid: sg.id } : null;
    }
    const a = store.annotation(sel);
    return a && !a.deleted ? { x0: Number(a.x0), y0: Number(a.y0), x1: Number(a.x1), y1: Number(a.y1), lid: a.lid } : null;
  }

  /** @returns {(Box & {lid?: string, sid?: number})[]} every shape the pointer can pick */
  function shapes() {
    return [
      ...store.pendingSuggestions().map((s) => ({ x0: Number(s.x0), y0: Number(s.y0), x1: Number(s.x1), y1: Number(s.y1), sid: s.id })),
      ...store.boxes().map((a) => ({ x0: Number(a.x0), y0: Number(a.y0), x1: Number(a.x1), y1: Number(a.y1), lid: a.lid })),
    ];
  }

  /**
   * Shows a shape at a box while dragging (annotations in place, suggestions as a draft).
   * @param {{lid?: string, sid?: number}} target
   * @param {Box} b
   */
  function preview(target, b) {
    if (target.lid) {
      const a = store.annotation(target.lid);
      if (a) Object.assign(a, b);
    } else {
      store.state.draft = { ...b };
    }
    store.emit("render");
  }

  return {
    name: "box",
    cursor: "crosshair",
    hover(e) {
      const sel = selectedShape();
      if (sel && changeable(sel) && hitHandle(sel, e.p, tol())) return "nwse-resize";
      const hit = hitBox(shapes(), e.p, tol() / 2);
      return hit ? (changeable(hit) ? "move" : "pointer") : "crosshair";
    },
    down(e) {
      const sel = selectedShape();
      const handle = sel && changeable(sel) ? hitHandle(sel, e.p, tol()) : null;
      if (sel && handle) {
        drag = { mode: "resize", start: e.p, s0: e.s, handle, target: sel, orig: { x0: sel.x0, y0: sel.y0, x1: sel.x1, y1: sel.y1 } };
        return;
      }
      const hit = hitBox(shapes(), e.p, tol() / 2);
      if (hit) {
        store.state.selected = hit.lid ?? `s${hit.sid}`;
        store.emit("selection");
        if (!changeable(hit)) return; // selected to look at, not to move
        drag = { mode: "move", start: e.p, s0: e.s, target: hit, orig: { x0: hit.x0, y0: hit.y0, x1: hit.x1, y1: hit.y1 } };
        return;
      }
      if (store.state.selected) {
        store.state.selected = null;
        store.emit("selection");
      }
      drag = { mode: "draw", start: e.p, s0: e.s };
    },
    move(e) {
      if (!drag) return;
      const { w, h } = size();
      if (drag.mode === "draw") {
        store.state.draft = clampBox(normalize(drag.start.x, drag.start.y, e.p.x, e.p.y), w, h);
        store.emit("render");
      } else if (drag.mode === "move" && drag.orig && drag.target) {
        preview(drag.target, moveBox(drag.orig, e.p.x - drag.start.x, e.p.y - drag.start.y, w, h));
      } else if (drag.mode === "resize" && drag.orig && drag.target && drag.handle) {
        preview(drag.target, resizeBox(drag.orig, drag.handle, e.p, w, h));
      }
    },
    up(e) {
      const d = drag;
      drag = null;
      if (!d) return;
      const moved = Math.hypot(e.s.x - d.s0.x, e.s.y - d.s0.y) >= MIN_BOX_PX;
      if (d.mode === "draw") {
        const b = store.state.draft;
        store.state.draft = null;
        store.emit("render");
        if (b && moved && b.x1 - b.x0 >= 1 && b.y1 - b.y0 >= 1) {
          const a = makeAnnotation({
            kind: "box",
            label: store.state.currentLabel,
            ...b,
            author: store.config?.user?.id ?? null,
            author_name: store.config?.user?.name ?? "",
          });
          ctx.history.run(addBox(store, a));
        }
        return;
      }
      const target = /** @type {{lid?: string, sid?: number}} */ (d.target);
      const orig = /** @type {Box} */ (d.orig);
      if (target.lid) {
        const a = store.annotation(target.lid);
        if (!a) return;
        const after = { x0: Number(a.x0), y0: Number(a.y0), x1: Number(a.x1), y1: Number(a.y1) };
        Object.assign(a, orig);
        if (moved && !sameBox(after, orig, 0)) ctx.history.run(updateBox(store, target.lid, after, { ...orig }));
        else store.emit("render");
      } else if (target.sid !== undefined) {
        const after = store.state.draft;
        store.state.draft = null;
        if (after && moved && !sameBox(after, orig, 0)) ctx.history.run(editSuggestion(store, target.sid, { ...after }));
        else store.emit("render");
      }
    },
  };
}
