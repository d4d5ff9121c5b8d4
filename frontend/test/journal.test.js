// Unsaved edits survive a closed tab: journalled to storage, restored on top of the server's state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, fromServer, isDirty, makeAnnotation } from "../src/viewer/store.js";
import { journalKey, restoreJournal, writeJournal } from "../src/viewer/journal.js";
import { Autosave } from "../src/viewer/sync.js";

const config = { user: { id: 7, name: "alice" }, schema: { box_labels: ["fracture"], heads: [] } };
const memory = () => {
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k), m };
};
const row = (over = {}) => ({ id: 9, kind: "box", label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9, version: 1, origin: "manual", author: 7, ...over });

test("nothing unsaved → nothing stored", () => {
  const store = new Store(config);
  store.state.annotations.push(fromServer(row()));
  const storage = memory();
  storage.setItem("k", "old");
  writeJournal(store, storage, "k");
  assert.equal(storage.getItem("k"), null);
});

test("a new box, a moved box and a rejection come back after a reload and are dirty again", () => {
  const before = new Store(config);
  const moved = fromServer(row());
  moved.x1 = 40;
  before.state.annotations.push(moved, makeAnnotation({ label: "fracture", x0: 5, y0: 5, x1: 20, y1: 20 }));
  before.state.suggestions.push({ id: 3, kind: "box", state: "rejected", savedState: "pending" });
  const storage = memory();
  const key = journalKey(12, 7);
  writeJournal(before, storage, key);

  const after = new Store(config);
  after.state.annotations.push(fromServer(row()));
  after.state.suggestions.push({ id: 3, kind: "box", state: "pending", savedState: "pending" });
  assert.equal(restoreJournal(after, storage, key), 3);
  const [a, b] = after.state.annotations;
  assert.equal(a.x1, 40);
  assert.ok(isDirty(a));
  assert.equal(b.id, null);
  assert.ok(isDirty(b));
  assert.equal(after.state.suggestions[0].state, "rejected");
});

test("an edit of a record that changed on the server keeps the old version (the save will get a 409)", () => {
  const before = new Store(config);
  const a = fromServer(row({ version: 2 }));
  a.label = "lesion";
  before.state.annotations.push(a);
  const storage = memory();
  writeJournal(before, storage, "k");
  const after = new Store(config);
  after.state.annotations.push(fromServer(row({ version: 5, x0: 3 })));
  restoreJournal(after, storage, "k");
  assert.equal(after.state.annotations[0].version, 2);
  assert.equal(after.state.annotations[0].label, "lesion");
});

test("a corrupt entry is ignored", () => {
  const storage = memory();
  storage.setItem("k", "{not json");
  assert.equal(restoreJournal(new Store(config), storage, "k"), 0);
});

test("a journalled create is sent after the reload with the key it was first sent with", async () => {
  const before = new Store(config);
  const drawn = makeAnnotation({ label: "fracture", x0: 5, y0: 5, x1: 20, y1: 20 });
  before.state.annotations.push(drawn);
  const sent = [];
  const api = (reply) => ({ createAnnotation: (body) => (sent.push(body), Promise.resolve(reply)) });
  const offline = { ok: false, status: 0, data: {} };
  await new Autosave(before, api(offline), { imageId: 12, setTimer: () => null }).flush();
  const storage = memory();
  writeJournal(before, storage, "k");

  const after = new Store(config);
  assert.equal(restoreJournal(after, storage, "k"), 1);
  const created = { ok: true, status: 201, data: row({ id: 30, x0: 5, y0: 5, x1: 20, y1: 20, client_uid: drawn.client_uid }) };
  await new Autosave(after, api(created), { imageId: 12 }).flush();
  assert.equal(sent.length, 2);
  assert.equal(sent[1].client_uid, drawn.client_uid);
  assert.equal(after.state.annotations[0].id, 30);
});

test("a journalled create the server already has goes onto that record (no second create)", () => {
  const before = new Store(config);
  const drawn = makeAnnotation({ label: "fracture", x0: 5, y0: 5, x1: 20, y1: 20 });
  before.state.annotations.push(drawn);
  drawn.x1 = 25; // moved after its create went out (and got through, though no reply came)
  const storage = memory();
  writeJournal(before, storage, "k");

  const after = new Store(config);
  after.state.annotations.push(fromServer(row({ id: 30, x0: 5, y0: 5, x1: 20, y1: 20, version: 1, client_uid: drawn.client_uid })));
  assert.equal(restoreJournal(after, storage, "k"), 1);
  assert.equal(after.state.annotations.length, 1);
  const [a] = after.state.annotations;
  assert.equal(a.id, 30);
  assert.equal(a.version, 1);
  assert.equal(a.x1, 25);
  assert.ok(isDirty(a));
});
