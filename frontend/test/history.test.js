// Undo/redo over the viewer's commands: every edit can be taken back and redone, in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { History } from "../src/viewer/history.js";
import { Store, fromServer, isDirty, makeAnnotation } from "../src/viewer/store.js";
import { addBox } from "../src/viewer/commands/addBox.js";
import { updateBox } from "../src/viewer/commands/updateBox.js";
import { deleteBox } from "../src/viewer/commands/deleteBox.js";
import { acceptSuggestion } from "../src/viewer/commands/acceptSuggestion.js";
import { editSuggestion } from "../src/viewer/commands/editSuggestion.js";
import { rejectSuggestion } from "../src/viewer/commands/rejectSuggestion.js";
import { acceptAll } from "../src/viewer/commands/acceptAll.js";
import { setHead } from "../src/viewer/commands/setHead.js";

const config = { user: { id: 7, name: "alice" }, schema: { box_labels: ["fracture", "lesion"], heads: [] } };
const sugg = (id, over = {}) => ({ id, kind: "box", label: "fracture", head: "", value: null, x0: 10, y0: 10, x1: 50, y1: 50, score: 0.9, state: "pending", savedState: "pending", model_version: 1, ...over });

test("history undoes and redoes in order and a new edit clears redo", () => {
  const log = [];
  const h = new History();
  const cmd = (n) => ({ label: n, do: () => log.push(`do ${n}`), undo: () => log.push(`undo ${n}`) });
  h.run(cmd("a"));
  h.run(cmd("b"));
  assert.equal(h.undo()?.label, "b");
  assert.equal(h.redo()?.label, "b");
  h.undo();
  h.run(cmd("c"));
  assert.equal(h.canRedo, false);
  assert.equal(h.redo(), null);
  assert.deepEqual(log, ["do a", "do b", "undo b", "do b", "undo b", "do c"]);
});

test("draw, move, relabel, delete — each undoable back to nothing", () => {
  const store = new Store(config);
  const h = new History();
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 2, x1: 30, y1: 40, author: 7 });
  h.run(addBox(store, a));
  h.run(updateBox(store, a.lid, { x0: 11, y0: 12, x1: 40, y1: 50 }));
  h.run(updateBox(store, a.lid, { label: "lesion" }));
  h.run(deleteBox(store, a.lid));
  assert.equal(store.boxes().length, 0);
  h.undo();
  assert.equal(store.boxes()[0].label, "lesion");
  h.undo();
  assert.equal(store.boxes()[0].label, "fracture");
  h.undo();
  assert.deepEqual([a.x0, a.y0, a.x1, a.y1], [1, 2, 30, 40]);
  h.undo();
  assert.equal(store.boxes().length, 0);
  assert.equal(isDirty(a), false, "an unsaved box drawn and undone has nothing to save");
  h.redo();
  h.redo();
  assert.deepEqual([a.x0, a.y0, a.x1, a.y1], [11, 12, 40, 50]);
});

test("undoing the delete of a saved box makes it dirty again (to be re-created)", () => {
  const store = new Store(config);
  const saved = fromServer({ id: 5, kind: "box", label: "fracture", x0: 0, y0: 0, x1: 5, y1: 5, version: 2, origin: "manual" });
  store.state.annotations.push(saved);
  const h = new History();
  h.run(deleteBox(store, saved.lid));
  assert.equal(isDirty(saved), true);
  h.undo();
  assert.equal(isDirty(saved), false);
});

