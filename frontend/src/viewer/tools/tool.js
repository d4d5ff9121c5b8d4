// @ts-check
/**
 * What every tool receives: the pointer in screen and image pixels, and the viewer context.
 *
 * @typedef {{s: {x: number, y: number}, p: {x: number, y: number}, button: number, shift: boolean,
 *   ctrl: boolean, alt: boolean}} PointerInfo
 * @typedef {{store: import("../store.js").Store, history: import("../history.js").History}} ToolContext
 * @typedef {{name: string, cursor: string, down: (e: PointerInfo) => void, move: (e: PointerInfo) => void,
 *   up: (e: PointerInfo) => void, hover?: (e: PointerInfo) => string}} Tool
 */
export {};
