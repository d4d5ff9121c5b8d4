// @ts-check
/** Measure tool: drag a line; its length shows in mm when the pixel spacing is known. */

/**
 * @param {import("./tool.js").ToolContext} ctx
 * @returns {import("./tool.js").Tool}
 */
export function measureTool(ctx) {
  let dragging = false;
  return {
    name: "measure",
    cursor: "crosshair",
    down(e) {
      dragging = true;
      ctx.store.state.measure = { a: { ...e.p }, b: { ...e.p } };
      ctx.store.emit("measure");
    },
    move(e) {
      if (!dragging || !ctx.store.state.measure) return;
      ctx.store.state.measure.b = { ...e.p };
      ctx.store.emit("measure");
    },
    up() {
      dragging = false;
    },
  };
}
