// The database cannot write for a while, under a mixed load of Bubble `add_message` and
// `create_room` and TinCan `message/create` from socket.io-client 4.x and 1.x.
//
// On SQLite the server's file size limit is lowered to nothing (`prlimit --fsize`), so every write
// to the database and its log fails with EFBIG, as on a full disk; the server ignores SIGXFSZ, so
// it lives on. On PostgreSQL the server's backends are terminated over and over
// (pg_terminate_backend). Then the fault ends, and:
// - every request was answered: the acknowledged ones stored (read back from the database after a
//   restart), the others `internal_error` and nothing of theirs stored;
// - requests succeed again without a restart (within a generous bound), and on SQLite the write
//   lock is free for another process.
import { describe, test, afterEach } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import sio1 from 'sio1';
import { io as sio4 } from 'sio4';
import {
  assert, startServer, connect, closeAll, emitAck, newToken, sleep, within, waitUntil, PG, DB_KIND,
} from './harness.mjs';

const execFileP = promisify(execFile);

/** How long the database cannot write. */
const FAULT_MS = 3000;
/** The bound on every answer: generous, the busy timeout of a stuck write is 10 s. */
const ANSWER_MS = 20000;

// ---------------------------------------------------------------------------------------------
// The database, read and broken from outside

/** Rows of one column, as strings. */
async function column(server, sql) {
  if (server.pgName) {
    const { stdout } = await execFileP('psql', [server.dbUrl, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql]);
    return stdout.split('\n').filter((l) => l !== '');
  }
  const { stdout } = await execFileP('sqlite3', ['-cmd', '.timeout 5000', sqliteFile(server), sql]);
  return stdout.split('\n').filter((l) => l !== '');
}

