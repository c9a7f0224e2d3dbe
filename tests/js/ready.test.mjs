// Readiness: `GET /ready` answers 200 while this node should get traffic, 503 with a reason from
// the moment shutdown begins and while the database does not answer (PostgreSQL), and 200 again
// once it does. `/health` stays a plain liveness check.
import { describe, test, afterEach } from 'node:test';
import { connect as tcpConnect } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  assert, startServer, connect, closeAll, waitUntil, within, newToken, PG,
} from './harness.mjs';

const execFileP = promisify(execFile);

/** The status and body of `GET url/ready`; `null` when nothing answers. */
async function ready(url) {
  try {
    const res = await fetch(`${url}/ready`);
    return { status: res.status, body: await res.json() };
  } catch {
    return null;
  }
}

/** A connection with a request whose body never comes: graceful shutdown waits for it. */
async function stalledConnection(server) {
  const sock = tcpConnect(server.port, '127.0.0.1');
  await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
  sock.setEncoding('utf8');
  let got = '';
  const reading = new Promise((resolve) => {
    sock.on('data', (chunk) => {
      got += chunk;
      if (got.includes('100 Continue')) resolve();
    });
  });
  sock.write('POST /tincan/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
    'Content-Length: 100\r\nExpect: 100-continue\r\n\r\n');
  await within(reading, 5000, '100 Continue on the raw connection');
  sock.write('{"username":');
  return sock;
}

describe('readiness', { timeout: 120000 }, () => {
  afterEach(() => closeAll());

  test('ready on the public port and the metrics listener; /health stays plain', async (t) => {
    const server = await startServer({ args: ['--metrics-addr', '127.0.0.1:0'] });
    t.after(() => server.stop());
    for (const url of [server.url, server.metricsUrl]) {
      assert.deepEqual(await ready(url), { status: 200, body: { ready: true } });
    }
    const health = await fetch(`${server.url}/health`);
    assert.deepEqual(await health.json(), { status: 'ok' });
  });

  test('503 from the moment shutdown begins, while a slow client holds it up; the sockets are closed', async (t) => {
    const server = await startServer({ args: ['--metrics-addr', '127.0.0.1:0', '--shutdown-timeout', '4'] });
    t.after(() => server.stop());
    let stalled = null;
    try {
      const sock = await connect(4, server, { token: newToken(), transports: ['websocket'] });
      stalled = await stalledConnection(server);
      const disconnected = new Promise((resolve) => sock.once('disconnect', resolve));
      server.killedByUs = true;
      server.proc.kill('SIGTERM');
      let seen = null;
      await waitUntil(async () => {
        seen = await ready(server.metricsUrl);
        return seen?.status === 503;
      }, 3000, '/ready 503 during shutdown');
      assert.deepEqual(seen.body, { ready: false, reason: 'shutting down' });
      await within(disconnected, 3000, 'the client hears the server go');
      // The public port takes no new connection.
      assert.equal(await ready(server.url), null);
      const exit = await within(server.exited, 15000, 'exit after SIGTERM');
      assert.deepEqual(exit, { code: 1, signal: null });
    } finally {
      stalled?.destroy();
    }
  });

  test('503 while the database does not answer, 200 again once it does', async (t) => {
    if (!PG) {
      t.skip('needs PostgreSQL: the database is made unreachable there');
      return;
    }
    const server = await startServer({ args: ['--metrics-addr', '127.0.0.1:0'] });
    const psql = (sql) => execFileP('psql', [PG, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql]);
    const allow = (yes) => psql(`ALTER DATABASE ${server.pgName} ALLOW_CONNECTIONS ${yes}`);
    t.after(async () => {
      await allow(true).catch(() => {});
      await server.stop();
    });
    assert.equal((await ready(server.url)).status, 200);
    await allow(false);
    await psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${server.pgName}'`);
    let seen = null;
    await waitUntil(async () => {
      seen = await ready(server.metricsUrl);
      return seen?.status === 503;
    }, 10000, '/ready 503 while the database is unreachable');
    assert.equal(seen.body.ready, false);
    assert.match(seen.body.reason, /database/);
    // Still alive.
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    await allow(true);
    await waitUntil(async () => (await ready(server.metricsUrl))?.status === 200, 10000,
      '/ready 200 once the database answers again');
  });
});
