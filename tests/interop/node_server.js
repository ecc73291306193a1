// Interop peer: Node `ws` (npm) on 127.0.0.1. Same protocol as py_server.py.
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({
  host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => {
    for (const p of ['chat.v2', 'chat.v1']) if (protocols.has(p)) return p;
    return false;
  },
});
wss.on('listening', () => console.log(`port ${wss.address().port}`));
wss.on('connection', (ws, req) => {
  if (req.url.startsWith('/close/')) {
    const [, , code, ...rest] = req.url.split('/');
    ws.close(Number(code), decodeURIComponent(rest.join('/')));
    return;
  }
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('close', (code, reason) => console.log(`closed ${code} ${reason.toString()}`));
});
setTimeout(() => process.exit(0), 120000).unref();