test("accept, edit and reject suggestions, with undo restoring them to pending", () => {
  const store = new Store(config);
  store.state.suggestions = [sugg(1), sugg(2), sugg(3)];
  const h = new History();
  h.run(acceptSuggestion(store, 1));
  h.run(editSuggestion(store, 2, { x0: 12, y0: 10, x1: 60, y1: 55 }));
  h.run(rejectSuggestion(store, 3));
  assert.deepEqual(store.state.suggestions.map((s) => s.state), ["accepted", "edited", "rejected"]);
  const boxes = store.boxes();
  assert.equal(boxes.length, 2);
  assert.deepEqual(boxes.map((b) => [b.suggestion, b.origin]), [[1, "suggestion-accepted"], [2, "suggestion-edited"]]);
  assert.deepEqual([boxes[1].x0, boxes[1].x1], [12, 60]);
  h.undo();
  h.undo();
  h.undo();
  assert.deepEqual(store.state.suggestions.map((s) => s.state), ["pending", "pending", "pending"]);
  assert.equal(store.boxes().length, 0);
});

test("accept-all is one undo step", () => {
  const store = new Store(config);
  store.state.suggestions = [sugg(1), sugg(2, { state: "rejected", savedState: "rejected" }), sugg(3)];
  const h = new History();
  h.run(acceptAll(store));
  assert.equal(store.boxes().length, 2);
  h.undo();
  assert.equal(store.boxes().length, 0);
  assert.deepEqual(store.state.suggestions.map((s) => s.state), ["pending", "rejected", "pending"]);
});

test("head answers are mine, changeable and undoable to unanswered", () => {
  const store = new Store(config);
  const h = new History();
  h.run(setHead(store, "abnormal", "yes"));
  assert.equal(store.headAnswer("abnormal")?.value, "yes");
  assert.equal(store.headAnswer("abnormal")?.author, 7);
  h.run(setHead(store, "abnormal", "unknown"));
  h.undo();
  assert.equal(store.headAnswer("abnormal")?.value, "yes");
  h.undo();
  assert.equal(store.headAnswer("abnormal")?.deleted, true);
  assert.equal(isDirty(/** @type {any} */ (store.headAnswer("abnormal"))), false);
});

test("deleting a box made from a suggestion puts the suggestion back to pending; undo restores both", () => {
  const store = new Store(config);
  store.state.suggestions = [sugg(1)];
  const h = new History();
  h.run(acceptSuggestion(store, 1));
  const lid = store.boxes()[0].lid;
  h.run(deleteBox(store, lid));
  assert.equal(store.suggestion(1)?.state, "pending");
  assert.equal(store.boxes().length, 0);
  h.undo();
  assert.equal(store.suggestion(1)?.state, "accepted");
  assert.equal(store.boxes().length, 1);
});

test("clearing a head answer leaves it unanswered (deleted on the server), undo brings it back", async () => {
  const { clearHead } = await import("../src/viewer/commands/clearHead.js");
  const store = new Store(config);
  const saved = fromServer({ id: 3, kind: "head", head: "implant", value: "no", version: 1, origin: "manual", author: 7 });
  store.state.annotations.push(saved);
  const h = new History();
  h.run(clearHead(store, "implant"));
  assert.equal(saved.deleted, true);
  assert.equal(isDirty(saved), true);
  h.undo();
  assert.equal(isDirty(saved), false);
});

test("giving a suggestion another label accepts it as edited with that label; undo puts it back", () => {
  const store = new Store(config);
  store.state.suggestions = [sugg(1)];
  const h = new History();
  const other = config.schema.box_labels.find((l) => l !== sugg(1).label);
  h.run(acceptSuggestion(store, 1, undefined, other));
  const [box] = store.boxes();
  assert.deepEqual([box.label, box.origin, box.suggestion], [other, "suggestion-edited", 1]);
  assert.deepEqual([box.x0, box.y0, box.x1, box.y1], [sugg(1).x0, sugg(1).y0, sugg(1).x1, sugg(1).y1]);
  assert.equal(store.state.suggestions[0].state, "edited");
  h.undo();
  assert.deepEqual(store.boxes(), []);
  assert.equal(store.state.suggestions[0].state, "pending");
  // The suggestion's own label is a plain accept.
  h.run(acceptSuggestion(store, 1, undefined, sugg(1).label));
  assert.equal(store.boxes()[0].origin, "suggestion-accepted");
});
