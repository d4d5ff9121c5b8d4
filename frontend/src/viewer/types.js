// @ts-check
/**
 * Shared JSDoc types of the viewer's plain data: boxes, annotations, suggestions, view state.
 * Shapes stay plain objects so they serialize, diff and undo trivially.
 */

/**
 * A box in original image pixels (x0 <= x1, y0 <= y1).
 * @typedef {{x0: number, y0: number, x1: number, y1: number}} Box
 */

/** @typedef {"nw"|"n"|"ne"|"e"|"se"|"s"|"sw"|"w"} Handle */

/**
 * The view: zoom (screen px per image px), pan (screen px), rotation in quarter turns clockwise,
 * flips applied before rotation; the viewport size in CSS pixels.
 * @typedef {{zoom: number, panX: number, panY: number, rotation: number, flipH: boolean, flipV: boolean,
 *   vw: number, vh: number, iw: number, ih: number}} View
 */

/**
 * What the server last confirmed for a record (null: never saved).
 * @typedef {{label?: string, x0?: number|null, y0?: number|null, x1?: number|null, y1?: number|null,
 *   value?: any, deleted: boolean}} Saved
 */

/**
 * A local annotation: `lid` is stable in the page, `id` is the server's once created.
 * `client_uid` is the idempotency key its create carries (null on records the viewer did not make).
 * @typedef {{lid: string, client_uid: string|null, id: number|null, kind: "box"|"head", label: string, head: string, value: any,
 *   x0: number|null, y0: number|null, x1: number|null, y1: number|null, suggestion: number|null,
 *   origin: string, author: number|null, author_name: string, version: number, deleted: boolean,
 *   saved: Saved|null, conflict: any, error: string}} Annotation
 */

/**
 * A model suggestion; `state` is local (what the user did), `savedState` what the server knows.
 * @typedef {{id: number, kind: "box"|"head", label: string, head: string, value: any,
 *   x0: number|null, y0: number|null, x1: number|null, y1: number|null, score: number,
 *   state: string, savedState: string, model_version: number|null}} Suggestion
 */

/** @typedef {{center: number, width: number, invert: boolean}} WindowLevel */

export {};
