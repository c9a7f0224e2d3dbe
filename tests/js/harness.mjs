// Test harness for the Bubble server integration suite.
//
// Starts the real server binary (env BUBBLE_BIN) on a free port with a fresh database (SQLite in a
// fresh temp dir, or a fresh PostgreSQL database when BUBBLE_TEST_PG is set), and connects
// socket.io-client 1.x, 2.x and 4.x sockets to it. Every wait has a timeout so that a failing test
// fails fast instead of hanging.
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';

import sio1 from 'sio1';
import sio2 from 'sio2';
import { io as sio4 } from 'sio4';

const execFileP = promisify(execFile);

export const BIN = process.env.BUBBLE_BIN
  ? resolve(process.env.BUBBLE_BIN)
  : resolve(import.meta.dirname, '../../target/debug/bubble');
export const PG = process.env.BUBBLE_TEST_PG || null;
export const DB_KIND = PG ? 'postgres' : 'sqlite';

/** Marker for "emit the event with no payload at all". */
export const NO_PAYLOAD = Symbol('no payload');

export const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export const newToken = () => randomUUID();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with a readable error if `promise` does not settle within `ms`. */
export function within(promise, ms, label) {
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Databases

async function psql(url, sql) {
  const { stdout } = await execFileP('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql]);
  return stdout.trim();
}

let pgUser = null;

/** Runs SQL against a server's database and resolves to what it printed, trimmed (used by the
 * few tests that need a state the protocol cannot create, e.g. a HOT room, or that read what was
 * stored). Reads may run while the server does; writes should wait until it is stopped. */
export async function runSql(server, sql) {
  if (server.pgName) return psql(server.dbUrl, sql);
  const file = server.dbUrl.replace(/^sqlite:\/\//, '').replace(/\?.*$/, '');
  const { stdout } = await execFileP('sqlite3', ['-cmd', '.timeout 5000', file, sql]);
  return stdout.trim();
}

async function freshDatabase() {
  if (PG) {
    const name = `bubble_t_${randomBytes(8).toString('hex')}`;
    await psql(PG, `CREATE DATABASE ${name}`);
    const u = new URL(PG);
    u.pathname = `/${name}`;
    // libpq (psql) defaults to the OS user when the URL names none; the server's driver may not.
    if (!u.username) {
      pgUser ??= await psql(PG, 'SELECT current_user');
      u.username = pgUser;
    }
    return { dbUrl: u.toString(), pgName: name, dir: null };
  }
  const dir = mkdtempSync(join(tmpdir(), 'bubble-test-'));
  return { dbUrl: `sqlite://${join(dir, 'bubble.db')}?mode=rwc`, pgName: null, dir };
}

// ---------------------------------------------------------------------------------------------
// Servers

const liveProcesses = new Set();
const servers = new Set();
process.on('exit', () => {
  for (const p of liveProcesses) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

class TestServer {
  constructor({ dbUrl, pgName, dir }, extraArgs = []) {
    this.extraArgs = extraArgs;
    this.dbUrl = dbUrl;
    this.pgName = pgName;
    this.dir = dir;
    this.proc = null;
    this.port = null;
    this.url = null;
    /** The metrics listener's base URL, when started with `--metrics-addr`. */
    this.metricsUrl = null;
    this.stderr = '';
    this.crashed = false;
    this.starts = 0;
  }

  async start() {
    this.starts += 1;
    const args = ['serve', '--addr', '127.0.0.1:0', '--database-url', this.dbUrl, ...this.extraArgs];
    const proc = spawn(BIN, args, {
      env: { ...process.env, RUST_LOG: process.env.BUBBLE_LOG || 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.killedByUs = false;
    liveProcesses.add(proc);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      this.stderr += chunk;
      if (this.stderr.length > 256 * 1024) this.stderr = this.stderr.slice(-128 * 1024);
      if (process.env.BUBBLE_TEST_LOGS) process.stderr.write(chunk);
    });
    const exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
    this.exited = exited;
    exited.then(({ code, signal }) => {
      liveProcesses.delete(proc);
      if (!this.killedByUs && this.proc === proc) {
        this.crashed = true;
        console.error(`\n*** bubble server exited on its own (code ${code}, signal ${signal}); ` +
          `stderr tail:\n${this.stderr.slice(-8000)}\n`);
      }
    });
    const lines = createInterface({ input: proc.stdout });
    const ready = new Promise((res, rej) => {
      lines.on('line', (line) => {
        // `--metrics-addr` announces its listener first.
        const metrics = /^metrics on (127\.0\.0\.1:\d+)$/.exec(line.trim());
        if (metrics) this.metricsUrl = `http://${metrics[1]}`;
        const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line.trim());
        if (m) res(Number(m[1]));
      });
      exited.then(({ code, signal }) =>
        rej(new Error(`server exited before listening (code ${code}, signal ${signal}):\n` +
          this.stderr.slice(-8000))));
      proc.once('error', rej);
    });
    this.port = await within(ready, 30000, `server start (${BIN})`).catch((e) => {
      this.killedByUs = true;
      proc.kill('SIGKILL');
      throw e;
    });
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** SIGKILL, no chance to flush anything. */
  async kill() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.killedByUs = true;
    this.proc.kill('SIGKILL');
    await within(this.exited, 10000, 'server exit after SIGKILL');
  }

  /** SIGKILL, then start again on the same database (new port). */
  async restart() {
    await this.kill();
    await this.start();
    return this;
  }

  /** Stops for good and deletes the database. */
  async stop() {
    servers.delete(this);
    await this.kill();
    if (this.pgName) {
      await psql(PG, `DROP DATABASE IF EXISTS ${this.pgName} WITH (FORCE)`).catch((e) =>
        console.error(`could not drop ${this.pgName}: ${e.message}`));
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    if (process.env.BUBBLE_TEST_LOGS_AT_STOP) console.error(this.stderr);
  }

  get alive() {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

/**
 * Starts a server on a free port. Without `dbUrl` it gets a fresh database. `args`: more command
 * line options for `bubble serve`.
 */
export async function startServer({ dbUrl, args = [] } = {}) {
  const db = dbUrl ? { dbUrl, pgName: null, dir: null } : await freshDatabase();
  const server = new TestServer(db, args);
  servers.add(server);
  try {
    await server.start();
  } catch (e) {
    if (!dbUrl) await server.stop().catch(() => {});
    throw e;
  }
  return server;
}

// ---------------------------------------------------------------------------------------------
// Clusters: several servers on one PostgreSQL database, linked by a socket.io adapter

/** The Redis of the cluster tests (`--redis-url`). */
export const REDIS = process.env.BUBBLE_TEST_REDIS || 'redis://127.0.0.1:6379';
/** Node liveness settings of test clusters: short, so that a killed node is declared dead fast. */
export const NODE_HEARTBEAT_MS = 300;
export const NODE_TIMEOUT_MS = 2000;

/** The `bubble serve` options that select an adapter: 'redis' or 'postgres'. */
export function adapterArgs(adapter) {
  if (adapter === 'redis') return ['--redis-url', REDIS];
  if (adapter === 'postgres') return ['--adapter', 'postgres'];
  throw new Error(`unknown adapter ${adapter}`);
}

/**
 * Starts `nodes` servers on ONE fresh PostgreSQL database (BUBBLE_TEST_PG must be set), linked by
 * the `adapter` ('redis' or 'postgres') under a channel prefix of their own, so that clusters
 * running at the same time on the same Redis or PostgreSQL never hear each other. `args`: more
 * options for every node. Returns `{ nodes, dbUrl, prefix, adapter, heartbeatMs, timeoutMs,
 * addNode(), kill(i), stop() }`: `kill(i)` SIGKILLs node i; `stop()` stops every node, then
 * drops the database.
 */
export async function startCluster({
  adapter = 'redis', nodes = 2, args = [], heartbeatMs = NODE_HEARTBEAT_MS, timeoutMs = NODE_TIMEOUT_MS,
} = {}) {
  if (!PG) throw new Error('a cluster needs PostgreSQL: set BUBBLE_TEST_PG');
  const db = await freshDatabase();
  const prefix = `t${randomBytes(6).toString('hex')}`;
  const nodeArgs = [
    ...adapterArgs(adapter), '--adapter-prefix', prefix,
    '--node-heartbeat-ms', String(heartbeatMs), '--node-timeout-ms', String(timeoutMs), ...args,
  ];
  let stopped = false;
  const cluster = {
    adapter, prefix, heartbeatMs, timeoutMs, dbUrl: db.dbUrl, pgName: db.pgName, nodes: [],
    /** Starts one more node on the cluster's database; returns it. */
    async addNode() {
      const node = new TestServer({ dbUrl: db.dbUrl, pgName: null, dir: null }, nodeArgs);
      servers.add(node);
      try {
        await node.start();
      } catch (e) {
        // The error carries the node's log; later failures need not print it again.
        servers.delete(node);
        throw e;
      }
      cluster.nodes.push(node);
      return node;
    },
    /** SIGKILLs node `i` (no chance to tell anyone); resolves once it has exited. */
    kill(i) {
      return cluster.nodes[i].kill();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(cluster.nodes.map((n) => n.stop().catch(() => {})));
      await psql(PG, `DROP DATABASE IF EXISTS ${db.pgName} WITH (FORCE)`).catch((e) =>
        console.error(`could not drop ${db.pgName}: ${e.message}`));
    },
  };
  try {
    // The first node migrates the database; the others start once it is done.
    await cluster.addNode();
    for (let i = 1; i < nodes; i++) await cluster.addNode();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

/** GET /health; returns { status, body }. */
export async function health(server) {
  const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// ---------------------------------------------------------------------------------------------
// Clients

const openClients = new Set();

function describeSock(sock) {
  return `${sock.gen}.x socket ${sock.id ?? '(no id)'}`;
}

/** Creates a socket on `/` without waiting for it to connect (see createNsClient). */
export function createClient(gen, server, { token, transports, reconnection = false, query } = {}) {
  if (query === undefined && token !== undefined) {
    query = gen === 4 ? { bubble: token } : `bubble=${encodeURIComponent(token)}`;
  }
  return createNsClient(gen, server, '', { query, transports, reconnection });
}

/**
 * Creates a counsellor account with the command line, password on standard input, in the
 * database of `target` (a server or a cluster: anything with a `dbUrl`).
 */
export function addCounsellor(target, username, name, password) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['counsellor', 'add', username, '--name', name,
      '--database-url', target.dbUrl], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`counsellor add: ${code} ${out}`))));
    proc.stdin.end(`${password}\n`);
  });
}

/**
 * Creates a socket on namespace `ns` (e.g. '/counsellor', '/tincan') without waiting for it to
 * connect. `auth` (4.x only): the handshake auth object; `headers`: extra handshake headers (how
 * 1.x and 2.x send a bearer token); `query`: the handshake query. closeAll closes it too.
 */
export function createNsClient(gen, server, ns, { auth, headers, query, transports, reconnection = false } = {}) {
  const url = `${typeof server === 'string' ? server : server.url}${ns}`;
  const opts = { forceNew: true, multiplex: false, reconnection, timeout: 5000 };
  if (reconnection) Object.assign(opts, { reconnectionDelay: 100, reconnectionDelayMax: 200 });
  if (headers) opts.extraHeaders = headers;
  if (query !== undefined) opts.query = query;
  if (transports) opts.transports = transports;
  let sock;
  if (gen === 1 || gen === 2) {
    if (auth !== undefined) throw new Error(`${gen}.x clients have no handshake auth: use headers`);
    sock = (gen === 1 ? sio1 : sio2)(url, opts);
  } else if (gen === 4) {
    if (auth !== undefined) opts.auth = auth;
    sock = sio4(url, opts);
  } else {
    throw new Error(`unknown client generation ${gen}`);
  }
  sock.gen = gen;
  // The server emits my_id right after connecting: listen before the connection is up.
  sock.myIdPromise = new Promise((res) => {
    const h = (id) => { sock.off('my_id', h); res(id); };
    sock.on('my_id', h);
  });
  openClients.add(sock);
  return sock;
}

/**
 * A socket on `/counsellor`, not yet connected, signing in with `how`: { token } (4.x handshake
 * auth), { bearer } (an Authorization header, as 1.x and 2.x send it) or { cookie }. `headers`:
 * more handshake headers (an Origin, say). closeAll closes it too.
 */
export function createCounsellorClient(gen, server, how = {}, { transports, headers = {} } = {}) {
  const all = { ...headers };
  if (how.bearer) all.Authorization = `Bearer ${how.bearer}`;
  if (how.cookie) all.Cookie = how.cookie;
  const auth = gen === 4 && how.token ? { token: how.token } : undefined;
  return createNsClient(gen, server, '/counsellor', { auth, headers: all, transports });
}

/** A connected socket on namespace `ns` (see createNsClient); rejects with the connect error. */
export async function connectNs(gen, server, ns, opts = {}) {
  const sock = createNsClient(gen, server, ns, opts);
  try {
    await waitConnected(sock);
  } catch (e) {
    closeClient(sock);
    throw e;
  }
  return sock;
}

/** Resolves when `sock` disconnects (at once if it is not connected). */
export function waitDisconnected(sock, ms = 5000) {
  if (!sock.connected) return Promise.resolve();
  return within(new Promise((res) => sock.once('disconnect', res)), ms,
    `disconnect of ${describeSock(sock)}`);
}

/** Resolves when `sock` is connected (rejects on connect error or timeout). */
export function waitConnected(sock, ms = 5000) {
  if (sock.connected) return Promise.resolve(sock);
  return new Promise((res, rej) => {
    const cleanup = () => {
      clearTimeout(timer);
      sock.off('connect', onConnect);
      sock.off('connect_error', onError);
      sock.off('error', onError);
    };
    const onConnect = () => { cleanup(); res(sock); };
    const onError = (err) => {
      cleanup();
      rej(new Error(`${sock.gen}.x client could not connect: ${err?.message ?? err}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      rej(new Error(`${sock.gen}.x client did not connect within ${ms} ms`));
    }, ms);
    sock.on('connect', onConnect);
    sock.on('connect_error', onError);
    sock.on('error', onError);
  });
}

/** A connected socket of client generation `gen` (1, 2 or 4). */
export async function connect(gen, server, opts = {}) {
  const sock = createClient(gen, server, opts);
  try {
    await waitConnected(sock);
  } catch (e) {
    closeClient(sock);
    throw e;
  }
  return sock;
}

/** The bubbleId the server sent in `my_id` on connect. */
export function bubbleIdOf(sock, ms = 3000) {
  return within(sock.myIdPromise, ms, `my_id on connect of ${describeSock(sock)}`);
}

/** The Engine.IO transport a socket currently uses ('polling' or 'websocket'). */
export function transportOf(sock) {
  return sock.io.engine.transport.name;
}

export function closeClient(sock) {
  openClients.delete(sock);
  try { sock.close(); } catch { /* ignore */ }
}

/**
 * Closes every client still open. Use as `afterEach(closeAll)`: when the test failed, it also
 * prints what the servers of this file logged (warnings and errors at the default log level).
 */
export function closeAll(t) {
  for (const sock of [...openClients]) closeClient(sock);
  if (t && t.passed === false) {
    for (const server of servers) {
      const tail = server.stderr.slice(-6000).trim();
      if (tail) console.error(`--- server ${server.url} log tail (test '${t.name}' failed) ---\n${tail}`);
    }
  }
}

/** POSTs `body` as JSON to `path`; resolves to the status, the body as JSON (null when it is
 * not), its text, and the cookie set, if any (`name=value`). */
export async function postJson(server, path, body, headers = {}) {
  const res = await within(fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  }), 10000, `POST ${path}`);
  const text = await within(res.text(), 10000, `POST ${path}: body`);
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: json, text, cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] };
}

/** Next `event` on `sock` (its first argument). */
export function once(sock, event, ms = 3000) {
  return onceWhere(sock, event, () => true, ms);
}

/** Next `event` on `sock` whose payload satisfies `pred`. */
export function onceWhere(sock, event, pred, ms = 3000, label = '') {
  return new Promise((res, rej) => {
    const h = (payload) => {
      let ok;
      try { ok = pred(payload); } catch { ok = false; }
      if (!ok) return;
      clearTimeout(timer);
      sock.off(event, h);
      res(payload);
    };
    const timer = setTimeout(() => {
      sock.off(event, h);
      rej(new Error(`timed out after ${ms} ms waiting for '${event}'${label ? ` (${label})` : ''} ` +
        `on ${describeSock(sock)}`));
    }, ms);
    sock.on(event, h);
  });
}

/** Records every `event` on `sock` from now on: returns the live array; `.stop()` detaches. */
export function collect(sock, event) {
  const got = [];
  const h = (payload) => got.push(payload);
  sock.on(event, h);
  Object.defineProperty(got, 'stop', { value: () => sock.off(event, h), enumerable: false });
  return got;
}

/** Polls `fn` until it returns truthy; rejects after `ms`. */
export async function waitUntil(fn, ms = 3000, label = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await sleep(10);
  }
}

/** Asserts that `sock` receives no `event` within `ms`. */
export async function expectNone(sock, event, ms = 300) {
  const got = collect(sock, event);
  await sleep(ms);
  got.stop();
  assert.deepEqual([...got], [], `${describeSock(sock)} should not have received '${event}'`);
}

function emitRaw(sock, event, payload, ack) {
  const args = [event];
  if (payload !== NO_PAYLOAD) args.push(payload);
  if (ack) args.push(ack);
  sock.emit(...args);
}

/** Emits with an acknowledgement callback and resolves with the ack value. */
export function emitAck(sock, event, payload = NO_PAYLOAD, ms = 3000) {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no ack for '${event}' within ${ms} ms`)), ms);
    emitRaw(sock, event, payload, (value) => { clearTimeout(timer); res(value); });
  });
}

/** Emits without an ack. */
export function emit(sock, event, payload = NO_PAYLOAD) {
  emitRaw(sock, event, payload, null);
}

/**
 * A request that must succeed. Waits for the reply event (default: the event's own name) sent to
 * the sender and, with `ack` (default), for the ack, which must equal the reply payload. With
 * `reply: null` the sender gets no event and the ack must be `{}`. A `bubble_error` fails.
 */
export async function request(sock, event, payload = NO_PAYLOAD,
  { reply = event, ack = true, ms = 3000, match = () => true } = {}) {
  let onErr;
  const failed = new Promise((_, rej) => {
    onErr = (err) => rej(new Error(`'${event}' ${JSON.stringify(payload === NO_PAYLOAD ? '(none)' : payload)?.slice(0, 200)} ` +
      `got bubble_error ${JSON.stringify(err)}`));
    sock.on('bubble_error', onErr);
  });
  failed.catch(() => {});
  try {
    const replyP = reply ? onceWhere(sock, reply, match, ms, `reply to '${event}'`) : null;
    let ackP = null;
    if (ack) ackP = emitAck(sock, event, payload, ms);
    else emit(sock, event, payload);
    const [got, ackValue] = await Promise.race([
      Promise.all([replyP, ackP]),
      failed,
    ]);
    if (ack) {
      if (reply) assert.deepEqual(ackValue, got, `ack of '${event}' must equal the '${reply}' payload`);
      else assert.deepEqual(ackValue, {}, `ack of '${event}' must be {}`);
    }
    return reply ? got : ackValue;
  } finally {
    sock.off('bubble_error', onErr);
  }
}

/**
 * A request that must fail with `code`: the sender gets `bubble_error {code, message}` and, with
 * `ack` (default), an ack `{ error: { code, message } }`. Also asserts that the sender did not get
 * the success reply event `reply` (default: the event's name).
 */
export async function expectError(sock, event, payload, code, { ack = true, reply = event, ms = 3000 } = {}) {
  const replies = reply ? collect(sock, reply) : [];
  try {
    const errP = once(sock, 'bubble_error', ms);
    let ackP = null;
    if (ack) ackP = emitAck(sock, event, payload, ms);
    else emit(sock, event, payload);
    const [err, ackValue] = await Promise.all([errP, ackP]);
    const what = `${event} ${describePayload(payload)}`;
    assert.equal(err?.code, code, `${what}: bubble_error code (got ${JSON.stringify(err)})`);
    assert.equal(typeof err.message, 'string', `${what}: bubble_error message must be a string`);
    assert.ok(err.message.length > 0, `${what}: bubble_error message must not be empty`);
    if (ack) {
      assert.equal(ackValue?.error?.code, code, `${what}: ack error code (got ${JSON.stringify(ackValue)?.slice(0, 300)})`);
      assert.equal(typeof ackValue.error.message, 'string', `${what}: ack error message`);
    }
    await sleep(20);
    assert.equal(replies.length, 0, `${what}: sender must not get '${reply}' on failure`);
    return err;
  } finally {
    replies.stop?.();
  }
}

export function describePayload(payload) {
  if (payload === NO_PAYLOAD) return '(no payload)';
  const s = JSON.stringify(payload, (k, v) => (typeof v === 'string' && v.length > 60 ? `<string of ${v.length}>` : v));
  return s === undefined ? String(payload) : s;
}

// ---------------------------------------------------------------------------------------------
// Common flows

/** Creates a room with `sock`; returns the create_room payload. */
export function createRoom(sock, fields = {}) {
  return request(sock, 'create_room', { roomName: `room ${randomBytes(3).toString('hex')}`, ...fields });
}

/**
 * Joins `roomId` with `sock`; returns the joiner's join_room payload (the one with `messages`).
 * `seenBy`: sockets already in the room; also waits until each got the join_room about `sock`, so
 * that a later listener on them does not catch this notification.
 */
export async function joinRoom(sock, roomId, seenBy = []) {
  const seen = seenBy.map((o) => onceWhere(o, 'join_room',
    (p) => p?.roomId === roomId && p?.userId === sock.id && !Array.isArray(p?.messages), 3000,
    `join_room about ${sock.id}`));
  const mine = await request(sock, 'join_room', { roomId }, { match: (p) => Array.isArray(p?.messages) });
  await Promise.all(seen);
  return mine;
}

export function viewRoom(sock, roomId) {
  return request(sock, 'view_room', { roomId });
}

export function listRooms(sock) {
  return request(sock, 'list_rooms', {});
}

export function myRooms(sock) {
  return request(sock, 'my_rooms', {});
}

/** Sends a message and waits for the sender's own add_message echo. */
export function addMessage(sock, roomId, message) {
  return request(sock, 'add_message', { roomId, message },
    { match: (p) => p?.sentByMe === true && p?.content === message });
}

export { assert };
