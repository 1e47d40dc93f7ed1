"use strict";
// Stand-in for the Vite dev server: serves public/ and answers /health. Files are read on every
// request, so an edit under public/ is visible at once without a restart.
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");

const port = Number.parseInt(process.env.PORT || "5173", 10);
const host = process.env.HOST || "127.0.0.1";
const root = path.resolve(__dirname, "..", "public");

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

function send(res, status, type, body) {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}

const server = http.createServer((req, res) => {
  let urlPath;
  try {
    urlPath = decodeURIComponent((req.url || "/").split("?")[0]);
  } catch {
    return send(res, 400, "text/plain; charset=utf-8", "bad request\n");
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
  }
  if (urlPath === "/health") {
    return send(res, 200, "application/json; charset=utf-8", JSON.stringify({ status: "ok" }));
  }
  // Resolve inside public/ only; anything that escapes it is not found.
  const file = path.resolve(root, "." + (urlPath.endsWith("/") ? urlPath + "index.html" : urlPath));
  if (file !== root && !file.startsWith(root + path.sep)) {
    return send(res, 404, "text/plain; charset=utf-8", "not found\n");
  }
  fs.readFile(file, (err, data) => {
    if (err) {
      // Single-page app fallback, as Vite does for unknown routes without an extension.
      if (!path.extname(urlPath)) {
        return fs.readFile(path.join(root, "index.html"), (err2, html) =>
          err2 ? send(res, 404, "text/plain; charset=utf-8", "not found\n") : send(res, 200, types[".html"], html));
      }
      return send(res, 404, "text/plain; charset=utf-8", "not found\n");
    }
    send(res, 200, types[path.extname(file)] || "application/octet-stream", data);
  });
});

server.on("error", (err) => {
  console.error(`frontend: cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, host, () => {
  console.log(`frontend listening on http://${host}:${port} (serving ${root})`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`frontend: ${signal} received, closing`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => {
    server.closeAllConnections();
    process.exit(0);
  }, 5000).unref();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
