// Node.js clients `leakless watch` is tested against.
//
//   node node_roles.js MODE URL SECONDS
//
// Modes:
//   unconsumed  one request every 150 ms on a shared keep-alive agent whose
//               responses are never consumed (no res.resume(), no 'data'
//               handler): each holds its socket, so every request opens
//               another and none is ever freed.
//   pooled      four workers on a shared keep-alive agent (at most four
//               sockets), each reading every response to the end and
//               sending the next 50 ms later: the same four connections,
//               reused for the whole run.
// Exits after SECONDS.
'use strict';
const http = require('http');

const [mode, url, seconds] = [process.argv[2], process.argv[3], Number(process.argv[4])];
setTimeout(() => process.exit(0), seconds * 1000);

if (mode === 'unconsumed') {
  const agent = new http.Agent({ keepAlive: true });
  const held = [];
  setInterval(() => {
    http.get(url, { agent }, (res) => {
      // Kept, never read: the socket stays assigned to this response.
      held.push(res);
    }).on('error', () => {});
  }, 150);
} else if (mode === 'pooled') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const worker = () => {
    http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => setTimeout(worker, 50));
    }).on('error', () => setTimeout(worker, 50));
  };
  for (let i = 0; i < 4; i += 1) {
    setTimeout(worker, 100 * i);
  }
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
