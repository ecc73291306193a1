// The loopback server of the upload benchmark: one node process answering both a plain PUT
// (/put/<name>, streamed to a file) and tus 1.0 (/files, @tus/server with @tus/file-store), so
// curl -T, tether PUT and tether tus are measured against the same peer. Files go to argv[2].
// Prints "PORT <n>" once listening.
const fs = require('fs');
const http = require('http');
const path = require('path');
const { Server } = require('@tus/server');
const { FileStore } = require('@tus/file-store');

const dir = process.argv[2];
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: path.join(dir, 'tus') }) });
const server = http.createServer((req, res) => {
  if (req.method === 'PUT' && req.url.startsWith('/put/')) {
    const name = path.basename(req.url);
    const out = fs.createWriteStream(path.join(dir, 'put-' + name));
    req.pipe(out);
    out.on('finish', () => { res.writeHead(201); res.end(); });
    out.on('error', () => { res.writeHead(500); res.end(); });
    return;
  }
  tus.handle(req, res);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
