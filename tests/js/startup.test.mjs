// Starting and stopping. Several nodes started at once on one PostgreSQL database (replicas
// started together, a rolling deploy bringing a migration) all come up, the migrations applied
// once; and shutdown on SIGTERM ends within --shutdown-timeout whatever holds it up.
import { describe, test, afterEach } from 'node:test';
import { execFile, spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { once as onceEvent } from 'node:events';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';

import {
  PG, BIN, NODE_HEARTBEAT_MS, NODE_TIMEOUT_MS, adapterArgs, assert, closeAll, connect, bubbleIdOf,
  health, newToken, startServer, within,
} from './harness.mjs';

const execFileP = promisify(execFile);

async function psql(url, sql) {
  const { stdout } = await execFileP('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql]);
  return stdout.trim();
}

/** A fresh, empty PostgreSQL database: { url, drop() }. */
async function newDatabase() {
  const name = `bubble_t_${randomBytes(8).toString('hex')}`;
  await psql(PG, `CREATE DATABASE ${name}`);
  const u = new URL(PG);
  u.pathname = `/${name}`;
  if (!u.username) u.username = await psql(PG, 'SELECT current_user');
  return {
    url: u.toString(),
    drop: () => psql(PG, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** `bubble migrate` on `url`. */
function migrate(url) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['migrate', '--database-url', url], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`migrate: ${code} ${err}`))));
  });
}

/**
 * Starts three linked nodes on `url` at the same moment; asserts that all of them came up, that
 * each serves a client, and that every migration is recorded once.
 */
async function threeAtOnce(url, adapter) {
  const prefix = `t${randomBytes(6).toString('hex')}`;
  const args = [
    ...adapterArgs(adapter), '--adapter-prefix', prefix,
    '--node-heartbeat-ms', String(NODE_HEARTBEAT_MS), '--node-timeout-ms', String(NODE_TIMEOUT_MS),
  ];
  const started = await Promise.allSettled([0, 1, 2].map(() => startServer({ dbUrl: url, args })));
  const nodes = started.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  try {
    const failures = started.filter((s) => s.status === 'rejected').map((s) => s.reason.message);
    assert.deepEqual(failures, [], 'every node starts');
    for (const node of nodes) {
      assert.deepEqual(await health(node), { status: 200, body: { status: 'ok' } });
      const sock = await connect(4, node, { token: newToken() });
      assert.ok(await bubbleIdOf(sock));
    }
    const recorded = await psql(url, 'SELECT count(*), count(DISTINCT version) FROM seaql_migrations');
    const [count, distinct] = recorded.split('|').map(Number);
    assert.ok(count >= 5, `migrations recorded: ${recorded}`);
    assert.equal(count, distinct, 'each migration recorded once');
  } finally {
    closeAll();
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

describe('several nodes starting at once on one PostgreSQL database', { skip: !PG && 'needs BUBBLE_TEST_PG', timeout: 180000 }, () => {
  afterEach(closeAll);

  for (const adapter of ['redis', 'postgres']) {
    test(`three nodes (${adapter} adapter) started together on a fresh database all come up`, async () => {
      const db = await newDatabase();
      try {
        await threeAtOnce(db.url, adapter);
      } finally {
        await db.drop();
      }
    });
  }

  test('three nodes started together on a database one migration behind all come up', async () => {
    const db = await newDatabase();
    try {
      await migrate(db.url);
      // As before the presence migration: its tables and its record gone.
      await psql(db.url, 'DROP TABLE presence_match, presence_counsellor, presence_room, ' +
        "presence_socket, presence_node; DELETE FROM seaql_migrations WHERE version LIKE '%_presence'");
      await threeAtOnce(db.url, 'redis');
      assert.equal(await psql(db.url, 'SELECT count(*) FROM presence_node'), '3', 'each node in the new table');
    } finally {
      await db.drop();
    }
  });
});

/**
 * A connection with a request whose body never comes: the server has started reading it (it
 * answered `100 Continue`), and graceful shutdown would wait for that request forever.
 */
async function stalledConnection(server) {
  const sock = tcpConnect(server.port, '127.0.0.1');
  await onceEvent(sock, 'connect');
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

/** What the server logged, without colours. */
const log = (server) => server.stderr.replace(/\x1b\[[0-9;]*m/g, '');

/** SIGTERM; resolves with { code, signal } once the process has exited. */
function terminate(server, ms) {
  server.killedByUs = true;
  server.proc.kill('SIGTERM');
  return within(server.exited, ms, 'exit after SIGTERM');
}

describe('shutdown on SIGTERM is bounded', { timeout: 180000 }, () => {
  afterEach(closeAll);

  test('a connection stuck mid-request: exit after --shutdown-timeout, status 1, logging what was cut short', async () => {
    const server = await startServer({ args: ['--shutdown-timeout', '1'] });
    let stalled = null;
    try {
      // Nothing holding it up: a clean exit.
      const clean = await terminate(server, 15000);
      assert.deepEqual(clean, { code: 0, signal: null });
      assert.doesNotMatch(log(server), /cut short/);

      await server.start();
      const sock = await connect(4, server, { transports: ['websocket'] });
      stalled = await stalledConnection(server);
      const disconnected = new Promise((resolve) => sock.once('disconnect', resolve));
      const exit = await terminate(server, 20000);
      assert.deepEqual(exit, { code: 1, signal: null });
      assert.match(log(server), /shutdown cut short.*waiting_for="open HTTP connections to end"/);
      await within(disconnected, 5000, 'the client hears the server go');
    } finally {
      stalled?.destroy();
      await server.stop();
    }
  });

  test('without --shutdown-timeout, shutdown is bounded all the same (10 s)', async () => {
    const server = await startServer();
    let stalled = null;
    try {
      stalled = await stalledConnection(server);
      const exit = await terminate(server, 60000);
      assert.deepEqual(exit, { code: 1, signal: null });
      assert.match(log(server), /shutdown cut short.*timeout=10s/);
    } finally {
      stalled?.destroy();
      await server.stop();
    }
  });
});
