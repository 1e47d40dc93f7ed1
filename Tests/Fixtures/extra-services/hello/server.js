// An extra HTTP app for the tests: /health answers 200 with what sagedev told it about the backend.
const http = require('http');

const port = Number(process.env.PORT);
const host = process.env.HOST || '127.0.0.1';
http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', backendURL: process.env.BACKEND_URL || null,
                             hasDatabaseURL: 'DATABASE_URL' in process.env }));
  } else {
    res.writeHead(404); res.end();
  }
}).listen(port, host, () => console.log(`hello listening on ${host}:${port}`));

process.on('SIGTERM', () => process.exit(0));
