// @ts-check
/**
 * Every keyboard shortcut in one table: the key handler and the `?` help read the same list, so
 * the help can never go stale.
 */

/**
 * @typedef {{keys: string, description: string, match: (e: KeyboardEvent) => boolean, action: string}} Shortcut
 */

/**
 * @param {string} key
 * @param {{ctrl?: boolean, shift?: boolean}} [mods]
 * @returns {(e: KeyboardEvent) => boolean}
 */
const k = (key, mods = {}) => (e) =>
  e.key.toLowerCase() === key.toLowerCase() &&
  Boolean(mods.ctrl) === (e.ctrlKey || e.metaKey) &&
  (mods.shift === undefined || mods.shift === e.shiftKey) &&
  !e.altKey;

/**
 * @param {string} code
 * @param {{shift?: boolean}} [mods]
 * @returns {(e: KeyboardEvent) => boolean}
 */
const c = (code, mods = {}) => (e) =>
  e.code === code && !e.ctrlKey && !e.metaKey && !e.altKey && (mods.shift === undefined || mods.shift === e.shiftKey);

/** @type {Shortcut[]} */
export const SHORTCUTS = [
  { keys: "A", description: "Accept the selected (or best) suggestion", match: k("a", { shift: false }), action: "accept" },
  { keys: "R", description: "Reject the selected (or best) suggestion", match: k("r", { shift: false }), action: "reject" },
  { keys: "Shift+A", description: "Accept all suggestions of this image", match: k("a", { shift: true }), action: "acceptAll" },
  { keys: "Tab / Shift+Tab", description: "Select next / previous box or suggestion", match: (e) => e.key === "Tab", action: "cycle" },
  { keys: "1 … 9", description: "Set the label of the selected box or suggestion (and of new boxes)", match: (e) => /^Digit[1-9]$/.test(e.code) && !e.shiftKey && !e.ctrlKey && !e.altKey, action: "label" },
  { keys: "Arrow keys (Shift: ×10)", description: "Nudge the selected box by one image pixel", match: (e) => e.key.startsWith("Arrow") && !e.ctrlKey && !e.altKey, action: "nudge" },
  { keys: "Delete / Backspace", description: "Delete the selected box", match: (e) => e.key === "Delete" || e.key === "Backspace", action: "delete" },
  { keys: "Escape", description: "Deselect, cancel", match: (e) => e.key === "Escape", action: "escape" },
  { keys: "Ctrl+Z", description: "Undo", match: k("z", { ctrl: true, shift: false }), action: "undo" },
  { keys: "Ctrl+Shift+Z / Ctrl+Y", description: "Redo", match: (e) => k("z", { ctrl: true, shift: true })(e) || k("y", { ctrl: true })(e), action: "redo" },
  { keys: "N", description: "Next image in the worklist", match: k("n", { shift: false }), action: "next" },
  { keys: "P", description: "Previous image in the worklist", match: k("p", { shift: false }), action: "prev" },
  { keys: "B", description: "Box tool (draw, select, move, resize)", match: k("b", { shift: false }), action: "tool:box" },
  { keys: "H", description: "Pan tool (or middle-drag, or Space+drag)", match: k("h", { shift: false }), action: "tool:pan" },
  { keys: "W", description: "Window/level tool (or right-drag, or Ctrl+drag)", match: k("w", { shift: false }), action: "tool:windowlevel" },
  { keys: "M", description: "Measure tool (mm when pixel spacing is known)", match: k("m", { shift: false }), action: "tool:measure" },
  { keys: "Shift+1", description: "Window preset: bone", match: c("Digit1", { shift: true }), action: "preset:bone" },
  { keys: "Shift+2", description: "Window preset: soft tissue", match: c("Digit2", { shift: true }), action: "preset:soft" },
  { keys: "Shift+3", description: "Window preset: full range", match: c("Digit3", { shift: true }), action: "preset:full" },
  { keys: "Shift+4", description: "Window preset: auto", match: c("Digit4", { shift: true }), action: "preset:auto" },
  { keys: "I", description: "Invert grey scale", match: k("i", { shift: false }), action: "invert" },
  { keys: "E", description: "Toggle the error-map overlay", match: k("e", { shift: false }), action: "overlay" },
  { keys: "F", description: "Fit the image to the window", match: k("f", { shift: false }), action: "fit" },
  { keys: "O", description: "Original size (1:1)", match: k("o", { shift: false }), action: "oneToOne" },
  { keys: "+ / −  or wheel", description: "Zoom in / out", match: (e) => ["+", "=", "-"].includes(e.key) && !e.ctrlKey, action: "zoomKey" },
  { keys: "[ / ]", description: "Rotate the view left / right", match: (e) => e.key === "[" || e.key === "]", action: "rotate" },
  { keys: "Shift+H / Shift+V", description: "Flip the view horizontally / vertically", match: (e) => (e.key === "H" || e.key === "V") && e.shiftKey && !e.ctrlKey, action: "flip" },
  { keys: "?", description: "Show this list", match: (e) => e.key === "?", action: "help" },
];

/**
 * @param {KeyboardEvent} e
 * @returns {Shortcut|undefined}
 */
export function shortcutFor(e) {
  return SHORTCUTS.find((s) => s.match(e));
}
