// A Node.js client as many are written: every request gets a fresh
// http.Agent with keep-alive off, so Node sends `Connection: close`, the
// server closes first, and each connection lives about a millisecond.
//
//   node agent_per_request.js URL RATE SECONDS
//
// Sends RATE requests a second (paced, so the rate is the same on a busy
// machine), for SECONDS at most, then exits. RATE 0: one request after the
// other, as fast as they complete.
'use strict';
const http = require('http');

const [url, rate, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const start = Date.now();
let sent = 0;
let failed = 0;

function one(done) {
  const agent = new http.Agent({ keepAlive: false });
  const req = http.get(url, { agent }, (res) => {
    res.resume();
    res.on('end', () => {
      agent.destroy();
      if (done) done();
    });
  });
  req.on('error', () => {
    failed += 1;
    if (done) done();
  });
}

function next() {
  if ((Date.now() - start) / 1000 >= seconds) {
    console.error(`sent ${sent}, failed ${failed}`);
    return;
  }
  sent += 1;
  one(next);
}

if (rate === 0) {
  next();
} else {
  const timer = setInterval(() => {
    const elapsed = (Date.now() - start) / 1000;
    if (elapsed >= seconds) {
      clearInterval(timer);
      console.error(`sent ${sent}, failed ${failed}`);
      return;
    }
    while (sent < elapsed * rate) {
      sent += 1;
      one();
    }
  }, 5);
}
