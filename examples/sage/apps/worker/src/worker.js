"use strict";
// The example Sage worker. It has no port: it takes jobs from the Valkey list sage:jobs (LPUSH to enqueue,
// oldest first) and writes one row per job to Postgres. A job is JSON: {"chatId": 1, "content": "…", "role":
// "assistant"} becomes a message of that chat. A job Postgres cannot take yet goes back to the list; one that can
// never be written (bad JSON, no such chat) goes to sage:jobs:failed with the reason.
const { Pool } = require("pg");
const { createClient } = require("redis");

const queue = process.env.WORKER_QUEUE || "sage:jobs";
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 2, connectionTimeoutMillis: 2000 });
pool.on("error", (err) => console.error(`worker: idle Postgres connection closed: ${err.message}`));

const valkey = createClient({
  url: process.env.VALKEY_URL || process.env.REDIS_URL,
  socket: { connectTimeout: 2000, reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 500) },
});
valkey.on("error", (err) => console.error(`worker: Valkey: ${err.message}`));
valkey.on("ready", () => console.log(`worker: waiting for jobs on ${queue}`));

let stopping = false;
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function handle(raw) {
  let job;
  try {
    job = JSON.parse(raw);
  } catch (e) {
    return { failed: `not JSON: ${e.message}` };
  }
  if (!Number.isSafeInteger(job.chatId) || typeof job.content !== "string") {
    return { failed: 'a job is {"chatId": <id>, "content": "<text>"}' };
  }
  try {
    const r = await pool.query(
      "INSERT INTO messages (chat_id, role, content) VALUES ($1, $2, $3) RETURNING id",
      [job.chatId, job.role || "assistant", job.content]);
    return { id: r.rows[0].id };
  } catch (e) {
    // 23503: no such chat; 23514: a role the table does not allow; 22P02: bad input. Anything else: retry.
    if (["23503", "23514", "22P02"].includes(e.code)) return { failed: e.message };
    return { retry: e.message };
  }
}

async function run() {
  await valkey.connect().catch(() => {});
  while (!stopping) {
    let item;
    try {
      item = await valkey.brPop(queue, 1);
    } catch (e) {
      if (!stopping) await pause(200);
      continue;
    }
    if (!item) continue;
    const outcome = await handle(item.element);
    if (outcome.id !== undefined) {
      console.log(`worker: job done: message ${outcome.id}`);
    } else if (outcome.failed) {
      console.error(`worker: job dropped (${outcome.failed}): ${item.element.slice(0, 200)}`);
      await valkey.lPush(`${queue}:failed`, JSON.stringify({ job: item.element, reason: outcome.failed })).catch(() => {});
    } else {
      console.error(`worker: Postgres unavailable (${outcome.retry}); the job goes back to ${queue}`);
      await valkey.rPush(queue, item.element).catch(() => {});
      await pause(500);
    }
  }
}

function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`worker: ${signal} received, closing`);
  setTimeout(() => process.exit(0), 3000).unref();
  Promise.allSettled([pool.end(), valkey.isOpen ? valkey.disconnect() : Promise.resolve()]).then(() => process.exit(0));
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

run().catch((e) => { console.error(`worker: ${e.stack || e}`); process.exit(1); });
