// @ts-check
/**
 * Undo/redo over commands: every edit is a command object with `do()` and `undo()` (one per file
 * under commands/). Running a new command clears the redo stack.
 */

/**
 * @typedef {{label: string, do: () => void, undo: () => void, record?: import("./types.js").Annotation}} Command
 *   `record`: the existing record the command changes, when it changes one (not a new one)
 */

export class History {
  /** @param {(cmd: Command, how: "do"|"undo"|"redo") => void} [onChange] called after each step */
  constructor(onChange) {
    /** @type {Command[]} */
    this.done = [];
    /** @type {Command[]} */
    this.undone = [];
    this.onChange = onChange ?? (() => {});
  }

  /** @param {Command} cmd */
  run(cmd) {
    cmd.do();
    this.done.push(cmd);
    this.undone = [];
    this.onChange(cmd, "do");
  }

  /** @returns {Command|null} the command undone, if any */
  undo() {
    const cmd = this.done.pop();
    if (!cmd) return null;
    cmd.undo();
    this.undone.push(cmd);
    this.onChange(cmd, "undo");
    return cmd;
  }

  /** @returns {Command|null} the command redone, if any */
  redo() {
    const cmd = this.undone.pop();
    if (!cmd) return null;
    cmd.do();
    this.done.push(cmd);
    this.onChange(cmd, "redo");
    return cmd;
  }

  get canUndo() {
    return this.done.length > 0;
  }

  get canRedo() {
    return this.undone.length > 0;
  }
}
