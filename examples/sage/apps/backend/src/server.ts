// The example Sage backend: Express, a pg Pool on DATABASE_URL and a redis client on VALKEY_URL.
//   GET  /health               SELECT 1 through the pool and PING through the client: 200 with the version, or 503
//                              naming the dependency that failed
//   GET  /api/chats?user=ID    the user's chats, cached in Valkey for 30 s (userChatList), X-Cache: hit|miss
//   POST /api/messages         {"chatId": 1, "role": "user", "content": "…"} inserts a message
import express from "express";
import { Pool } from "pg";
import { createClient } from "redis";
import { VERSION } from "./version";

const port = Number.parseInt(process.env.PORT || "3000", 10);
const host = process.env.HOST || "127.0.0.1";
const chatListTTLSeconds = 30;

// Connection errors are answered per request (503) and retried by the libraries; they must not end the process.
const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: 5,
  connectionTimeoutMillis: 2000,
  query_timeout: 2000,
  idleTimeoutMillis: 10000,
});
pool.on("error", (err: Error) => console.error(`backend: idle Postgres connection closed: ${err.message}`));

const cache = createClient({
  url: process.env.VALKEY_URL || process.env.REDIS_URL,
  // Fail commands at once while disconnected (so /health says so) and reconnect quickly once Valkey is back.
  disableOfflineQueue: true,
  socket: { connectTimeout: 2000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 500) },
});
let cacheError = "not connected yet";
cache.on("error", (err: Error) => { cacheError = err.message; });
cache.on("ready", () => { cacheError = ""; console.log("backend: Valkey connection ready"); });
cache.on("reconnecting", () => { if (!cacheError) cacheError = "reconnecting"; });
cache.connect().catch((err: Error) => { cacheError = err.message; });

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}

const app = express();
app.disable("x-powered-by");
app.use(express.json({ limit: "64kb" }));

// CORS for the frontend: CORS_ORIGINS (comma-separated) when set, otherwise any loopback origin (a dev server
// on 127.0.0.1, localhost or [::1], on whatever port it was given).
const allowedOrigins = (process.env.CORS_ORIGINS || "").split(",").map((s: string) => s.trim()).filter(Boolean);
function originAllowed(origin: string): boolean {
  if (allowedOrigins.length > 0) return allowedOrigins.includes(origin);
  try {
    return ["127.0.0.1", "localhost", "[::1]"].includes(new URL(origin).hostname);
  } catch {
    return false;
  }
}
app.use((req, res, next) => {
  const origin = req.headers.origin;
  if (typeof origin === "string" && originAllowed(origin)) {
    res.setHeader("Access-Control-Allow-Origin", origin);
    res.setHeader("Vary", "Origin");
    res.setHeader("Access-Control-Allow-Headers", "content-type");
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.setHeader("Access-Control-Expose-Headers", "X-Cache");
  }
  if (req.method === "OPTIONS") { res.status(204).end(); return; }
  next();
});

app.get("/health", async (_req, res) => {
  const failed: Record<string, string> = {};
  await Promise.all([
    withTimeout(pool.query("SELECT 1"), 2000, "postgres").catch((e: Error) => { failed.postgres = e.message; }),
    (cache.isReady ? withTimeout(cache.ping(), 2000, "valkey") : Promise.reject(new Error(cacheError || "not connected")))
      .catch((e: Error) => { failed.valkey = e.message; }),
  ]);
  res.setHeader("cache-control", "no-store");
  const names = Object.keys(failed);
  if (names.length === 0) {
    res.json({ status: "ok", version: VERSION });
  } else {
    res.status(503).json({ status: "unavailable", version: VERSION, failing: names, errors: failed,
                           message: `${names.join(" and ")} unavailable: ${names.map((n) => failed[n]).join("; ")}` });
  }
});

app.get("/api/chats", async (req, res) => {
  const user = Number.parseInt(String(req.query.user ?? ""), 10);
  if (!Number.isSafeInteger(user) || user <= 0) {
    res.status(400).json({ error: "user must be a positive integer id, as in /api/chats?user=1" });
    return;
  }
  const key = `userChatList:${user}`;
  if (cache.isReady) {
    try {
      const hit = await cache.get(key);
      if (hit !== null) { res.setHeader("X-Cache", "hit"); res.type("application/json").send(hit); return; }
    } catch (e) {
      console.error(`backend: cache read failed: ${(e as Error).message}`);
    }
  }
  try {
    const r = await pool.query(
      "SELECT id, title, created_at FROM chats WHERE user_id = $1 ORDER BY created_at, id", [user]);
    const body = JSON.stringify({ user, chats: r.rows });
    if (cache.isReady) {
      await cache.set(key, body, { EX: chatListTTLSeconds })
        .catch((e: Error) => console.error(`backend: cache write failed: ${e.message}`));
    }
    res.setHeader("X-Cache", "miss");
    res.type("application/json").send(body);
  } catch (e) {
    res.status(503).json({ error: `postgres unavailable: ${(e as Error).message}` });
  }
});

app.post("/api/messages", async (req, res) => {
  const { chatId, role = "user", content } = (req.body ?? {}) as { chatId?: unknown; role?: unknown; content?: unknown };
  if (!Number.isSafeInteger(chatId) || typeof content !== "string" || content.length === 0 || typeof role !== "string") {
    res.status(400).json({ error: 'send {"chatId": <id>, "content": "<text>"} (role: user, assistant or system)' });
    return;
  }
  try {
    const r = await pool.query(
      "INSERT INTO messages (chat_id, role, content) VALUES ($1, $2, $3) RETURNING id, chat_id, role, content, created_at",
      [chatId, role, content]);
    res.status(201).json(r.rows[0]);
  } catch (e) {
    const err = e as Error & { code?: string };
    // 23503: no such chat; 23514: a role the table does not allow.
    const status = err.code === "23503" || err.code === "23514" ? 400 : 503;
    res.status(status).json({ error: err.message });
  }
});

const server = app.listen(port, host, () => {
  console.log(`backend ${VERSION} listening on http://${host.includes(":") ? `[${host}]` : host}:${port}`);
});
server.keepAliveTimeout = 5000;
server.on("error", (err: Error) => {
  console.error(`backend: cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});

// Graceful stop: refuse new connections, let in-flight requests finish, close the pool and the client.
let stopping = false;
function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`backend: ${signal} received, closing`);
  setTimeout(() => process.exit(0), 5000).unref();
  server.close(() => {
    Promise.allSettled([pool.end(), cache.isOpen ? cache.quit() : Promise.resolve()]).then(() => process.exit(0));
  });
  server.closeIdleConnections();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
