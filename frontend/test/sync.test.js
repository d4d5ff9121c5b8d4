// Autosave and conflicts: edits reach the server with their version, failures are retried and
// never dropped, a 409 is kept for the user to resolve, and live merges keep unsaved work.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Autosave, changedFields } from "../src/viewer/sync.js";
import { Store, fromServer, isDirty, makeAnnotation } from "../src/viewer/store.js";
import { conflictRows, mergeRemote, resolveOverwrite, resolveReload } from "../src/viewer/conflict.js";

const config = { user: { id: 7, name: "alice" }, schema: { box_labels: ["fracture"], heads: [] } };

/** A scripted fake server: each method pops the next reply; calls are logged. */
function fakeApi(replies) {
  const calls = [];
  const next = (name, args) => {
    calls.push([name, ...args]);
    const r = replies.shift();
    if (!r) throw new Error(`unexpected call ${name}`);
    return Promise.resolve(typeof r === "function" ? r(...args) : r);
  };
  return {
    calls,
    createAnnotation: (...a) => next("create", a),
    updateAnnotation: (...a) => next("update", a),
    deleteAnnotation: (...a) => next("delete", a),
    rejectSuggestion: (...a) => next("reject", a),
    reopenSuggestion: (...a) => next("reopen", a),
  };
}

const row = (over = {}) => ({ id: 9, kind: "box", label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9, version: 1, origin: "manual", author: 7, author_name: "alice", ...over });

test("a new box is created, then a move is sent as a PATCH of the changed fields with the version", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  const api = fakeApi([{ ok: true, status: 201, data: row() }, { ok: true, status: 200, data: row({ x0: 2, version: 2 }) }]);
  const sync = new Autosave(store, api, { imageId: 3, timeSpent: () => 1500 });
  await sync.flush();
  assert.match(a.client_uid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(api.calls[0], ["create", { image: 3, kind: "box", client_uid: a.client_uid, label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9, time_spent_ms: 1500 }]);
  a.x0 = 2;
  await sync.flush();
  assert.deepEqual(api.calls[1], ["update", 9, { version: 1, x0: 2, time_spent_ms: 1500 }]);
  assert.equal(a.version, 2);
  assert.equal(isDirty(a), false);
  assert.equal(store.state.sync.status, "saved");
});

test("offline: the edit is kept and retried with growing delays until it gets through", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  const offline = { ok: false, status: 0, data: { detail: "Network error" } };
  const api = fakeApi([offline, { ok: false, status: 502, data: null }, { ok: true, status: 201, data: row() }]);
  const timers = [];
  const sync = new Autosave(store, api, { imageId: 3, setTimer: (fn, ms) => timers.push({ fn, ms }) });
  await sync.flush();
  assert.equal(store.state.sync.status, "offline");
  assert.equal(store.state.sync.pending, 1);
  assert.equal(isDirty(a), true);
  await timers.shift().fn();
  assert.equal(store.state.sync.status, "error");
  await timers.shift().fn();
  assert.equal(store.state.sync.status, "saved");
  assert.equal(a.id, 9);
  assert.equal(api.calls.length, 3);
});

test("backoff doubles and is capped", async () => {
  const store = new Store(config);
  store.state.annotations.push(makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 }));
  const offline = { ok: false, status: 0, data: {} };
  const api = fakeApi(Array(6).fill(offline));
  const delays = [];
  let pending = null;
  const sync = new Autosave(store, api, { imageId: 1, baseDelay: 1000, maxDelay: 8000, setTimer: (fn, ms) => { delays.push(ms); pending = fn; } });
  await sync.flush();
  for (let i = 0; i < 5; i++) await pending();
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000, 8000]);
});

test("409 marks the record conflicted with the server's current state and stops retrying it", async () => {
  const store = new Store(config);
  const a = fromServer(row());
  store.state.annotations.push(a);
  a.x1 = 20;
  const current = row({ label: "fracture", x1: 30, version: 3, author_name: "bob" });
  const api = fakeApi([{ ok: false, status: 409, data: { detail: "changed", current } }]);
  const conflicts = [];
  store.on("conflict", (x) => conflicts.push(x));
  const sync = new Autosave(store, api, { imageId: 1 });
  await sync.flush();
  assert.equal(conflicts.length, 1);
  assert.equal(store.state.sync.status, "conflict");
  await sync.flush();
  assert.equal(api.calls.length, 1, "no blind retry of a conflict");
  assert.deepEqual(conflictRows(a, current), [{ field: "x1", mine: "20", theirs: "30" }]);
});

