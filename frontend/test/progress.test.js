// The project page's live part: what each job's progress bar says, and which events re-read the page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeJob, makesStale } from "../src/project/progress.js";

test("each kind of job gets its title, unit and state", () => {
  assert.deepEqual(describeJob({ job: "analysis", done: 12, total: 40 }), {
    key: "analysis", title: "Analysis", done: 12, total: 40, text: "12 / 40 images analysed", finished: false, state: "ok",
  });
  assert.equal(describeJob({ job: "retrain", done: 3, total: 3 })?.text, "done (3 / 3 steps)");
  assert.equal(describeJob({ job: "retrain", done: 3, total: 3 })?.finished, true);
  assert.equal(describeJob({ job: "ranking", done: 1, total: 3 })?.title, "Ordering the queue"); // no heads trained
  assert.equal(describeJob({ job: "export:17", done: 5, total: 80 })?.title, "Export 17");
  assert.equal(describeJob({ job: "pretrain:wrist-v2", done: 1, total: 8 })?.text, "1 / 8 epochs");
  assert.equal(describeJob({ job: "pretrain:wrist-v2", done: 1, total: 8 })?.title, "Pretraining wrist-v2");
  assert.equal(describeJob({ job: "comparison", done: 12, total: 75 })?.text, "12 / 75 replays");
  assert.equal(describeJob({ job: "comparison", done: 0, total: 0 })?.title, "Comparing rankings"); // before the first replay ends
});

test("a job that has not counted yet is starting; a failed one says so and is finished", () => {
  assert.equal(describeJob({ job: "analysis", done: 0, total: 0 })?.text, "starting");
  const failed = describeJob({ job: "export:3", done: 0, total: 10, state: "failed" });
  assert.equal(failed?.text, "failed");
  assert.equal(failed?.finished, true);
  assert.equal(failed?.state, "failed");
  // A job that could not run (a comparison with too few labels) is not shown as done, nor as failed.
  const refused = describeJob({ job: "comparison", done: 0, total: 0, state: "refused" });
  assert.equal(refused?.text, "not run: see its section");
  assert.equal(refused?.finished, true);
  assert.equal(refused?.state, "refused");
});

test("odd payloads never break the page", () => {
  assert.equal(describeJob({}), null);
  assert.equal(describeJob({ job: 42 }), null);
  const odd = describeJob({ job: "reindex", done: "x", total: -5 });
  assert.deepEqual([odd?.title, odd?.done, odd?.total, odd?.text], ["reindex", 0, 0, "starting"]);
});

test("the page re-reads its figures after changes and finished jobs, not after every progress step", () => {
  assert.equal(makesStale({ type: "annotation.saved" }), true);
  assert.equal(makesStale({ type: "queue.updated" }), true);
  assert.equal(makesStale({ type: "job.progress", job: "analysis", done: 3, total: 40 }), false);
  assert.equal(makesStale({ type: "job.progress", job: "analysis", done: 40, total: 40 }), true);
  assert.equal(makesStale({ type: "pong" }), false);
  assert.equal(makesStale({}), false);
});
