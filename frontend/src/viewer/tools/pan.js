// @ts-check
/** Pan tool: drag the image (also the middle button, or Space + drag, from any tool). */

/**
 * @param {import("./tool.js").ToolContext} ctx
 * @returns {import("./tool.js").Tool}
 */
export function panTool(ctx) {
  /** @type {{x: number, y: number, panX: number, panY: number} | null} */
  let start = null;
  return {
    name: "pan",
    cursor: "grab",
    down(e) {
      const v = ctx.store.state.view;
      start = { x: e.s.x, y: e.s.y, panX: v.panX, panY: v.panY };
    },
    move(e) {
      if (!start) return;
      const v = ctx.store.state.view;
      v.panX = start.panX + (e.s.x - start.x);
      v.panY = start.panY + (e.s.y - start.y);
      ctx.store.emit("view");
    },
    up() {
      start = null;
    },
  };
}