test("overwrite resends my fields on the server's version; reload takes theirs", async () => {
  const current = row({ x1: 30, label: "fracture", version: 3 });
  const a = fromServer(row());
  a.x1 = 20;
  a.conflict = current;
  resolveOverwrite(a, current);
  assert.equal(a.version, 3);
  assert.deepEqual(changedFields(a), { x1: 20 });
  const b = fromServer(row());
  b.x1 = 20;
  resolveReload(b, current);
  assert.equal(b.x1, 30);
  assert.equal(b.version, 3);
  assert.equal(isDirty(b), false);
});

test("a deleted-by-someone-else conflict shows as deleted", () => {
  const a = fromServer(row());
  a.x0 = 3;
  const rows = conflictRows(a, row({ is_deleted: true, version: 2 }));
  assert.deepEqual(rows.map((r) => r.field), ["x0", "deleted"]);
});

test("400 shows the reason and waits for a change instead of hammering the server", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "nope", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  const api = fakeApi([{ ok: false, status: 400, data: { detail: "Invalid input.", errors: { label: ["must be one of fracture"] } } }, { ok: true, status: 201, data: row() }]);
  const sync = new Autosave(store, api, { imageId: 1 });
  await sync.flush();
  assert.match(a.error, /label: must be one of fracture/);
  assert.equal(store.state.sync.status, "error");
  await sync.flush();
  assert.equal(api.calls.length, 1);
  a.label = "fracture";
  await sync.flush();
  assert.equal(api.calls.length, 2);
  assert.equal(a.error, "");
});

test("delete sends the version; undoing a saved delete creates the box again", async () => {
  const store = new Store(config);
  const a = fromServer(row({ version: 4 }));
  store.state.annotations.push(a);
  a.deleted = true;
  const api = fakeApi([{ ok: true, status: 204, data: null }, { ok: true, status: 201, data: row({ id: 10 }) }]);
  const sync = new Autosave(store, api, { imageId: 1 });
  await sync.flush();
  assert.deepEqual(api.calls[0], ["delete", 9, 4]);
  a.deleted = false;
  await sync.flush();
  assert.equal(api.calls[1][0], "create");
  assert.equal(typeof api.calls[1][1].client_uid, "string", "a new record under a new key");
  assert.equal(a.id, 10);
});

test("a create whose reply was lost is sent again with the same client_uid; a repeat answer is adopted", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  const timers = [];
  const api = fakeApi([
    { ok: false, status: 0, data: {} }, // the row was made, the reply never came
    { ok: true, status: 200, data: row({ client_uid: a.client_uid }) }, // the repeat: the row the first send made
    { ok: true, status: 200, data: row({ x1: 20, version: 2, client_uid: a.client_uid }) },
  ]);
  const sync = new Autosave(store, api, { imageId: 3, setTimer: (fn) => timers.push(fn) });
  await sync.flush();
  a.x1 = 20; // moved while offline: the first send carried x1 9
  await timers.shift()();
  const creates = api.calls.filter((c) => c[0] === "create");
  assert.equal(creates.length, 2);
  assert.equal(creates[1][1].client_uid, creates[0][1].client_uid);
  // The server holds x1 9 (what the first send carried): the move goes out as an update.
  assert.deepEqual(api.calls[2], ["update", 9, { version: 1, x1: 20, time_spent_ms: 0 }]);
  assert.equal(a.id, 9);
  assert.equal(a.version, 2);
  assert.equal(isDirty(a), false);
  assert.deepEqual(store.state.annotations, [a]);
});

test("a flush while a create is in flight (the online event beside the retry timer) sends nothing", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  let answer = () => {};
  const api = fakeApi([() => new Promise((resolve) => (answer = () => resolve({ ok: true, status: 201, data: row() })))]);
  const sync = new Autosave(store, api, { imageId: 3 });
  const first = sync.flush();
  await Promise.resolve();
  await sync.flush(); // `online`
  await sync.flush(); // the retry timer
  assert.equal(api.calls.length, 1);
  answer();
  await first;
  assert.equal(api.calls.length, 1, "the pass asked for after the reply finds nothing left to send");
  assert.equal(a.id, 9);
  assert.equal(store.state.sync.status, "saved");
});

test("another user's client_uid (409 without a current record) is shown, not retried", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  const api = fakeApi([{ ok: false, status: 409, data: { detail: "This client_uid already names another user's annotation" } }]);
  const sync = new Autosave(store, api, { imageId: 3 });
  await sync.flush();
  await sync.flush();
  assert.equal(api.calls.length, 1);
  assert.match(a.error, /client_uid/);
  assert.equal(a.conflict, null);
});

