"use strict";
// A plain Node HTTP server (built-ins only): for measuring and testing the reload machinery itself, not an app.
const http = require("node:http");
const { VERSION } = require("./version");

const port = Number.parseInt(process.env.PORT || "3000", 10);
const host = process.env.HOST || "127.0.0.1";

// The real app connects to these; the stand-in only reports whether they were provided,
// and never echoes them (they carry passwords).
const databaseConfigured = Boolean(process.env.DATABASE_URL);
const valkeyConfigured = Boolean(process.env.VALKEY_URL || process.env.REDIS_URL);

function sendJSON(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const path = (req.url || "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return sendJSON(res, 405, { error: "method not allowed" });
  }
  switch (path) {
    case "/health":
      return sendJSON(res, 200, { status: "ok", version: VERSION });
    case "/api/ping":
      return sendJSON(res, 200, {
        pong: true,
        version: VERSION,
        database: databaseConfigured ? "configured" : "missing",
        valkey: valkeyConfigured ? "configured" : "missing",
        uptimeSeconds: Math.round(process.uptime() * 1000) / 1000,
      });
    default:
      return sendJSON(res, 404, { error: "not found", path });
  }
});

server.keepAliveTimeout = 5000;

server.on("error", (err) => {
  console.error(`backend: cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, host, () => {
  console.log(
    `backend ${VERSION} listening on http://${host}:${port} ` +
      `(DATABASE_URL ${databaseConfigured ? "set" : "not set"}, VALKEY_URL ${valkeyConfigured ? "set" : "not set"})`
  );
});

// Graceful stop: refuse new connections, let in-flight requests finish, give up after 5 s.
let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`backend: ${signal} received, closing`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => {
    server.closeAllConnections();
    process.exit(0);
  }, 5000).unref();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
