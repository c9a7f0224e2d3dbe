// Several `bubble` nodes on one PostgreSQL database, linked by the Redis or the PostgreSQL
// socket.io adapter. Whatever a client sees must be the same whether the other party is on its
// node or another: room broadcasts, presence (numUsers, participants), names, counsellor matching,
// moderation, sign-outs, TinCan membership, pushes (sent once although every node runs the
// worker), and the cleanup after a node is SIGKILLed. Clients of both protocol generations are
// spread over the nodes. Needs BUBBLE_TEST_PG; Redis from BUBBLE_TEST_REDIS or
// redis://127.0.0.1:6379.
import { describe, test, before, after, afterEach } from 'node:test';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addCounsellor, assert, PG, NODE_HEARTBEAT_MS, NODE_TIMEOUT_MS, startCluster, connect as connectRoot,
  connectNs as connectToNs, closeAll,
  closeClient, onceWhere, collect, request, expectError, emitAck, createRoom, joinRoom, viewRoom,
  listRooms, myRooms, addMessage, bubbleIdOf, newToken, sleep, waitUntil, waitDisconnected,
} from './harness.mjs';
import {
  assertRoom, assertMessage, assertKeys, ADD_MESSAGE_KEYS, ADD_REACTION_KEYS, PRESENCE_KEYS,
} from './shapes.mjs';

const SKIP = PG ? false : 'needs BUBBLE_TEST_PG: the nodes of a cluster share one PostgreSQL database';
const ADAPTERS = ['redis', 'postgres'];
/** How long survivors may take to act on a SIGKILLed node: its timeout, a heartbeat, and slack. */
const DEATH_MS = NODE_TIMEOUT_MS + NODE_HEARTBEAT_MS + 4000;
/** The window in which an event that must not come (a duplicate, a stray) would have come. */
const QUIET_MS = 300;
/** Every test signs in from 127.0.0.1: lift the per-address sign-in limits. */
const SIGN_IN_ARGS = [
  '--auth-login-per-ip', '10000', '--auth-login-per-user', '1000',
  '--tincan-login-per-ip', '10000', '--tincan-login-per-user', '1000',
];

/** Sockets keep their id as `sid`: a client forgets `id` once disconnected, and the tests still
 * need to name sockets that went away (closed, or on a killed node). */
const pin = (sock) => { sock.sid = sock.id; return sock; };
const connect = async (...args) => pin(await connectRoot(...args));
const connectNs = async (...args) => pin(await connectToNs(...args));

const sorted = (list) => [...list].sort();
const ids = (...socks) => sorted(socks.map((s) => s.sid));
const uniq = (prefix) => `${prefix}_${randomBytes(4).toString('hex')}`;
const presence = (roomId, sock, bubbleId) => ({ roomId, userId: sock.sid, bubbleId, user: sock.sid });
const byUser = (list) => [...list].sort((a, b) => String(a.userId).localeCompare(String(b.userId)));

/** Asserts a room's presence as `sock` sees it in view_room (and in list_rooms unless PRIVATE). */
async function assertPresence(sock, roomId, members, { listed = true, what = '' } = {}) {
  const v = await viewRoom(sock, roomId);
  const people = new Set(members.map((m) => m.bubbleId)).size;
  const expected = ids(...members.map((m) => m.sock));
  assert.equal(v.numUsers, people, `view_room numUsers on ${sock.gen}.x ${what}`);
  assert.deepEqual(sorted(v.participants), expected, `view_room participants on ${sock.gen}.x ${what}`);
  if (listed) {
    const entry = (await listRooms(sock)).find((r) => r.roomId === roomId);
    assert.ok(entry, `the room is listed to ${sock.gen}.x ${what}`);
    assert.equal(entry.numUsers, people, `list_rooms numUsers on ${sock.gen}.x ${what}`);
    assert.deepEqual(sorted(entry.participants), expected, `list_rooms participants on ${sock.gen}.x ${what}`);
  }
  return v;
}

/** Polls view_room from `sock` until `pred` holds; fails with the last view. */
async function viewUntil(sock, roomId, pred, label, ms = 3000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await viewRoom(sock, roomId);
    if (pred(v)) return v;
    if (Date.now() > end) {
      assert.fail(`${label}: after ${ms} ms still numUsers ${v.numUsers}, ` +
        `participants ${JSON.stringify(sorted(v.participants))}`);
    }
    await sleep(25);
  }
}

// ---------------------------------------------------------------------------------------------
// Counsellors

const PASSWORD = 'correct horse battery';


/** POST /auth on `node`: { token, cookie, id }. */
async function signIn(node, username) {
  const res = await fetch(`${node.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
    signal: AbortSignal.timeout(10000),
  });
  const body = await res.json().catch(() => null);
  assert.equal(res.status, 200, `POST /auth ${username}: ${JSON.stringify(body)}`);
  return { token: body.token, id: body.counsellor.id, cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] };
}

/** Connects to `/counsellor` on `node`: 4.x with `auth: { token }`, 1.x/2.x with a bearer header. */
function counsellorSocket(gen, node, { token, cookie }) {
  if (cookie) return connectNs(gen, node, '/counsellor', { headers: { Cookie: cookie } });
  return gen === 4
    ? connectNs(gen, node, '/counsellor', { auth: { token } })
    : connectNs(gen, node, '/counsellor', { headers: { Authorization: `Bearer ${token}` } });
}

/** A fresh signed-in counsellor with a socket on `node`, online unless `online: false`. */
async function signedInCounsellor(cluster, node, gen, name, { online = true } = {}) {
  const username = uniq('c');
  await addCounsellor(cluster, username, name, PASSWORD);
  const auth = await signIn(node, username);
  const sock = await counsellorSocket(gen, node, { token: auth.token });
  if (online) assert.deepEqual(await request(sock, 'counsellor_online', {}), {});
  return { sock, name, ids: [auth.id], ...auth };
}

/** An old app's counsellor on `/` of `node`, online. */
async function rootCounsellor(node, gen, name) {
  const sock = await connect(gen, node);
  const counsellorId = `root-${newToken()}`;
  assert.deepEqual(await request(sock, 'counsellor_online', { counsellorId, counsellorName: name }), {});
  return { sock, name, ids: [counsellorId, sock.sid] };
}

/** Whether find_counsellor from a fresh socket on `node` answers counsellor_unavailable. */
async function nobodyOnline(node) {
  const probe = await connect(4, node);
  try {
    const answer = await emitAck(probe, 'find_counsellor', {});
    return answer?.error?.code === 'counsellor_unavailable';
  } finally {
    closeClient(probe);
  }
}

/** Waits until no counsellor is matched any more (those of earlier tests have gone). */
function noCounsellorOnline(node, ms = 3000) {
  return waitUntil(() => nobodyOnline(node), ms, 'no counsellor online');
}

// ---------------------------------------------------------------------------------------------
// TinCan

async function post(node, path, body, headers = {}) {
  const init = { method: 'POST', headers: { ...headers }, signal: AbortSignal.timeout(10000) };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${node.url}${path}`, init);
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: json, text };
}