test("my second answer to a head (409 from another tab) becomes an update of the first", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ kind: "head", head: "abnormal", value: "yes", author: 7 });
  store.state.annotations.push(a);
  const current = { id: 4, kind: "head", head: "abnormal", value: "no", version: 2 };
  const api = fakeApi([{ ok: false, status: 409, data: { current } }, { ok: true, status: 200, data: { ...current, value: "yes", version: 3 } }]);
  const sync = new Autosave(store, api, { imageId: 1 });
  await sync.flush();
  assert.deepEqual(api.calls[1], ["update", 4, { version: 2, value: "yes", time_spent_ms: 0 }]);
  assert.equal(a.version, 3);
});

test("rejections are posted once", async () => {
  const store = new Store(config);
  store.state.suggestions = [{ id: 5, kind: "box", state: "rejected", savedState: "pending" }];
  const api = fakeApi([{ ok: true, status: 200, data: { id: 5, state: "rejected" } }]);
  const sync = new Autosave(store, api, { imageId: 1 });
  await sync.flush();
  await sync.flush();
  assert.deepEqual(api.calls, [["reject", 5]]);
});

test("live merge: untouched records follow the server, my unsaved edits stay, new ones appear", () => {
  const untouched = fromServer(row({ id: 1 }));
  const mine = fromServer(row({ id: 2 }));
  mine.x0 = 5;
  const unsent = makeAnnotation({ label: "fracture", x0: 0, y0: 0, x1: 3, y1: 3 });
  const gone = fromServer(row({ id: 3 }));
  const server = [row({ id: 1, x1: 50, version: 2 }), row({ id: 2, x1: 70, version: 2 }), row({ id: 4, author_name: "bob" })];
  const { annotations, changed } = mergeRemote([untouched, mine, unsent, gone], server, fromServer, isDirty);
  assert.equal(untouched.x1, 50);
  assert.equal(mine.x0, 5);
  assert.equal(mine.version, 1, "my stale version stays so the save meets the conflict");
  assert.ok(annotations.includes(unsent));
  assert.ok(!annotations.includes(gone));
  assert.deepEqual(annotations.map((a) => a.id).sort(), [1, 2, 4, null].sort());
  assert.equal(changed.length, 3);
});

test("a record brought in by a live refresh before our create's response is not shown twice", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  const api = fakeApi([
    () => {
      store.state.annotations.push(fromServer(row())); // the live merge, while our POST is in flight
      return { ok: true, status: 201, data: row() };
    },
  ]);
  await new Autosave(store, api, { imageId: 1 }).flush();
  assert.deepEqual(store.state.annotations, [a]);
  assert.equal(a.id, 9);
});

test("live merge: my unsent record whose create got through takes the server's id instead of showing twice", () => {
  const mine = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 20, y1: 9 });
  const { annotations } = mergeRemote([mine], [row({ client_uid: mine.client_uid })], fromServer, isDirty);
  assert.deepEqual(annotations, [mine]);
  assert.equal(mine.id, 9);
  assert.equal(mine.version, 1);
  assert.deepEqual(changedFields(mine), { x1: 20 }, "what the server lacks is sent as an update");
});

test("undoing a saved rejection reopens the suggestion on the server", async () => {
  const store = new Store(config);
  store.state.suggestions = [{ id: 7, kind: "box", state: "pending", savedState: "rejected" }];
  const api = fakeApi([{ ok: true, status: 200, data: { id: 7, state: "pending" } }]);
  const sync = new Autosave(store, api, { imageId: 1 });
  assert.equal(sync.unsavedCount(), 1);
  await sync.flush();
  await sync.flush();
  assert.deepEqual(api.calls, [["reopen", 7]]);
  assert.equal(store.state.suggestions[0].savedState, "pending");
  assert.equal(sync.unsavedCount(), 0);
});

test("undoing a saved delete brings the box back even after the live refresh that followed the delete", async () => {
  const { History } = await import("../src/viewer/history.js");
  const { deleteBox } = await import("../src/viewer/commands/deleteBox.js");
  const store = new Store(config);
  const box = fromServer(row());
  store.state.annotations = [box];
  const h = new History();
  const api = fakeApi([
    { ok: true, status: 204, data: null }, // the delete
    (body) => ({ ok: true, status: 201, data: row({ ...body, id: 10 }) }), // the box brought back
  ]);
  const sync = new Autosave(store, api, { imageId: 1 });
  h.run(deleteBox(store, box.lid));
  await sync.flush();
  // The server's "annotation saved" event: the listing no longer has the box.
  store.state.annotations = mergeRemote(store.state.annotations, [], fromServer, isDirty).annotations;
  assert.deepEqual(store.boxes(), []);
  h.undo();
  assert.deepEqual(store.boxes().map((a) => [a.x0, a.x1]), [[1, 9]]);
  await sync.flush();
  assert.deepEqual(api.calls.map((c) => c[0]), ["delete", "create"]);
  assert.equal(api.calls[1][1].x1, 9);
  assert.equal(store.boxes()[0].id, 10);
});

