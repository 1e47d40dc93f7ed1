// A portless worker for the tests: every 200 ms it writes a heartbeat with the URLs sagedev gives it.
//   WORKER_HEARTBEAT=psql (default): a row in worker_heartbeat through psql and DATABASE_URL (WORKER_PSQL, one of
//                                    the worker's own keys, names the psql binary);
//   WORKER_HEARTBEAT=valkey:         INCR worker:heartbeats through VALKEY_URL, in RESP over a plain socket (for a
//                                    container image that holds node and nothing else).
// A failed beat is logged and retried at the next one, as a real worker rides out a database restart.
const { execFile } = require('child_process');
const net = require('net');

const mode = process.env.WORKER_HEARTBEAT || 'psql';

function psql(statement, done) {
  const url = process.env.DATABASE_URL;
  execFile(process.env.WORKER_PSQL || 'psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', statement],
           { timeout: 5000 }, (err, _out, stderr) => {
    if (err) console.error(`worker: ${String(stderr || err.message).trim()}`);
    done(err);
  });
}

function resp(args) { return `*${args.length}\r\n` + args.map(a => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''); }

function valkey(command, done) {
  const u = new URL(process.env.VALKEY_URL);
  const commands = u.password ? [['AUTH', decodeURIComponent(u.password)], command] : [command];
  const socket = net.connect(Number(u.port), u.hostname);
  let replies = '';
  socket.setTimeout(5000, () => socket.destroy(new Error('no reply within 5 s')));
  socket.on('connect', () => socket.write(commands.map(resp).join('')));
  socket.on('data', chunk => {
    replies += chunk;
    const lines = replies.split('\r\n').filter(Boolean);
    if (lines.length < commands.length) return;
    socket.end();
    const error = lines.find(l => l.startsWith('-'));
    if (error) console.error(`worker: ${error}`);
    done(error);
  });
  socket.on('error', err => { console.error(`worker: ${err.message}`); done(err); });
}

let busy = false;
function beat() {
  if (busy) return;
  busy = true;
  const finish = () => { busy = false; };
  if (mode === 'valkey') valkey(['INCR', 'worker:heartbeats'], finish);
  else psql(`INSERT INTO worker_heartbeat (pid) VALUES (${process.pid})`, finish);
}

function start() {
  console.log(`worker ${process.pid}: beating every 200 ms through ${mode}`);
  beat();
  setInterval(beat, 200);
}

if (mode === 'valkey') start();
else psql('CREATE TABLE IF NOT EXISTS worker_heartbeat (id bigserial PRIMARY KEY, pid int NOT NULL, at timestamptz NOT NULL DEFAULT now())', start);

process.on('SIGTERM', () => { console.log('worker: SIGTERM, stopping'); process.exit(0); });