/** Registers a fresh TinCan user on `node` and signs in: { user, token }. */
async function tcSignUp(node, prefix) {
  const username = uniq(prefix);
  const reg = await post(node, '/tincan/register', { username, password: PASSWORD });
  assert.equal(reg.status, 201, `register ${username}: ${reg.text}`);
  return tcLogin(node, username);
}

async function tcLogin(node, username) {
  const login = await post(node, '/tincan/login', { username, password: PASSWORD });
  assert.equal(login.status, 200, `login ${username}: ${login.text}`);
  return login.body;
}

function tcConnect(gen, node, token) {
  return gen === 4
    ? connectNs(gen, node, '/tincan', { auth: { token } })
    : connectNs(gen, node, '/tincan', { headers: { Authorization: `Bearer ${token}` } });
}

/** A TinCan request that must succeed: returns its ack. */
async function tc(sock, event, payload = {}) {
  const ack = await emitAck(sock, event, payload);
  assert.equal(ack?.ok, true, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`);
  return ack;
}

const created = (sock, content) =>
  onceWhere(sock, 'message/created', (p) => p.message.content === content, 3000, `message/created '${content}'`);

// ---------------------------------------------------------------------------------------------
// Rooms across nodes

const ROOM_EVENTS = ['add_message', 'add_reaction', 'typing', 'stop_typing', 'set_user_name', 'report_user',
  'join_room', 'exit_room', 'i_exit'];

/**
 * x (gx) and z (4.x) on node 0, y (gy) and w on node 1, all in one room: everything each sends
 * reaches every other socket exactly once, with the same payload as on one node.
 */
async function roomAcrossNodes(cluster, gx, gy) {
  const [A, B] = cluster.nodes;
  const x = await connect(gx, A, { token: newToken() });
  const y = await connect(gy, B, { token: newToken() });
  const z = await connect(4, A);
  const w = await connect(gx === 1 ? 2 : 1, B);
  const all = [x, y, z, w];
  const bids = await Promise.all(all.map((s) => bubbleIdOf(s)));
  const bid = new Map(all.map((s, i) => [s, bids[i]]));
  const roomName = `across ${gx}.x/${gy}.x 🌍`;
  const room = await createRoom(x, { roomName, userLimit: 10 });
  const { roomId } = room;

  // y joins on the other node: x hears it; y's answer counts x and lists its socket.
  const xSeesY = onceWhere(x, 'join_room', (p) => p.userId === y.sid, 3000, 'join_room about y');
  const yJoined = await joinRoom(y, roomId);
  assertRoom(yJoined, { roomId, numUsers: 2, userId: y.sid, bubbleId: bid.get(y) }, 'join_room to the joiner');
  assert.deepEqual(sorted(yJoined.participants), ids(x, y), 'the joiner sees the socket on the other node');
  const j = await xSeesY;
  assertKeys(j, PRESENCE_KEYS, 'join_room across nodes');
  assert.deepEqual(j, presence(roomId, y, bid.get(y)));
  await joinRoom(z, roomId, [x, y]);
  const wJoined = await joinRoom(w, roomId, [x, y, z]);
  assert.equal(wJoined.numUsers, 4);
  assert.deepEqual(sorted(wJoined.participants), ids(...all));
  const members = all.map((s) => ({ sock: s, bubbleId: bid.get(s) }));
  for (const s of all) await assertPresence(s, roomId, members, { what: 'with two sockets on each node' });

  const got = new Map(all.map((s) => [s, Object.fromEntries(ROOM_EVENTS.map((e) => [e, collect(s, e)]))]));
  const of = (s, event) => got.get(s)[event];
  const everyone = (event, n) => () => all.every((s) => of(s, event).length >= n);

  // Messages both ways: every socket gets each exactly once, sentByMe only on the sender's.
  const mx = await addMessage(x, roomId, `from ${gx}.x on node 0 😀`);
  const my = await addMessage(y, roomId, `from ${gy}.x on node 1 ✨ é`);
  await waitUntil(everyone('add_message', 2), 3000, 'both messages on every socket');
  for (const s of all) {
    for (const [from, echo] of [[x, mx], [y, my]]) {
      const what = `add_message from ${from.gen}.x on ${s.gen}.x`;
      const copies = of(s, 'add_message').filter((m) => m.content === echo.content);
      assert.equal(copies.length, 1, `${what}: exactly one copy`);
      assertKeys(copies[0], ADD_MESSAGE_KEYS, what);
      assertMessage(copies[0], {
        id: echo.id, createdAt: echo.createdAt, userId: from.id, bubbleId: bid.get(from), user: from.id,
        content: echo.content, message: echo.content, messageType: 'MESSAGE', sentByMe: s === from,
        roomRoomId: roomId, roomId, roomName, targetUser: null, targetUserBubbleId: null,
      }, what);
    }
  }
  // Both nodes' views and lists show both messages, newest first.
  for (const s of [z, w]) {
    assert.deepEqual((await viewRoom(s, roomId)).messages.map((m) => m.content), [my.content, mx.content],
      `view_room messages on ${s.gen}.x`);
    const entry = (await listRooms(s)).find((r) => r.roomId === roomId);
    assert.deepEqual(entry.messages.map((m) => m.content), [my.content, mx.content], `list_rooms messages on ${s.gen}.x`);
  }

  // Reactions aimed at a socket on the other node: its bubbleId is found there.
  const rz = await request(z, 'add_reaction', { roomId, reaction: 'CHEER', targetUser: y.sid },
    { match: (p) => p.sentByMe === true });
  const rw = await request(w, 'add_reaction', { roomId, reaction: 'THANK', targetUser: x.sid },
    { match: (p) => p.sentByMe === true });
  await waitUntil(everyone('add_reaction', 2), 3000, 'both reactions on every socket');
  for (const s of all) {
    for (const [from, echo, target] of [[z, rz, y], [w, rw, x]]) {
      const what = `add_reaction from ${from.gen}.x on ${s.gen}.x`;
      const copies = of(s, 'add_reaction').filter((m) => String(m.id) === String(echo.id));
      assert.equal(copies.length, 1, `${what}: exactly one copy`);
      assertKeys(copies[0], ADD_REACTION_KEYS, what);
      assertMessage(copies[0], {
        userId: from.id, bubbleId: bid.get(from), user: from.id, messageType: 'REACTION',
        content: echo.reaction, reaction: echo.reaction, targetUser: target.sid,
        targetUserBubbleId: bid.get(target), sentByMe: s === from, roomId, roomName,
      }, what);
    }
  }

  // Typing, names and reports fan out to the others on both nodes.
  await request(y, 'typing', { roomId }, { reply: null });
  await request(x, 'stop_typing', { roomId }, { reply: null });
  const newName = `Wren ${gx}${gy} 🐦`;
  await request(w, 'set_user_name', { newName }, { reply: null });
  const reason = `cross-node report ${newToken()}`;
  await request(x, 'report_user', { roomId, userToReport: y.sid, reason }, { reply: null });
  await waitUntil(() => [x, z, w].every((s) => of(s, 'typing').length >= 1)
    && [y, z, w].every((s) => of(s, 'stop_typing').length >= 1)
    && [x, y, z].every((s) => of(s, 'set_user_name').length >= 1)
    && [y, z, w].every((s) => of(s, 'report_user').length >= 1), 3000, 'typing, stop_typing, names and reports');
  for (const s of [x, z, w]) assert.deepEqual(of(s, 'typing')[0], presence(roomId, y, bid.get(y)), `typing on ${s.gen}.x`);
  for (const s of [y, z, w]) assert.deepEqual(of(s, 'stop_typing')[0], presence(roomId, x, bid.get(x)), `stop_typing on ${s.gen}.x`);
  for (const s of [x, y, z]) {
    assert.deepEqual(of(s, 'set_user_name')[0], { userId: w.sid, newName, bubbleId: bid.get(w) }, `set_user_name on ${s.gen}.x`);
  }
  for (const s of [y, z, w]) {
    assert.deepEqual(of(s, 'report_user')[0], { roomId, reportedUserId: y.sid, reason }, `report_user on ${s.gen}.x`);
  }

  // y exits on node 1: the others on both nodes hear it once; presence drops everywhere.
  const iExit = await request(y, 'exit_room', { roomId }, { reply: 'i_exit' });
  assert.deepEqual(iExit, { roomId, userId: y.sid, bubbleId: bid.get(y) });
  await waitUntil(() => [x, z, w].every((s) => of(s, 'exit_room').length >= 1), 3000, 'exit_room about y');
  for (const s of [x, z, w]) assert.deepEqual(of(s, 'exit_room')[0], presence(roomId, y, bid.get(y)), `exit_room on ${s.gen}.x`);
  const left = members.filter((m) => m.sock !== y);
  for (const s of [x, w]) await assertPresence(s, roomId, left, { what: 'after y exited' });
  await expectError(y, 'add_message', { roomId, message: 'still here?' }, 'user_not_in_room');

  // w disconnects from node 1: node 0's sockets hear it leave.
  closeClient(w);
  await waitUntil(() => [x, z].every((s) => of(s, 'exit_room').length >= 2), 3000, 'exit_room about w');
  for (const s of [x, z]) assert.deepEqual(of(s, 'exit_room')[1], presence(roomId, w, bid.get(w)), `exit_room on ${s.gen}.x`);
  await assertPresence(z, roomId, left.filter((m) => m.sock !== w), { what: 'after w disconnected' });

  // Nothing twice, nothing to the sender, nothing after leaving.
  await sleep(QUIET_MS);
  const counts = (s) => Object.fromEntries(ROOM_EVENTS.map((e) => [e, of(s, e).length]));
  const expected = new Map([
    [x, { typing: 1, stop_typing: 0, set_user_name: 1, report_user: 0, exit_room: 2, i_exit: 0 }],
    [y, { typing: 0, stop_typing: 1, set_user_name: 1, report_user: 1, exit_room: 0, i_exit: 1 }],
    [z, { typing: 1, stop_typing: 1, set_user_name: 1, report_user: 1, exit_room: 2, i_exit: 0 }],
    [w, { typing: 1, stop_typing: 1, set_user_name: 0, report_user: 1, exit_room: 1, i_exit: 0 }],
  ]);
  for (const s of all) {
    assert.deepEqual(counts(s), { add_message: 2, add_reaction: 2, join_room: 0, ...expected.get(s) },
      `events received by the ${s.gen}.x socket on node ${[x, z].includes(s) ? 0 : 1}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Push: a fake FCM (OAuth token endpoint and messages:send) on loopback

const PROJECT = 'bubble-cluster-test';

async function fakeFcm() {
  const sends = [];
  const issued = new Set();
  const problems = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const reply = (status, obj) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      if (req.method === 'POST' && req.url === '/token') {
        const form = new URLSearchParams(body);
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || !form.get('assertion')) {
          problems.push(`bad token request ${body.slice(0, 200)}`);
          return reply(400, { error: 'invalid_grant' });
        }
        const token = `fake-access-${issued.size + 1}`;
        issued.add(token);
        return reply(200, { access_token: token, expires_in: 3600, token_type: 'Bearer' });
      }
      if (req.method === 'POST' && req.url === `/v1/projects/${PROJECT}/messages:send`) {
        const auth = req.headers.authorization ?? '';
        if (!auth.startsWith('Bearer ') || !issued.has(auth.slice(7))) {
          problems.push(`send with authorization ${JSON.stringify(auth)}`);
          return reply(401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
        }
        let message;
        try {
          ({ message } = JSON.parse(body));
        } catch {
          problems.push(`unparsable send ${body.slice(0, 200)}`);
          return reply(400, { error: { code: 400, status: 'INVALID_ARGUMENT' } });
        }
        sends.push({ message, at: Date.now() });
        return reply(200, { name: `projects/${PROJECT}/messages/${sends.length}` });
      }
      problems.push(`unexpected ${req.method} ${req.url}`);
      return reply(404, { error: 'not found' });
    });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    problems,
    /** The messageIds pushed to a device token, in the order sent. */
    pushed: (device) => sends.filter((s) => s.message.token === device).map((s) => s.message.data?.messageId),
    close: () => new Promise((res) => server.close(res)),
  };
}

