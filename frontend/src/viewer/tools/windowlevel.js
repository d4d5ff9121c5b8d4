// @ts-check
/** Window/level tool: drag horizontally for width, vertically for level (also right-drag or Ctrl+drag). */

import { dragWindow } from "../lut.js";

/**
 * @param {import("./tool.js").ToolContext} ctx
 * @returns {import("./tool.js").Tool}
 */
export function windowLevelTool(ctx) {
  /** @type {{x: number, y: number, center: number, width: number} | null} */
  let start = null;
  return {
    name: "windowlevel",
    cursor: "ns-resize",
    down(e) {
      const wl = ctx.store.state.wl;
      start = { x: e.s.x, y: e.s.y, center: wl.center, width: wl.width };
      ctx.store.state.interacting = true;
    },
    move(e) {
      if (!start) return;
      const img = ctx.store.state.image;
      const range = img ? img.max - img.min : 65535;
      const next = dragWindow(start, e.s.x - start.x, e.s.y - start.y, range);
      Object.assign(ctx.store.state.wl, next);
      ctx.store.emit("wl");
    },
    up() {
      start = null;
      ctx.store.state.interacting = false;
      ctx.store.emit("render");
    },
  };
}
