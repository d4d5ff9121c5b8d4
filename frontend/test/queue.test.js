// Queue mode: Next asks the server's queue, passing what was passed over; claims are renewed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QUEUE_EMPTY, SKIPPED_MAX, holderNotice, nextInQueue, readSkipped, refreshClaim, releaseUrl, writeSkipped } from "../src/viewer/queue.js";

const queue = { next_api: "/api/projects/7/queue/next/", viewer_url: "/projects/7/images/{id}/?queue=1" };

function memory() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
}

/** A fake server: answers in turn, records what was asked. */
function server(...replies) {
  const asked = [];
  const request = async (method, url, body) => {
    asked.push({ method, url, body });
    return replies.shift();
  };
  return { asked, request };
}

test("Next goes to the image the queue hands out and remembers the one passed over", async () => {
  const storage = memory();
  const s = server({ ok: true, status: 200, data: { image: { id: 42 }, reason: "uncertain" } });
  const r = await nextInQueue(s.request, queue, 7, 11, storage);
  assert.deepEqual(r, { url: "/projects/7/images/42/?queue=1" });
  assert.deepEqual(s.asked, [{ method: "POST", url: queue.next_api, body: { skip: [11] } }]);
  assert.deepEqual(readSkipped(storage, 7), [11]);
  assert.deepEqual(readSkipped(storage, 8), []); // per project

  const t = server({ ok: true, status: 200, data: { image: { id: 43 } } });
  await nextInQueue(t.request, queue, 7, 42, storage);
  assert.deepEqual(t.asked[0].body, { skip: [11, 42] });
});

test("an empty queue says so and starts over with the images passed over", async () => {
  const storage = memory();
  writeSkipped(storage, 7, [11, 12]);
  const s = server({ ok: true, status: 204, data: null });
  const r = await nextInQueue(s.request, queue, 7, 13, storage);
  assert.ok("notice" in r && r.notice.text.includes("Press Next again"));
  assert.deepEqual(readSkipped(storage, 7), []);
  // Nothing passed over but this image: the queue is simply empty.
  const t = server({ ok: true, status: 204, data: null });
  const r2 = await nextInQueue(t.request, queue, 7, 13, storage);
  assert.deepEqual(r2, { notice: { level: "info", text: QUEUE_EMPTY } });
});

test("a refusal or a network failure is shown and nothing is forgotten", async () => {
  const storage = memory();
  writeSkipped(storage, 7, [5]);
  const offline = await nextInQueue(server({ ok: false, status: 0, data: {} }).request, queue, 7, 6, storage);
  assert.ok("notice" in offline && offline.notice.level === "error" && offline.notice.text.includes("offline"));
  const refused = await nextInQueue(
    server({ ok: false, status: 403, data: { detail: "Your role cannot label." } }).request, queue, 7, 6, storage,
  );
  assert.ok("notice" in refused && refused.notice.text.includes("Your role cannot label."));
  assert.deepEqual(readSkipped(storage, 7), [5]);
});

test("the list of passed-over images is bounded and survives junk in storage", () => {
  const storage = memory();
  writeSkipped(storage, 1, Array.from({ length: SKIPPED_MAX + 50 }, (_, i) => i));
  const ids = readSkipped(storage, 1);
  assert.equal(ids.length, SKIPPED_MAX);
  assert.equal(ids[0], 50); // the oldest go first
  storage.setItem("skelex.queue.skipped.2", "{not json");
  assert.deepEqual(readSkipped(storage, 2), []);
});

test("a renewed claim reports who holds the image instead, and says so once per new holder", async () => {
  const at = "2026-11-29T12:00:00.123456+00:00";
  const renewed = server({ ok: true, status: 200, data: { claimed: true, claimed_at: at } });
  assert.deepEqual(await refreshClaim(renewed.request, "/c/"), { holder: null, at });
  const taken = server({ ok: false, status: 409, data: { claimed_by: "rui" } });
  assert.deepEqual(await refreshClaim(taken.request, "/c/"), { holder: "rui", at: null });
  // Offline: not "nobody holds it" (the page keeps what it shows until the next renewal).
  assert.equal(await refreshClaim(server({ ok: false, status: 0, data: {} }).request, "/c/"), null);
  assert.equal(holderNotice(null, null), null);
  assert.equal(holderNotice("rui", "rui"), null); // already shown (or on the page from the start)
  assert.match(holderNotice(null, "rui")?.text ?? "", /^rui has this image open now/);
});

test("leaving hands back only the claim this viewer made, and nothing when someone else holds the image", () => {
  const at = "2026-11-29T12:00:00.123456+00:00";
  // The "+" of the offset must survive the query string, or the server reads a space.
  assert.equal(releaseUrl("/api/images/5/claim/", null, at), "/api/images/5/claim/?at=2026-11-29T12%3A00%3A00.123456%2B00%3A00");
  assert.equal(releaseUrl("/c/?x=1", null, at)?.startsWith("/c/?x=1&at="), true);
  assert.equal(releaseUrl("/c/", "rui", at), null); // rui's claim is not this viewer's to end
  assert.equal(releaseUrl("/c/", null, null), null); // no claim made (offline at the first renewal)
});