// ---------------------------------------------------------------------------------------------

describe('several nodes', { skip: SKIP }, () => {
  for (const adapter of ADAPTERS) {
    describe(`${adapter} adapter: two nodes on one database`, { timeout: 120000 }, () => {
      let cluster;
      before(async () => { cluster = await startCluster({ adapter, nodes: 2, args: SIGN_IN_ARGS }); });
      after(async () => { await cluster?.stop(); });
      afterEach(closeAll);

      for (const [gx, gy] of [[1, 4], [4, 2], [2, 1]]) {
        test(`room events between ${gx}.x on node 0 and ${gy}.x on node 1: joins, messages, reactions, typing, names, reports, exits, presence`, async () => {
          await roomAcrossNodes(cluster, gx, gy);
        });
      }

      test('userLimit counts the people on every node', async () => {
        const [A, B] = cluster.nodes;
        const x = await connect(4, A);
        const y = await connect(1, B);
        const room = await createRoom(x, { userLimit: 2 });
        await joinRoom(y, room.roomId, [x]);
        const z = await connect(2, A);
        const u = await connect(4, B);
        await expectError(z, 'join_room', { roomId: room.roomId }, 'room_full');
        await expectError(u, 'join_room', { roomId: room.roomId }, 'room_full');
        const xHears = onceWhere(x, 'exit_room', (p) => p.userId === y.sid);
        await request(y, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
        await xHears;
        const joined = await joinRoom(z, room.roomId, [x]);
        assert.equal(joined.numUsers, 2);
        assert.deepEqual(sorted(joined.participants), ids(x, z));
        await expectError(u, 'join_room', { roomId: room.roomId }, 'room_full');
      });

      test('one person on both nodes: a second socket on the other node tells nobody; i_exit reaches a socket never in the room', async () => {
        const [A, B] = cluster.nodes;
        const token = newToken();
        const p1 = await connect(4, A, { token });
        const bp = await bubbleIdOf(p1);
        const elsewhere = await connect(1, B, { token }); // connected before the room exists
        await bubbleIdOf(elsewhere); // my_id comes once its rooms are restored
        const q = await connect(2, B);
        const room = await createRoom(p1);
        const { roomId } = room;
        await joinRoom(q, roomId, [p1]);
        assert.deepEqual(await myRooms(elsewhere), []);

        const qJoins = collect(q, 'join_room');
        const p2 = await connect(1, B, { token });
        assert.deepEqual(await myRooms(p2), [roomId], 'put back into the room on the other node');
        await sleep(QUIET_MS);
        qJoins.stop();
        assert.deepEqual([...qJoins], [], 'no join_room: the person was in the room on node 0');

        const qExits = collect(q, 'exit_room');
        const toElsewhere = onceWhere(elsewhere, 'i_exit', (p) => p.roomId === roomId, 3000, 'i_exit on node 1');
        const toP2 = onceWhere(p2, 'i_exit', (p) => p.roomId === roomId, 3000, 'i_exit to p2');
        const mine = await request(p1, 'exit_room', { roomId }, { reply: 'i_exit' });
        assert.deepEqual(mine, { roomId, userId: p1.sid, bubbleId: bp });
        assert.deepEqual(await toElsewhere, { roomId, userId: elsewhere.sid, bubbleId: bp });
        assert.deepEqual(await toP2, { roomId, userId: p2.sid, bubbleId: bp });
        await sleep(QUIET_MS);
        qExits.stop();
        assert.deepEqual([...qExits], [presence(roomId, p1, bp)], 'one exit_room for the person');
      });

      test('one person on both nodes: a disconnect on one is no exit; exit_room on one takes the other out too', async () => {
        const [A, B] = cluster.nodes;
        const token = newToken();
        const q = await connect(2, A);
        const r = await connect(4, B);
        const room = await createRoom(q);
        const { roomId } = room;
        await joinRoom(r, roomId, [q]);
        const p1 = await connect(1, A, { token });
        const bp = await bubbleIdOf(p1);
        await joinRoom(p1, roomId, [q, r]);
        // The same person's socket on node 1 is put back into the room on connect.
        const p2 = await connect(4, B, { token });
        assert.equal(await bubbleIdOf(p2), bp, 'the same token, the same person');
        assert.deepEqual(await myRooms(p2), [roomId]);
        const bq = await bubbleIdOf(q);
        const br = await bubbleIdOf(r);
        const people = [{ sock: q, bubbleId: bq }, { sock: r, bubbleId: br }];
        await assertPresence(q, roomId, [...people, { sock: p1, bubbleId: bp }, { sock: p2, bubbleId: bp }],
          { what: 'with one person on both nodes' });

        const exits = [q, r].map((s) => collect(s, 'exit_room'));
        // p1 drops off node 0 while p2 stays on node 1: the person is still here.
        closeClient(p1);
        await viewUntil(r, roomId, (v) => !v.participants.includes(p1.sid), 'p1 gone from participants');
        await sleep(QUIET_MS);
        assert.deepEqual(exits.map((e) => e.length), [0, 0], 'no exit_room while the person has a socket on the other node');
        await assertPresence(r, roomId, [...people, { sock: p2, bubbleId: bp }], { what: 'after p1 disconnected' });

        // Back on node 0, then exit_room from node 1: both sockets leave.
        const p3 = await connect(1, A, { token });
        assert.deepEqual(await myRooms(p3), [roomId]);
        await assertPresence(q, roomId, [...people, { sock: p2, bubbleId: bp }, { sock: p3, bubbleId: bp }],
          { what: 'after p3 came back' });
        const p3Exit = onceWhere(p3, 'i_exit', (p) => p.roomId === roomId, 3000, 'i_exit on the other node');
        const mine = await request(p2, 'exit_room', { roomId }, { reply: 'i_exit' });
        assert.deepEqual(mine, { roomId, userId: p2.sid, bubbleId: bp });
        assert.deepEqual(await p3Exit, { roomId, userId: p3.sid, bubbleId: bp });
        await waitUntil(() => exits.every((e) => e.length >= 1), 3000, 'exit_room on both nodes');
        assert.deepEqual(await myRooms(p3), [], 'the socket on node 0 left the room');
        await expectError(p3, 'add_message', { roomId, message: 'left?' }, 'user_not_in_room');
        await assertPresence(q, roomId, people, { what: 'after the exit' });
        const quiet = collect(p3, 'add_message');
        const rGets = onceWhere(r, 'add_message', (m) => m.content === 'after the exit');
        await addMessage(q, roomId, 'after the exit');
        await rGets;
        await sleep(QUIET_MS);
        quiet.stop();
        assert.deepEqual([...quiet], [], 'nothing reaches a socket that was taken out');
        for (const e of exits) {
          assert.deepEqual([...e], [presence(roomId, p2, bp)], 'one exit_room for the person, named by the exiting socket');
        }
      });

      for (const [kind, ug, cg] of [['signed-in', 1, 4], ['signed-in', 4, 1], ['old-app', 2, 4]]) {
        test(`a ${ug}.x user on node 0 is matched with ${kind === 'old-app' ? 'an old app\'s' : 'a signed-in'} ${cg}.x counsellor on node 1; they chat`, async () => {
          const [A, B] = cluster.nodes;
          await noCounsellorOnline(A);
          const c = kind === 'signed-in'
            ? await signedInCounsellor(cluster, B, cg, 'Alex')
            : await rootCounsellor(B, cg, 'Alex');
          const cBid = await bubbleIdOf(c.sock);
          const user = await connect(ug, A, { token: newToken() });
          const ub = await bubbleIdOf(user);
          const toCounsellor = onceWhere(c.sock, 'find_counsellor', () => true, 3000, 'find_counsellor to the counsellor');
          const mine = await request(user, 'find_counsellor', {});
          assertRoom(mine, { roomType: 'PRIVATE', roomName: 'Chat with counsellor', userLimit: 2, numUsers: 2,
            counsellorName: 'Alex' }, 'find_counsellor to the user');
          assert.ok(c.ids.includes(mine.counsellorId), `counsellorId ${mine.counsellorId} is the one online on node 1`);
          assert.deepEqual(await toCounsellor, { ...mine, userId: user.id, bubbleId: ub },
            'the counsellor on the other node gets the same plus who asked');
          const { roomId } = mine;
          assert.ok((await myRooms(c.sock)).includes(roomId), 'the counsellor\'s socket is in the room');
          for (const s of [user, c.sock]) {
            const v = await viewRoom(s, roomId);
            assert.equal(v.numUsers, 2);
            assert.deepEqual(sorted(v.participants), ids(user, c.sock), `participants seen on ${s.gen}.x`);
          }

          const atCounsellor = onceWhere(c.sock, 'add_message', (m) => m.content === 'hello from node 0');
          await addMessage(user, roomId, 'hello from node 0');
          const m1 = await atCounsellor;
          assert.equal(m1.sentByMe, false);
          assert.equal(m1.bubbleId, ub);
          const atUser = onceWhere(user, 'add_message', (m) => m.content === 'hello from node 1 🌱');
          await addMessage(c.sock, roomId, 'hello from node 1 🌱');
          const m2 = await atUser;
          assert.equal(m2.userId, c.sock.sid);
          assert.equal(m2.bubbleId, cBid);
          const typing = onceWhere(user, 'typing', () => true);
          await request(c.sock, 'typing', { roomId }, { reply: null });
          assert.deepEqual(await typing, presence(roomId, c.sock, cBid));
          // Reactions aimed at the socket on the other node: its bubbleId is found there, also
          // for a 1.x counsellor, whose socket on /counsellor shares its id with that client's
          // socket on / (which has a bubbleId of its own and is not in the room).
          const toUser = onceWhere(user, 'add_reaction', (p) => p.sentByMe === false);
          await request(c.sock, 'add_reaction', { roomId, reaction: 'CHEER', targetUser: user.sid },
            { match: (p) => p.sentByMe === true });
          assert.equal((await toUser).targetUserBubbleId, ub);
          const toCounsellor2 = onceWhere(c.sock, 'add_reaction', (p) => p.sentByMe === false);
          await request(user, 'add_reaction', { roomId, reaction: 'THANK', targetUser: c.sock.sid },
            { match: (p) => p.sentByMe === true });
          assert.equal((await toCounsellor2).targetUserBubbleId, cBid);
          const renamed = onceWhere(c.sock, 'set_user_name', () => true);
          await request(user, 'set_user_name', { newName: 'Kim' }, { reply: null });
          assert.deepEqual(await renamed, { userId: user.id, newName: 'Kim', bubbleId: ub });

          const exit = onceWhere(user, 'exit_room', () => true);
          await request(c.sock, 'exit_room', { roomId }, { reply: 'i_exit' });
          assert.deepEqual(await exit, presence(roomId, c.sock, cBid));
        });
      }

      test('matching spreads over counsellors on both nodes; one who went offline or away is never picked', async () => {
        const [A, B] = cluster.nodes;
        await noCounsellorOnline(A);
        const a = await signedInCounsellor(cluster, A, 4, 'Ana');
        const b = await signedInCounsellor(cluster, B, 1, 'Ben');
        const picks = [];
        for (const [gen, node] of [[4, A], [1, B], [2, A], [4, B]]) {
          const user = await connect(gen, node);
          picks.push((await request(user, 'find_counsellor', {})).counsellorId);
        }
        assert.deepEqual(sorted(picks), sorted([a.id, a.id, b.id, b.id]), `two each: ${picks}`);
        await request(a.sock, 'counsellor_offline', {});
        for (const node of [B, A]) {
          const user = await connect(4, node);
          assert.equal((await request(user, 'find_counsellor', {})).counsellorId, b.id, 'only Ben is online');
        }
        closeClient(b.sock);
        await noCounsellorOnline(A);
        await expectError(await connect(1, B), 'find_counsellor', {}, 'counsellor_unavailable');
      });

      test('close_room and set_room_type by a counsellor on node 0 act on sockets and lists of node 1', async () => {
        const [A, B] = cluster.nodes;
        const c = await signedInCounsellor(cluster, A, 4, 'Mod', { online: false });
        const a = await connect(1, B);
        const b = await connect(4, B);
        const d = await connect(2, A);
        const socks = [a, b, d];
        const bids = new Map(await Promise.all(socks.map(async (s) => [s, await bubbleIdOf(s)])));
        const room = await createRoom(a);
        const { roomId } = room;
        await joinRoom(b, roomId, [a]);
        await joinRoom(d, roomId, [a, b]);
        const featured = await createRoom(d);

        const hot = await request(c.sock, 'set_room_type', { roomId: featured.roomId, roomType: 'HOT' });
        assert.equal(hot.roomType, 'HOT');
        const listed = await listRooms(a);
        assert.equal(listed[0].roomId, featured.roomId, 'node 1 lists the room featured on node 0 first');
        assert.equal(listed[0].roomType, 'HOT');
        assert.equal((await viewRoom(b, featured.roomId)).roomType, 'HOT');

        const got = new Map(socks.map((s) => [s, { exit_room: collect(s, 'exit_room'), i_exit: collect(s, 'i_exit') }]));
        const closed = await request(c.sock, 'close_room', { roomId });
        assert.equal(closed.isOpen, false);
        await waitUntil(() => socks.every((s) => got.get(s).i_exit.length >= 1 && got.get(s).exit_room.length >= 2),
          3000, 'i_exit and the exits of the others on every socket');
        await sleep(QUIET_MS);
        for (const s of socks) {
          const what = `${s.gen}.x on node ${s === d ? 0 : 1}`;
          assert.deepEqual([...got.get(s).i_exit], [{ roomId, userId: s.sid, bubbleId: bids.get(s) }], `i_exit of ${what}`);
          const others = socks.filter((o) => o !== s).map((o) => presence(roomId, o, bids.get(o)));
          assert.deepEqual(byUser(got.get(s).exit_room), byUser(others), `exit_room of the others to ${what}`);
        }
        await expectError(a, 'add_message', { roomId, message: 'hello?' }, 'user_not_in_room');
        await expectError(d, 'add_message', { roomId, message: 'hello?' }, 'user_not_in_room');
        const e = await connect(4, B);
        assert.ok(!(await listRooms(e)).some((r) => r.roomId === roomId), 'node 1 no longer lists the closed room');
        await expectError(e, 'join_room', { roomId }, 'room_closed');
        const v = await viewRoom(e, roomId);
        assert.equal(v.isOpen, false);
        assert.equal(v.numUsers, 0);
        assert.deepEqual(v.participants, []);
      });

      test('POST /auth/logout with the token on node 1 disconnects that counsellor on both nodes, and nobody else', async () => {
        const [A, B] = cluster.nodes;
        await noCounsellorOnline(A);
        const c = await signedInCounsellor(cluster, A, 4, 'Lou');
        const onB = await counsellorSocket(1, B, { token: c.token });
        const onBCookie = await counsellorSocket(4, B, { cookie: c.cookie });
        const bystander = await signedInCounsellor(cluster, A, 2, 'Pat', { online: false });
        const gone = [c.sock, onB, onBCookie].map((s) => waitDisconnected(s));
        const res = await fetch(`${B.url}/auth/logout`, { method: 'POST', headers: { Authorization: `Bearer ${c.token}` } });
        assert.equal(res.status, 204);
        await Promise.all(gone);
        assert.ok(Array.isArray(await request(bystander.sock, 'list_issues', {})), 'another counsellor stays connected');
        for (const node of [A, B]) {
          await assert.rejects(counsellorSocket(4, node, { token: c.token }), /unauthorized/, 'the token is revoked');
        }
        await noCounsellorOnline(A);
      });

      test('POST /auth/logout with the session cookie on node 0 disconnects that counsellor\'s sockets on node 1', async () => {
        const [A, B] = cluster.nodes;
        const c = await signedInCounsellor(cluster, B, 4, 'Sky', { online: false });
        const viaCookie = await counsellorSocket(1, B, { cookie: c.cookie });
        const gone = [c.sock, viaCookie].map((s) => waitDisconnected(s));
        const res = await fetch(`${A.url}/auth/logout`, { method: 'POST', headers: { Cookie: c.cookie } });
        assert.equal(res.status, 204);
        await Promise.all(gone);
        await assert.rejects(counsellorSocket(4, B, { cookie: c.cookie }), /unauthorized/, 'the session is over');
      });

      test('TinCan: a member added, removed, joining or leaving on one node hears the group live, or stops, on the other', async () => {
        const [A, B] = cluster.nodes;
        const owner = await tcSignUp(A, 'own');
        const ownerSock = await tcConnect(4, A, owner.token);
        const ctl = await tcSignUp(B, 'ctl');
        const ctlSock = await tcConnect(4, B, ctl.token);
        const m = await tcSignUp(B, 'mem');
        const mB = await tcConnect(2, B, m.token);
        const mA = await tcConnect(1, A, m.token);
        const { group } = await tc(ownerSock, 'group/create', { name: uniq('grp'), members: [ctl.user.id] });
        const { conversation: conv } = await tc(ownerSock, 'conversation/create', { groupId: group.id, name: 'general' });
        const heard = [mA, mB].map((s) => collect(s, 'message/created'));
        const contents = (list) => list.filter((p) => p.message.conversationId === conv.id).map((p) => p.message.content);

        let ctlGets = created(ctlSock, 'before');
        await tc(ownerSock, 'message/create', { conversationId: conv.id, content: 'before' });
        await ctlGets;

        // Added on node 0: m's sockets on both nodes hear it, then the group's messages.
        const added = [mB, mA].map((s) => onceWhere(s, 'group/edited', (p) => p.group.id === group.id, 3000, 'group/edited'));
        await tc(ownerSock, 'group/edit', { groupId: group.id, addMembers: [m.user.id] });
        for (const p of added) assert.equal((await p).group.memberCount, 3);
        let gets = [mB, mA, ctlSock].map((s) => created(s, 'welcome 🎉'));
        const welcome = await tc(ownerSock, 'message/create', { conversationId: conv.id, content: 'welcome 🎉' });
        for (const p of gets) assert.deepEqual((await p).message, welcome.message);

        // m writes on node 1: the owner on node 0 hears it, and so does m's own socket there.
        gets = [ownerSock, mA, ctlSock].map((s) => created(s, 'thanks'));
        const thanks = await tc(mB, 'message/create', { conversationId: conv.id, content: 'thanks' });
        for (const p of gets) assert.deepEqual((await p).message, thanks.message);
        const typing = onceWhere(ownerSock, 'conversation/type-start', (p) => p.conversationId === conv.id);
        mB.emit('conversation/type-start', { conversationId: conv.id });
        assert.deepEqual(await typing, { conversationId: conv.id, userId: m.user.id, username: m.user.username });

        // Removed on node 0: m's sockets stop hearing at once; the other member still hears.
        const removed = onceWhere(mB, 'group/edited', (p) => p.group.id === group.id, 3000, 'group/edited on removal');
        await tc(ownerSock, 'group/edit', { groupId: group.id, removeMembers: [m.user.id] });
        assert.equal((await removed).group.memberCount, 2);
        ctlGets = created(ctlSock, 'after the removal');
        await tc(ownerSock, 'message/create', { conversationId: conv.id, content: 'after the removal' });
        await ctlGets;

        // Joins again from node 1: the socket on node 0 hears the group again.
        const joined = await tc(mB, 'group/join', { groupId: group.id });
        assert.equal(joined.status, 'member');
        gets = [mA, mB].map((s) => created(s, 'rejoined'));
        await tc(ownerSock, 'message/create', { conversationId: conv.id, content: 'rejoined' });
        await Promise.all(gets);

        // Leaves on node 1: the socket on node 0 stops too.
        const ownerHears = onceWhere(ownerSock, 'group/left', (p) => p.groupId === group.id && p.userId === m.user.id);
        await tc(mB, 'group/leave', { groupId: group.id });
        await ownerHears;
        ctlGets = created(ctlSock, 'after leaving');
        await tc(ownerSock, 'message/create', { conversationId: conv.id, content: 'after leaving' });
        await ctlGets;
        await sleep(QUIET_MS);
        for (const [i, list] of heard.entries()) {
          assert.deepEqual(contents(list), ['welcome 🎉', 'thanks', 'rejoined'],
            `m's socket on node ${i === 0 ? 0 : 1} hears the group exactly while m is a member`);
        }
      });

      test('TinCan: signing out on one node (HTTP or auth/logout) drops the token\'s sockets on both', async () => {
        const [A, B] = cluster.nodes;
        const u = await tcSignUp(A, 'out');
        const t2 = (await tcLogin(B, u.user.username)).token;
        const t3 = (await tcLogin(A, u.user.username)).token;
        const s1 = await tcConnect(4, A, u.token);
        const s2 = await tcConnect(1, B, u.token);
        const k2 = await tcConnect(4, B, t2);
        const k3 = await tcConnect(2, A, t3);
        let gone = [s1, s2].map((s) => waitDisconnected(s));
        const res = await post(A, '/tincan/logout', undefined, { Authorization: `Bearer ${u.token}` });
        assert.equal(res.status, 204);
        await Promise.all(gone);
        await tc(k2, 'group/list', {});
        await assert.rejects(tcConnect(4, B, u.token), /unauthorized/, 'the token is revoked on the other node');

        const k2OnA = await tcConnect(2, A, t2);
        gone = [k2, k2OnA].map((s) => waitDisconnected(s));
        assert.equal((await emitAck(k2, 'auth/logout', {})).ok, true);
        await Promise.all(gone);
        await tc(k3, 'group/list', {});
        await assert.rejects(tcConnect(1, A, t2), /unauthorized/);
      });
    });

    describe(`${adapter} adapter: a node SIGKILLed mid-conversation`, { timeout: 60000 }, () => {
      afterEach(closeAll);

      test('survivors drop its sockets from rooms, tell the others once, and stop matching its counsellors', async (t) => {
        const cluster = await startCluster({ adapter, nodes: 3, args: SIGN_IN_ARGS });
        t.after(() => cluster.stop());
        const [A, B, C] = cluster.nodes;
        const [tokenD, tokenP] = [newToken(), newToken()];
        const x = await connect(1, A);
        const y = await connect(4, B);
        const d1 = await connect(2, C, { token: tokenD });
        const d2 = await connect(4, C);
        const pA = await connect(4, A, { token: tokenP });
        const bid = new Map(await Promise.all([x, y, d1, d2, pA].map(async (s) => [s, await bubbleIdOf(s)])));
        const room = await createRoom(y, { roomName: 'before the crash' });
        const { roomId } = room;
        await joinRoom(x, roomId, [y]);
        await joinRoom(d1, roomId, [y, x]);
        await joinRoom(d2, roomId, [y, x, d1]);
        await joinRoom(pA, roomId, [y, x, d1, d2]);
        // The person p also has a socket on the doomed node.
        const pC = await connect(1, C, { token: tokenP });
        assert.deepEqual(await myRooms(pC), [roomId]);
        const member = (s, b = bid.get(s)) => ({ sock: s, bubbleId: b });
        const survivors = [member(x), member(y), member(pA)];
        await assertPresence(x, roomId, [...survivors, member(d1), member(d2), member(pC, bid.get(pA))],
          { what: 'before the kill' });
        const xGets = onceWhere(x, 'add_message', (m) => m.content === 'from the doomed node');
        await addMessage(d1, roomId, 'from the doomed node');
        await xGets;

        // Counsellors only on the doomed node, one signed in and one of the old apps; a user on
        // node 0 is in a private room with one of them.
        const k1 = await signedInCounsellor(cluster, C, 4, 'Kay');
        const k2 = await rootCounsellor(C, 1, 'Kit');
        const u = await connect(4, A);
        const priv = await request(u, 'find_counsellor', {});
        const k = [k1, k2].find((c) => c.ids.includes(priv.counsellorId));
        assert.ok(k, `matched with a counsellor of the doomed node (${priv.counsellorId})`);
        const kBid = await bubbleIdOf(k.sock);
        assert.deepEqual(sorted((await viewRoom(u, priv.roomId)).participants), ids(u, k.sock));

        const seen = new Map([x, y, u].map((s) => [s, collect(s, 'exit_room')]));
        const t0 = Date.now();
        await cluster.kill(2);
        await waitUntil(() => seen.get(x).length >= 2 && seen.get(y).length >= 2 && seen.get(u).length >= 1,
          DEATH_MS, `exit_room about the dead node's people within ${DEATH_MS} ms`);
        const took = Date.now() - t0;
        await sleep(QUIET_MS);
        for (const s of [x, y]) {
          assert.deepEqual(byUser(seen.get(s)), byUser([presence(roomId, d1, bid.get(d1)), presence(roomId, d2, bid.get(d2))]),
            `${s.gen}.x on node ${s === x ? 0 : 1}: one exit_room per person who was only on the dead node ` +
            `(none for p, still on node 0), after ${took} ms`);
        }
        assert.deepEqual([...seen.get(u)], [presence(priv.roomId, k.sock, kBid)], 'the user hears the counsellor leave');

        for (const s of [x, y]) await assertPresence(s, roomId, survivors, { what: 'after the node died' });
        const pv = await viewRoom(u, priv.roomId);
        assert.equal(pv.numUsers, 1);
        assert.deepEqual(pv.participants, [u.sid]);
        await noCounsellorOnline(A);
        await expectError(await connect(2, B), 'find_counsellor', {}, 'counsellor_unavailable');

        // The survivors go on talking across nodes, and a member of the dead node comes back.
        const yGets = onceWhere(y, 'add_message', (m) => m.content === 'still here');
        await addMessage(x, roomId, 'still here');
        await yGets;
        const back = [x, y].map((s) => onceWhere(s, 'join_room', (p) => p.bubbleId === bid.get(d1), 3000, 'join_room of d1 back'));
        const d1again = await connect(1, A, { token: tokenD });
        assert.deepEqual(await myRooms(d1again), [roomId], 'membership outlives the node');
        for (const p of back) assert.deepEqual(await p, presence(roomId, d1again, bid.get(d1)));
        await assertPresence(y, roomId, [...survivors, member(d1again, bid.get(d1))], { what: 'after d1 came back' });
      });
    });

    describe(`${adapter} adapter: the push workers of two nodes`, { timeout: 60000 }, () => {
      const COLLAPSE_MS = 500;
      let fake;
      let dir;
      let cluster;

      before(async () => {
        fake = await fakeFcm();
        const { privateKey } = generateKeyPairSync('rsa', {
          modulusLength: 2048,
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        });
        dir = mkdtempSync(join(tmpdir(), 'bubble-cluster-push-'));
        const file = join(dir, 'service-account.json');
        writeFileSync(file, JSON.stringify({
          type: 'service_account', project_id: PROJECT, private_key_id: 'test-key', private_key: privateKey,
          client_email: `pusher@${PROJECT}.iam.gserviceaccount.com`, client_id: '1', token_uri: `${fake.url}/token`,
        }));
        cluster = await startCluster({
          adapter, nodes: 2,
          args: ['--fcm-service-account', file, '--fcm-endpoint', fake.url, '--push-collapse-ms', String(COLLAPSE_MS)],
        });
      });
      after(async () => {
        await cluster?.stop();
        await fake?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });
      afterEach((t) => {
        closeAll(t);
        assert.deepEqual(fake.problems, [], 'the fake FCM saw no bad request');
      });

      /** `n` members of a new room, alternately on each node, each with a device, now away. */
      async function awayMembers(author, n) {
        const room = await createRoom(author);
        const devices = [];
        for (let i = 0; i < n; i++) {
          const node = cluster.nodes[i % 2];
          const sock = await connect(i % 2 ? 1 : 4, node, { token: newToken() });
          const device = `dev-${i}-${randomBytes(4).toString('hex')}`;
          await request(sock, 'register_push', { pushToken: device, platform: 'android' });
          await joinRoom(sock, room.roomId, [author]);
          const gone = onceWhere(author, 'exit_room', (p) => p.userId === sock.sid);
          closeClient(sock);
          await gone;
          devices.push(device);
        }
        return { room, devices };
      }

      test('every push is sent exactly once although both nodes run the worker', async () => {
        const [A, B] = cluster.nodes;
        const a = await connect(4, A);
        const b = await connect(2, B);
        const { room, devices } = await awayMembers(a, 8);
        await joinRoom(b, room.roomId, [a]);
        const sent = [];
        for (const [i, author] of [a, b, a].entries()) {
          // Each round is due at once for every device: the two workers race for the rows.
          const m = await addMessage(author, room.roomId, `round ${i}`);
          sent.push(String(m.id));
          await waitUntil(() => devices.every((d) => fake.pushed(d).length >= i + 1), COLLAPSE_MS + 5000,
            `round ${i} pushed to every away device`);
        }
        await sleep(600);
        for (const d of devices) {
          assert.deepEqual(fake.pushed(d), sent, `device ${d}: each message pushed once, none twice`);
        }
      });

      test('a push waiting when its node is SIGKILLed is sent once by the other node', async () => {
        const [A] = cluster.nodes;
        const a = await connect(4, A);
        const { room, devices: [device] } = await awayMembers(a, 1);
        const m = await addMessage(a, room.roomId, 'just before the crash');
        // Still inside the collapse window: nothing can have been sent yet.
        await cluster.kill(0);
        assert.deepEqual(fake.pushed(device), [], 'not sent before the kill');
        await waitUntil(() => fake.pushed(device).length >= 1, COLLAPSE_MS + 8000, 'the push, sent by node 1');
        await sleep(600);
        assert.deepEqual(fake.pushed(device), [String(m.id)], 'sent once');
      });
    });
  }
});
