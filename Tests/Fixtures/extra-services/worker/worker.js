// A portless worker for the tests: every 200 ms it writes a heartbeat row through psql, with the DATABASE_URL
// sagedev gives it (WORKER_PSQL, one of its own keys, names the psql binary). A failed write is logged and
// retried at the next beat, as a real worker would ride out a database restart.
const { execFile } = require('child_process');

const psql = process.env.WORKER_PSQL || 'psql';
const url = process.env.DATABASE_URL;
if (!url) { console.error('worker: no DATABASE_URL in the environment'); process.exit(2); }

function sql(statement, done) {
  execFile(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', statement], { timeout: 5000 }, (err, _out, stderr) => {
    if (err) console.error(`worker: ${String(stderr || err.message).trim()}`);
    done(err);
  });
}

let busy = false;
function beat() {
  if (busy) return;
  busy = true;
  sql(`INSERT INTO worker_heartbeat (pid) VALUES (${process.pid})`, () => { busy = false; });
}

sql('CREATE TABLE IF NOT EXISTS worker_heartbeat (id bigserial PRIMARY KEY, pid int NOT NULL, at timestamptz NOT NULL DEFAULT now())', () => {
  console.log(`worker ${process.pid}: beating every 200 ms`);
  beat();
  setInterval(beat, 200);
});

process.on('SIGTERM', () => { console.log('worker: SIGTERM, stopping'); process.exit(0); });
