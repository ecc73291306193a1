// A real tus 1.0 server nobody here wrote: @tus/server with @tus/file-store (npm), on
// 127.0.0.1 at a free port, storing uploads in the directory given as argv[2]. Prints
// "PORT <n>" once listening.
const http = require('http');
const { Server } = require('@tus/server');
const { FileStore } = require('@tus/file-store');

const dir = process.argv[2];
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) });
const server = http.createServer((req, res) => tus.handle(req, res));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