const sqliteFile = (server) => server.dbUrl.replace(/^sqlite:\/\//, '').replace(/\?.*$/, '');

/** Starts the fault; returns a function that ends it. */
async function breakWrites(server) {
  if (!server.pgName) {
    const pid = String(server.proc.pid);
    await execFileP('prlimit', ['--pid', pid, '--fsize=0:']);
    return () => execFileP('prlimit', ['--pid', pid, '--fsize=unlimited:']);
  }
  let stop = false;
  const killing = (async () => {
    while (!stop) {
      await execFileP('psql', [PG, '-qAtc', 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity ' +
        `WHERE datname = '${server.pgName}' AND pid <> pg_backend_pid()`]).catch(() => {});
      await sleep(50);
    }
  })();
  return async () => { stop = true; await killing; };
}

// ---------------------------------------------------------------------------------------------
// TinCan clients (see tincan.test.mjs)

async function signUp(server) {
  const username = `disk_${randomBytes(4).toString('hex')}`;
  const password = 'correct horse battery';
  const post = (path, body) => fetch(`${server.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal((await post('/tincan/register', { username, password })).status, 201);
  const login = await post('/tincan/login', { username, password });
  assert.equal(login.status, 200);
  return (await login.json()).token;
}

const tincanSockets = new Set();

async function connectTinCan(gen, server, token) {
  const opts = { forceNew: true, multiplex: false, reconnection: false, timeout: 5000 };
  if (gen === 4) opts.auth = { token };
  else opts.extraHeaders = { Authorization: `Bearer ${token}` };
  const sock = gen === 1 ? sio1(`${server.url}/tincan`, opts) : sio4(`${server.url}/tincan`, opts);
  tincanSockets.add(sock);
  await within(new Promise((res, rej) => {
    sock.once('connect', res);
    sock.once('connect_error', (e) => rej(new Error(`tincan ${gen}.x: ${e?.message ?? e}`)));
  }), 5000, `tincan ${gen}.x connect`);
  return sock;
}

function tincanAck(sock, event, payload) {
  return within(new Promise((res) => sock.emit(event, payload, res)), ANSWER_MS, `ack of ${event}`);
}

// ---------------------------------------------------------------------------------------------
// The load: each request's content is unique, so that the database tells whether it was stored

/**
 * One request of `kind`; resolves with `{ kind, key, ok, id?, code? }`, or `answered: false` when
 * no answer came within ANSWER_MS.
 */
async function attempt(kind, sock, target) {
  const key = `${kind}-${sock.gen ?? sock.tincanGen}-${randomBytes(6).toString('hex')}`;
  const outcome = await send(kind, sock, target, key);
  return { ...outcome, at: Date.now() };
}

/** Sends one request whose content (message, room name) is `key`. */
async function send(kind, sock, target, key) {
  try {
    if (kind === 'add_message') {
      const ack = await emitAck(sock, 'add_message', { roomId: target, message: key }, ANSWER_MS);
      if (ack?.error) return { kind, key, ok: false, code: ack.error.code };
      assert.equal(ack?.content, key, `add_message ack: ${JSON.stringify(ack)}`);
      return { kind, key, ok: true, id: String(ack.id) };
    }
    if (kind === 'create_room') {
      const ack = await emitAck(sock, 'create_room', { roomName: key }, ANSWER_MS);
      if (ack?.error) return { kind, key, ok: false, code: ack.error.code };
      assert.equal(ack?.roomName, key, `create_room ack: ${JSON.stringify(ack)?.slice(0, 300)}`);
      return { kind, key, ok: true, id: ack.roomId };
    }
    const ack = await tincanAck(sock, 'message/create', { conversationId: target, content: key });
    if (ack?.ok !== true) return { kind, key, ok: false, code: ack?.code };
    assert.equal(ack.message?.content, key, `message/create ack: ${JSON.stringify(ack)}`);
    return { kind, key, ok: true, id: ack.message.id };
  } catch (e) {
    if (/timed out|no ack/.test(e.message)) return { kind, key, ok: false, answered: false };
    throw e;
  }
}

/** What is stored of each kind: message contents, room names, TinCan message contents. */
async function stored(server) {
  const [messages, rooms, tincan] = await Promise.all([
    column(server, 'SELECT content FROM message'),
    column(server, 'SELECT name FROM room'),
    column(server, 'SELECT content FROM tincan_message'),
  ]);
  return { add_message: new Set(messages), create_room: new Set(rooms), 'message/create': new Set(tincan) };
}

describe(`disk full or a write error (${DB_KIND})`, { timeout: 180000 }, () => {
  afterEach((t) => {
    for (const s of tincanSockets) { try { s.close(); } catch { /* gone */ } }
    tincanSockets.clear();
    closeAll(t);
  });

  test('acknowledged writes are stored, failed ones answered internal_error and not stored; ' +
    'writes work again once the fault ends', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());

    const b4 = await connect(4, server, { token: newToken() });
    const b1 = await connect(1, server, { token: newToken() });
    const token = await signUp(server);
    const t4 = await connectTinCan(4, server, token);
    const t1 = await connectTinCan(1, server, token);
    t4.tincanGen = 4;
    t1.tincanGen = 1;
    const group = await tincanAck(t4, 'group/create', { name: `disk ${randomBytes(3).toString('hex')}` });
    assert.equal(group?.ok, true, JSON.stringify(group));
    const conv = await tincanAck(t4, 'conversation/create', { groupId: group.group.id, name: 'load' });
    assert.equal(conv?.ok, true, JSON.stringify(conv));
    const conversationId = conv.conversation.id;
    const room4 = (await attempt('create_room', b4)).id;
    const room1 = (await attempt('create_room', b1)).id;
    assert.ok(room4 && room1, 'rooms for the messages');

    const workers = [
      ['add_message', b4, room4], ['add_message', b1, room1],
      ['create_room', b4], ['create_room', b1],
      ['message/create', t4, conversationId], ['message/create', t1, conversationId],
    ];
    const outcomes = [];
    let loading = true;
    let healedAt;
    const load = workers.map(async ([kind, sock, target]) => {
      while (loading) {
        outcomes.push(await attempt(kind, sock, target));
        await sleep(20);
      }
    });

    try {
      await sleep(500);
      const heal = await breakWrites(server);
      await sleep(FAULT_MS);
      await heal().catch(() => {});
      healedAt = Date.now();
      await sleep(500);
    } finally {
      loading = false;
      await Promise.all(load);
    }
    assert.ok(server.alive, 'the server lives through the fault (a write past the file size limit fails)');

    const unanswered = outcomes.filter((o) => o.answered === false);
    assert.deepEqual(unanswered, [], 'every request is answered');
    const failed = outcomes.filter((o) => !o.ok);
    const codes = [...new Set(failed.map((o) => o.code))];
    if (failed.length) assert.deepEqual(codes, ['internal_error'], 'a request that failed is answered internal_error');
    if (DB_KIND === 'sqlite') {
      for (const [kind] of workers) {
        assert.ok(failed.some((o) => o.kind === kind), `some ${kind} failed during the fault`);
      }
    }

    // Once the fault has ended every kind of request succeeds again, without a restart.
    const targets = { add_message: room4, create_room: undefined, 'message/create': conversationId };
    const socks = { add_message: [b4, b1], create_room: [b4, b1], 'message/create': [t4, t1] };
    const after = [];
    for (const kind of Object.keys(targets)) {
      await waitUntil(async () => {
        const o = await attempt(kind, socks[kind][0], targets[kind]);
        after.push(o);
        return o.ok;
      }, 10000, `a ${kind} that succeeds after the fault`);
    }
    for (let i = 0; i < 5; i++) {
      for (const kind of Object.keys(targets)) {
        for (const sock of socks[kind]) {
          const target = kind === 'add_message' ? (sock === b4 ? room4 : room1) : targets[kind];
          const o = await attempt(kind, sock, target);
          assert.ok(o.ok, `${kind} after the fault: ${JSON.stringify(o)}`);
          after.push(o);
        }
      }
    }
    if (DB_KIND === 'sqlite') {
      // Nothing in the server holds SQLite's write lock any more.
      await execFileP('sqlite3', ['-cmd', '.timeout 5000', sqliteFile(server),
        'BEGIN IMMEDIATE; COMMIT;']);
    }

    // What the server shows from memory has nothing of a failed request either (list_rooms has
    // each room's newest messages, message/list the conversation's newest).
    const shown = JSON.stringify(await emitAck(b4, 'list_rooms', {}, ANSWER_MS));
    const history = await tincanAck(t4, 'message/list', { conversationId, limit: 200 });
    assert.equal(history?.ok, true, JSON.stringify(history)?.slice(0, 300));
    const listed = `${shown}${JSON.stringify(history)}`;
    const shownFailed = failed.filter((o) => listed.includes(o.key));
    assert.deepEqual(shownFailed, [], 'list_rooms and message/list show no failed request');

    // After a restart: every acknowledged write is there, nothing of a failed one.
    await server.restart();
    const db = await stored(server);
    const all = [...outcomes, ...after];
    const missing = all.filter((o) => o.ok && !db[o.kind].has(o.key));
    assert.deepEqual(missing, [], `acknowledged writes missing after the fault (of ${all.filter((o) => o.ok).length})`);
    const leaked = all.filter((o) => !o.ok && db[o.kind].has(o.key));
    assert.deepEqual(leaked, [], 'failed writes stored');

    // And through the protocol: the rooms acknowledged are there.
    const viewer = await connect(4, server);
    for (const o of all.filter((x) => x.ok && x.kind === 'create_room')) {
      const ack = await emitAck(viewer, 'view_room', { roomId: o.id }, ANSWER_MS);
      assert.equal(ack?.roomName, o.key, `view_room ${o.id} after the restart: ${JSON.stringify(ack)?.slice(0, 200)}`);
    }
    const lastFailure = failed.length ? `${Math.max(...failed.map((o) => o.at)) - healedAt} ms` : '(none)';
    t.diagnostic(`${outcomes.length} requests under load, ${failed.length} failed during the fault; ` +
      `${all.filter((o) => o.ok).length} acknowledged writes checked; last failure answered ` +
      `${lastFailure} after the fault ended`);
  });

  test('messages in flight on one socket while writes fail: answered in the order sent; ' +
    'acknowledged ones stored, failed ones not', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const a = await connect(4, server, { token: newToken() });
    const room = (await attempt('create_room', a)).id;
    assert.ok(room, 'a room for the messages');
    const sent = [];
    const order = [];
    const answers = [];
    let sending = true;
    const pump = (async () => {
      while (sending) {
        const batch = [];
        for (let k = 0; k < 20; k++) {
          const i = sent.length;
          sent.push(`in-flight ${i}`);
          batch.push(emitAck(a, 'add_message', { roomId: room, message: sent[i] }, ANSWER_MS)
            .then((ack) => { order.push(i); answers[i] = ack; }));
        }
        await Promise.all(batch);
        await sleep(20);
      }
    })();
    try {
      await sleep(300);
      const heal = await breakWrites(server);
      await sleep(1500);
      await heal().catch(() => {});
      await sleep(500);
    } finally {
      sending = false;
      await pump;
    }
    assert.ok(server.alive, 'the server lives through the fault');
    assert.deepEqual(order, sent.map((_, i) => i), 'answered in the order sent');
    const stored = new Set(await column(server, `SELECT content FROM message WHERE room_id = '${room}'`));
    const failed = [];
    answers.forEach((ack, i) => {
      if (ack?.error) {
        assert.equal(ack.error.code, 'internal_error', `answer ${i}`);
        assert.ok(!stored.has(sent[i]), `failed ${sent[i]} is not stored`);
        failed.push(i);
      } else {
        assert.equal(ack?.content, sent[i], `answer ${i}`);
        assert.ok(stored.has(sent[i]), `acknowledged ${sent[i]} is stored`);
      }
    });
    if (DB_KIND === 'sqlite') assert.ok(failed.length > 0, 'some messages failed during the fault');
    assert.ok(failed.length < sent.length, 'messages were acknowledged around the fault');
  });
});