test("after a cleared answer is kept for undo, a live answer to the same head from another tab wins", async () => {
  const { clearHead } = await import("../src/viewer/commands/clearHead.js");
  const heads = { ...config, schema: { box_labels: [], heads: [{ name: "implant", type: "binary" }] } };
  const store = new Store(heads);
  const mine = fromServer(row({ id: 3, kind: "head", head: "implant", value: true }));
  store.state.annotations = [mine];
  const api = fakeApi([{ ok: true, status: 204, data: null }]);
  new (await import("../src/viewer/history.js")).History().run(clearHead(store, "implant"));
  await new Autosave(store, api, { imageId: 1 }).flush();
  const other = row({ id: 4, kind: "head", head: "implant", value: false });
  store.state.annotations = mergeRemote(store.state.annotations, [other], fromServer, isDirty).annotations;
  assert.equal(store.headAnswer("implant")?.id, 4);
  assert.equal(store.headAnswer("implant")?.value, false);
});

test("a change refused for who you are is taken back, not kept and retried on every visit", async () => {
  const { History } = await import("../src/viewer/history.js");
  const { updateBox } = await import("../src/viewer/commands/updateBox.js");
  const { deleteBox } = await import("../src/viewer/commands/deleteBox.js");
  const store = new Store(config);
  const theirs = fromServer(row({ id: 3, author: 8, author_name: "bob", suggestion: 5 }));
  store.state.annotations = [theirs];
  store.state.suggestions = [{ id: 5, kind: "box", state: "accepted", savedState: "accepted" }];
  const notices = [];
  store.on("notice", (n) => notices.push(n.text));
  const refused = { ok: false, status: 403, data: { detail: "Annotators may only change their own annotations.", code: "not_your_annotation" } };
  const api = fakeApi([refused, refused]);
  const sync = new Autosave(store, api, { imageId: 1 });
  const h = new History();
  h.run(updateBox(store, theirs.lid, { x1: 50 }));
  await sync.flush();
  assert.equal(theirs.x1, 9, "back to what the server holds");
  h.run(deleteBox(store, theirs.lid));
  await sync.flush();
  assert.equal(theirs.deleted, false);
  assert.equal(store.state.suggestions[0].state, "accepted", "the suggestion is not shown as pending again");
  assert.equal(sync.unsavedCount(), 0, "nothing left for the journal to restore on the next visit");
  assert.equal(store.state.sync.status, "saved");
  assert.deepEqual(notices, Array(2).fill("Not saved: Annotators may only change their own annotations. Your change was taken back."));
});

test("a 403 that is not about who you are (an expired session's CSRF failure) keeps the change", async () => {
  const store = new Store(config);
  const box = fromServer(row());
  store.state.annotations = [box];
  box.x1 = 50;
  const api = fakeApi([{ ok: false, status: 403, data: { detail: "CSRF Failed: CSRF token missing." } }]);
  const sync = new Autosave(store, api, { imageId: 1 });
  await sync.flush();
  assert.equal(box.x1, 50);
  assert.equal(sync.unsavedCount(), 1);
  assert.equal(store.state.sync.status, "error");
});

test("signed out (401): the edit is kept, the user is told to sign in again, and it is sent once they have", async () => {
  const store = new Store(config);
  const a = makeAnnotation({ label: "fracture", x0: 1, y0: 1, x1: 9, y1: 9 });
  store.state.annotations.push(a);
  const signedOut = { ok: false, status: 401, data: { detail: "Authentication credentials were not provided." } };
  const api = fakeApi([signedOut, { ok: true, status: 201, data: row() }]);
  const timers = [];
  const sync = new Autosave(store, api, { imageId: 3, setTimer: (fn, ms) => timers.push({ fn, ms }) });
  await sync.flush();
  assert.equal(store.state.sync.status, "error");
  assert.match(store.state.sync.message, /^Signed out: sign in again/);
  assert.equal(isDirty(a), true);
  assert.equal(store.state.annotations.includes(a), true);  // not taken back, unlike a 403 refusal
  await timers.shift().fn();
  assert.equal(store.state.sync.status, "saved");
  assert.equal(a.id, 9);
});
