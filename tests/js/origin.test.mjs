// The Origin of socket.io requests and the counsellor's session cookie: a page on another site
// must not connect to `/counsellor` as the counsellor whose cookie its browser sends along
// (cross-site websocket hijacking), and CORS allows credentials only to an allowed origin.
import { describe, test, before, after, afterEach } from 'node:test';
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';

import {
  addCounsellor, assert, startServer, within, bubbleIdOf, closeAll, createCounsellorClient, postJson,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';
const GOOD = 'http://good.example';
const EVIL = 'http://evil.example';

/** POST /auth; returns { status, body, cookie }. */
function signIn(server, username) {
  return postJson(server, '/auth', { username, password: PASSWORD });
}

/** A fresh counsellor account, signed in: { id, token, cookie }. */
async function signedIn(server) {
  const username = `c_${randomBytes(4).toString('hex')}`;
  await addCounsellor(server, username, 'Robin', PASSWORD);
  const auth = await signIn(server, username);
  assert.equal(auth.status, 200, JSON.stringify(auth.body));
  assert.match(auth.cookie, /^bubble_session=./);
  return { id: auth.body.counsellor.id, token: auth.body.token, cookie: auth.cookie };
}

/**
 * Connects to `/counsellor` with client generation `gen` over `transport`, sending `origin` (none
 * when null) and the credentials `how`: { cookie }, { token } (4.x auth) or { bearer } (header).
 * Resolves with the socket, or rejects with the connect error.
 */
function counsellorSocket(gen, server, transport, origin, how) {
  const headers = origin ? { Origin: origin } : {};
  const sock = createCounsellorClient(gen, server, how, { transports: [transport], headers });
  return within(new Promise((resolve, reject) => {
    sock.once('connect', () => resolve(sock));
    sock.once('connect_error', (e) => reject(new Error(e?.message ?? String(e))));
    sock.once('error', (e) => reject(new Error(e?.message ?? String(e))));
  }), 8000, `${gen}.x /counsellor over ${transport} from ${origin ?? 'no origin'}`);
}

/** A websocket handshake on `/socket.io/`; resolves with the status code (101 when upgraded). */
function websocketHandshake(server, eio, origin) {
  return within(new Promise((resolve, reject) => {
    const headers = {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    };
    if (origin) headers.Origin = origin;
    const req = httpRequest(`${server.url}/socket.io/?EIO=${eio}&transport=websocket`, { headers });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end();
  }), 5000, `websocket handshake from ${origin}`);
}

/** A polling handshake; resolves with { status, body, allowOrigin, allowCredentials }. */
async function pollingHandshake(server, eio, origin) {
  const headers = origin ? { Origin: origin } : {};
  const res = await fetch(`${server.url}/socket.io/?EIO=${eio}&transport=polling`, {
    headers, signal: AbortSignal.timeout(5000),
  });
  return {
    status: res.status,
    body: await res.text(),
    allowOrigin: res.headers.get('access-control-allow-origin'),
    allowCredentials: res.headers.get('access-control-allow-credentials'),
  };
}

const CLIENTS = [[1, 'polling'], [1, 'websocket'], [4, 'polling'], [4, 'websocket']];

describe('--cors-origins set: only the listed origins', { timeout: 120000 }, () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--cors-origins', GOOD, '--session-same-site', 'none'] });
  });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const eio of [3, 4]) {
    test(`EIO=${eio} handshakes from an origin not listed are refused with 403, polling and websocket`, async () => {
      const evil = await pollingHandshake(server, eio, EVIL);
      assert.equal(evil.status, 403, evil.body);
      const error = JSON.parse(evil.body);
      assert.equal(error.code, 'forbidden_origin');
      assert.equal(typeof error.message, 'string');
      assert.equal(evil.allowOrigin, null, 'no CORS answer for an origin not listed');
      assert.equal(evil.allowCredentials, null, 'no credentials for an origin not listed');
      assert.equal(await websocketHandshake(server, eio, EVIL), 403);

      const good = await pollingHandshake(server, eio, GOOD);
      assert.equal(good.status, 200);
      assert.match(good.body, /"sid"\s*:/);
      assert.equal(good.allowOrigin, GOOD);
      assert.equal(good.allowCredentials, 'true');
      assert.equal(await websocketHandshake(server, eio, GOOD), 101);

      // Native apps and Node clients send no Origin at all.
      assert.equal((await pollingHandshake(server, eio, null)).status, 200);
      assert.equal(await websocketHandshake(server, eio, null), 101);
    });
  }

  for (const [gen, transport] of CLIENTS) {
    test(`${gen}.x over ${transport}: /counsellor refuses a session cookie from an origin not listed; listed or no origin, and tokens, work`, async () => {
      const c = await signedIn(server);
      await assert.rejects(counsellorSocket(gen, server, transport, EVIL, { cookie: c.cookie }));

      for (const origin of [GOOD, null]) {
        const sock = await counsellorSocket(gen, server, transport, origin, { cookie: c.cookie });
        assert.equal(await bubbleIdOf(sock), c.id, `signed in by the cookie from ${origin}`);
        sock.close();
        const how = gen === 4 ? { token: c.token } : { bearer: c.token };
        const byToken = await counsellorSocket(gen, server, transport, origin, how);
        assert.equal(await bubbleIdOf(byToken), c.id, `signed in by the token from ${origin}`);
        byToken.close();
      }
    });
  }

  test('Access-Control-Allow-Credentials goes only with a listed origin', async () => {
    for (const path of ['/health', '/auth/me']) {
      const evil = await fetch(`${server.url}${path}`, { headers: { Origin: EVIL } });
      await evil.arrayBuffer();
      assert.equal(evil.headers.get('access-control-allow-origin'), null, path);
      assert.equal(evil.headers.get('access-control-allow-credentials'), null, path);
      const good = await fetch(`${server.url}${path}`, { headers: { Origin: GOOD } });
      await good.arrayBuffer();
      assert.equal(good.headers.get('access-control-allow-origin'), GOOD, path);
      assert.equal(good.headers.get('access-control-allow-credentials'), 'true', path);
    }
    const preflight = (origin) => fetch(`${server.url}/auth`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    const evil = await preflight(EVIL);
    await evil.arrayBuffer();
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    assert.equal(evil.headers.get('access-control-allow-credentials'), null);
    const good = await preflight(GOOD);
    await good.arrayBuffer();
    assert.equal(good.headers.get('access-control-allow-origin'), GOOD);
    assert.equal(good.headers.get('access-control-allow-credentials'), 'true');
  });
});

describe('every origin allowed (the default): the session cookie only from the server\'s own', { timeout: 120000 }, () => {
  let server;
  before(async () => { server = await startServer({ args: ['--session-same-site', 'none'] }); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [gen, transport] of CLIENTS) {
    test(`${gen}.x over ${transport}: a cookie from another origin signs nobody in; from the own origin or none it does; tokens work from anywhere`, async () => {
      const c = await signedIn(server);
      await assert.rejects(counsellorSocket(gen, server, transport, EVIL, { cookie: c.cookie }), /unauthorized/);

      // server.url is http://127.0.0.1:PORT, the Host the clients send.
      for (const origin of [server.url, null]) {
        const sock = await counsellorSocket(gen, server, transport, origin, { cookie: c.cookie });
        assert.equal(await bubbleIdOf(sock), c.id, `signed in by the cookie from ${origin}`);
        sock.close();
      }
      const how = gen === 4 ? { token: c.token } : { bearer: c.token };
      const byToken = await counsellorSocket(gen, server, transport, EVIL, how);
      assert.equal(await bubbleIdOf(byToken), c.id, 'signed in by the token from another origin');
    });
  }
});
