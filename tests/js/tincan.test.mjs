// TinCan end to end: accounts over HTTP (node fetch), then every client message of the spec on
// `/tincan` with socket.io-client 4.x (`auth: { token }`) and 2.x, plus a 1.x session
// (`Authorization: Bearer` through `extraHeaders`; 1.x/2.x cannot put a query on a non-root
// namespace).
import { describe, test, before, after, afterEach } from 'node:test';
import { randomBytes } from 'node:crypto';
import sio1 from 'sio1';
import sio2 from 'sio2';
import { io as sio4 } from 'sio4';
import {
  assert, startServer, within, onceWhere, collect, sleep, waitUntil, NO_PAYLOAD, ISO_MS, UUID_V4,
} from './harness.mjs';

const NS = '/tincan';
const TYPING_MS = 400;

// ---------------------------------------------------------------------------------------------
// HTTP

async function post(server, path, body, headers = {}) {
  const init = { method: 'POST', headers: { ...headers }, signal: AbortSignal.timeout(5000) };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(`${server.url}${path}`, init);
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: json, text };
}

const uniqueName = (prefix = 'u') => `${prefix}_${randomBytes(4).toString('hex')}`;
const PASSWORD = 'correct horse battery';

/** Registers and signs in a fresh user: { token, user, expiresAt }. */
async function signUp(server, prefix, displayName) {
  const username = uniqueName(prefix);
  const reg = await post(server, '/tincan/register', { username, password: PASSWORD, displayName });
  assert.equal(reg.status, 201, `register ${username}: ${reg.text}`);
  const login = await post(server, '/tincan/login', { username, password: PASSWORD });
  assert.equal(login.status, 200, `login ${username}: ${login.text}`);
  return login.body;
}

function assertUser(user, what) {
  assert.deepEqual(Object.keys(user).sort(), ['createdAt', 'displayName', 'id', 'username'], `${what}: user keys`);
  assert.match(user.id, UUID_V4);
  assert.match(user.createdAt, ISO_MS);
}

function assertError(res, status, code, field) {
  assert.equal(res.status, status, `status (body ${res.text})`);
  assert.equal(res.body?.code, code, `code (body ${res.text})`);
  assert.equal(typeof res.body.message, 'string');
  assert.ok(res.body.message.length > 0);
  if (field !== undefined) assert.equal(res.body.field, field, `field (body ${res.text})`);
}

// ---------------------------------------------------------------------------------------------
// Sockets

const open = new Set();

function createSocket(gen, server, { token, via = gen === 4 ? 'auth' : 'header', transports } = {}) {
  const url = `${server.url}${NS}`;
  const opts = { forceNew: true, multiplex: false, reconnection: false, timeout: 5000 };
  if (transports) opts.transports = transports;
  if (token !== undefined) {
    if (via === 'auth') opts.auth = { token };
    else if (via === 'query') opts.query = { token };
    else opts.extraHeaders = { Authorization: `Bearer ${token}` };
  }
  const sock = gen === 1 ? sio1(url, opts) : gen === 2 ? sio2(url, opts) : sio4(url, opts);
  sock.gen = gen;
  open.add(sock);
  return sock;
}

/** Resolves with the socket once connected; rejects with the connect error's message. */
function connected(sock, ms = 5000) {
  return new Promise((res, rej) => {
    const done = (f) => { clearTimeout(timer); sock.off('connect', onOk); sock.off('connect_error', onErr); sock.off('error', onErr); f(); };
    const onOk = () => done(() => res(sock));
    const onErr = (e) => done(() => rej(new Error(typeof e === 'string' ? e : e?.message ?? JSON.stringify(e))));
    const timer = setTimeout(() => done(() => rej(new Error('connect timed out'))), ms);
    sock.on('connect', onOk);
    sock.on('connect_error', onErr);
    sock.on('error', onErr);
  });
}

async function connect(gen, server, token, opts = {}) {
  return connected(createSocket(gen, server, { token, ...opts }));
}

function closeAllSockets() {
  for (const s of open) { try { s.close(); } catch { /* gone */ } }
  open.clear();
}

let seq = 0;
const nextRequestId = () => `r${++seq}`;

const SUCCESS = {
  'group/create': 'group/created', 'group/edit': 'group/edited', 'group/list': 'group/list-response',
  'group/view': 'group/view-response', 'group/join': 'group/joined', 'group/leave': 'group/left',
  'group/remove': 'group/removed', 'conversation/create': 'conversation/created',
  'conversation/edit': 'conversation/edited', 'conversation/list': 'conversation/list-response',
  'conversation/remove': 'conversation/removed', 'message/create': 'message/created',
  'message/edit': 'message/edited', 'message/remove': 'message/removed',
  'message/list': 'message/list-response',
};
const FAILURE = {
  'group/create': 'group/create-failed', 'group/edit': 'group/edit-failed', 'group/list': 'group/list-response',
  'group/view': 'group/view-response', 'group/join': 'group/join-failed', 'group/leave': 'group/leave-failed',
  'group/remove': 'group/remove-failed', 'conversation/create': 'conversation/create-failed',
  'conversation/edit': 'conversation/edit-failed', 'conversation/list': 'conversation/list-response',
  'conversation/remove': 'conversation/remove-failed', 'message/create': 'message/create-failed',
  'message/edit': 'message/edit-failed', 'message/remove': 'message/remove-failed',
  'message/list': 'message/list-failed',
};
const isResponse = (name) => name.endsWith('-response');

function emitWithAck(sock, event, payload, ms = 3000) {
  return within(new Promise((res) => {
    const args = [event];
    if (payload !== NO_PAYLOAD) args.push(payload);
    args.push(res);
    sock.emit(...args);
  }), ms, `ack of ${event}`);
}

/** A request that must succeed: returns the success event's payload (checked against the ack). */
async function ok(sock, event, payload = {}) {
  const requestId = nextRequestId();
  const body = { ...payload, requestId };
  const name = SUCCESS[event];
  const reply = onceWhere(sock, name, (p) => p?.requestId === requestId, 3000, `${event} reply`);
  const fails = collect(sock, FAILURE[event]);
  const ack = await emitWithAck(sock, event, body);
  try {
    assert.equal(ack?.ok, true, `${event} ${JSON.stringify(payload)} ack: ${JSON.stringify(ack)}`);
    const got = await reply;
    if (isResponse(name)) assert.equal(got.ok, true, `${name} carries ok: true`);
    assert.deepEqual(ack, { ...got, ok: true }, `${event}: the ack is the reply plus ok`);
    return got;
  } finally {
    fails.stop();
    assert.deepEqual(fails.filter((f) => f?.requestId === requestId && f?.ok !== true), [], `${event} must not fail`);
  }
}

/**
 * A request that must fail with `code`: checks the failure event (to the requester, with the
 * requestId) and the ack `{ ok: false, code, message }`; returns the failure payload.
 */
async function fails(sock, event, payload, code, { field, requestId = typeof payload === 'object' && payload && !Array.isArray(payload) ? nextRequestId() : undefined } = {}) {
  const body = requestId !== undefined && payload !== NO_PAYLOAD ? { ...payload, requestId } : payload;
  const name = FAILURE[event];
  const failed = onceWhere(sock, name, (p) => p?.ok !== true && (requestId === undefined || p?.requestId === requestId), 3000, `${event} failure`);
  const successes = isResponse(name) ? [] : collect(sock, SUCCESS[event]);
  const ack = await emitWithAck(sock, event, body);
  const got = await failed;
  const what = `${event} ${JSON.stringify(payload === NO_PAYLOAD ? '(none)' : payload)?.slice(0, 120)}`;
  assert.equal(got.code, code, `${what}: failure event code (${JSON.stringify(got)})`);
  assert.equal(typeof got.message, 'string', `${what}: message`);
  assert.ok(got.message.length > 0);
  if (requestId !== undefined) assert.equal(got.requestId, requestId, `${what}: requestId echoed`);
  if (isResponse(name)) assert.equal(got.ok, false, `${what}: ${name} with ok: false`);
  else assert.ok(!('ok' in got), `${what}: a -failed event has no ok`);
  assert.equal(ack?.ok, false, `${what}: ack ok`);
  assert.equal(ack.code, code, `${what}: ack code`);
  assert.equal(typeof ack.message, 'string');
  if (field !== undefined) {
    assert.equal(got.field, field, `${what}: field`);
    assert.equal(ack.field, field, `${what}: ack field`);
  }
  await sleep(20);
  successes.stop?.();
  // Others' successes reach this socket too (without our requestId); ours must not.
  const ours = successes.filter((p) => requestId === undefined || p?.requestId === requestId);
  assert.equal(ours.length, 0, `${what}: no success event`);
  return got;
}

/** Asserts that `sock` gets no `event` (optionally: matching `pred`) within `ms`. */
async function none(sock, event, ms = 250, pred = () => true) {
  const got = collect(sock, event);
  await sleep(ms);
  got.stop();
  assert.deepEqual(got.filter(pred), [], `no '${event}' expected`);
}

const next = (sock, event, pred = () => true, ms = 3000) => onceWhere(sock, event, pred, ms, event);

// ---------------------------------------------------------------------------------------------

const GROUP_KEYS = ['createdAt', 'description', 'id', 'memberCount', 'name', 'ownerId', 'updatedAt', 'visibility'];
const CONVERSATION_KEYS = ['createdAt', 'groupId', 'id', 'name', 'ownerId', 'participants', 'updatedAt'];
const MESSAGE_KEYS = ['author', 'authorId', 'content', 'conversationId', 'createdAt', 'editedAt', 'id'];

function assertGroup(g, { role = 'public', ...fields } = {}) {
  const keys = [...GROUP_KEYS];
  if (role === 'member' || role === 'owner') keys.push('members');
  if (role === 'owner') keys.push('pendingRequests');
  assert.deepEqual(Object.keys(g).sort(), keys.sort(), `group keys as ${role}`);
  assert.match(g.id, UUID_V4);
  assert.match(g.createdAt, ISO_MS);
  assert.match(g.updatedAt, ISO_MS);
  for (const [k, v] of Object.entries(fields)) assert.deepEqual(g[k], v, `group.${k}`);
}

const ids = (users) => users.map((u) => u.id).sort();

describe('TinCan accounts over HTTP', { timeout: 60000 }, () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--tincan-login-per-ip', '1000', '--tincan-login-per-user', '1000'] });
  });
  after(async () => { closeAllSockets(); await server?.stop(); });

  test('register: 201 { user }, names stored lower-case, displayName defaults to the username', async () => {
    const name = uniqueName('Reg');
    const res = await post(server, '/tincan/register', { username: `  ${name.toUpperCase()} `, password: PASSWORD, displayName: ' Réa 😀 ' });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(Object.keys(res.body), ['user']);
    assertUser(res.body.user, 'register');
    assert.equal(res.body.user.username, name.toLowerCase());
    assert.equal(res.body.user.displayName, 'Réa 😀');
    assert.ok(!res.text.includes('argon2'), 'no hash in the answer');
    const plain = await post(server, '/tincan/register', { username: uniqueName('p'), password: PASSWORD });
    assert.equal(plain.body.user.displayName, plain.body.user.username);
  });

  test('register: 409 conflict for a taken name (any case), 400 invalid_payload with field', async () => {
    const name = uniqueName('dup');
    assert.equal((await post(server, '/tincan/register', { username: name, password: PASSWORD })).status, 201);
    assertError(await post(server, '/tincan/register', { username: name.toUpperCase(), password: PASSWORD }), 409, 'conflict');
    const bad = [
      [{ username: 'ab', password: PASSWORD }, 'username'],
      [{ username: 'has space', password: PASSWORD }, 'username'],
      [{ username: 'x'.repeat(33), password: PASSWORD }, 'username'],
      [{ username: 42, password: PASSWORD }, 'username'],
      [{ password: PASSWORD }, 'username'],
      [{ username: uniqueName(), password: 'short' }, 'password'],
      [{ username: uniqueName(), password: 'p'.repeat(129) }, 'password'],
      [{ username: uniqueName(), password: 12345678 }, 'password'],
      [{ username: uniqueName() }, 'password'],
      [{ username: uniqueName(), password: PASSWORD, displayName: 7 }, 'displayName'],
      [{ username: uniqueName(), password: PASSWORD, displayName: 'd'.repeat(101) }, 'displayName'],
      [[1, 2], 'body'],
      ['"a string"', 'body'],
      ['{not json', 'body'],
    ];
    for (const [body, field] of bad) {
      assertError(await post(server, '/tincan/register', body), 400, 'invalid_payload', field);
    }
    assertError(await post(server, '/tincan/register', undefined), 400, 'invalid_payload', 'body');
  });

  test('login: 200 { token, expiresAt, user }; 401 the same whether the name exists or not', async () => {
    const name = uniqueName('log');
    const reg = await post(server, '/tincan/register', { username: name, password: PASSWORD });
    const res = await post(server, '/tincan/login', { username: name.toUpperCase(), password: PASSWORD });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['expiresAt', 'token', 'user']);
    assert.match(res.body.token, /^[0-9a-f]{64}$/, '256 random bits');
    assert.deepEqual(res.body.user, reg.body.user);
    const days = (Date.parse(res.body.expiresAt) - Date.now()) / 86400000;
    assert.ok(days > 29.9 && days <= 30, `expires in 30 days (${days})`);
    const again = await post(server, '/tincan/login', { username: name, password: PASSWORD });
    assert.notEqual(again.body.token, res.body.token, 'a fresh token each time');

    const wrong = await post(server, '/tincan/login', { username: name, password: 'wrong password' });
    const unknown = await post(server, '/tincan/login', { username: uniqueName('nobody'), password: 'wrong password' });
    const malformed = await post(server, '/tincan/login', { username: 'NO WAY!', password: 'wrong password' });
    assertError(wrong, 401, 'unauthorized');
    assert.deepEqual(unknown.body, wrong.body, 'same answer for an unknown user');
    assert.deepEqual(malformed.body, wrong.body, 'same answer for a malformed name');
    assertError(await post(server, '/tincan/login', { username: name }), 400, 'invalid_payload', 'password');
    assertError(await post(server, '/tincan/login', { username: 1, password: 'x' }), 400, 'invalid_payload', 'username');
  });

  test('login: an unknown name costs about as much as a wrong password', async () => {
    const name = uniqueName('time');
    await post(server, '/tincan/register', { username: name, password: PASSWORD });
    const time = async (username) => {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await post(server, '/tincan/login', { username, password: 'not the password' });
        best = Math.min(best, performance.now() - t);
      }
      return best;
    };
    const known = await time(name);
    const unknown = await time(uniqueName('ghost'));
    assert.ok(unknown > known / 3 && unknown < known * 3 + 20, `known ${known} ms, unknown ${unknown} ms`);
  });

  test('logout: 204, the token stops working, its sockets are dropped; 401 without a valid token', async () => {
    const a = await signUp(server, 'out');
    const other = (await post(server, '/tincan/login', { username: a.user.username, password: PASSWORD })).body;
    const s1 = await connect(4, server, a.token);
    const s2 = await connect(2, server, a.token);
    const kept = await connect(4, server, other.token);
    const gone = [s1, s2].map((s) => new Promise((res) => s.once('disconnect', res)));
    const res = await post(server, '/tincan/logout', undefined, { Authorization: `Bearer ${a.token}` });
    assert.equal(res.status, 204);
    await within(Promise.all(gone), 3000, 'sockets of the revoked token disconnected');
    await sleep(100);
    assert.ok(kept.connected, 'another token of the same user stays connected');
    await assert.rejects(connect(4, server, a.token), /unauthorized/);
    assertError(await post(server, '/tincan/logout', undefined, { Authorization: `Bearer ${a.token}` }), 401, 'unauthorized');
    assertError(await post(server, '/tincan/logout', undefined), 401, 'unauthorized');
  });
});

describe('TinCan sign-in limits and token lifetime', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer({ args: ['--tincan-token-ttl', '2h'] }); });
  after(async () => { await server?.stop(); });

  test('5 attempts a minute per username, then 429 rate_limited even with the right password', async () => {
    const name = uniqueName('lim');
    await post(server, '/tincan/register', { username: name, password: PASSWORD });
    const first = await post(server, '/tincan/login', { username: name, password: PASSWORD });
    assert.equal(first.status, 200);
    const days = (Date.parse(first.body.expiresAt) - Date.now()) / 3600000;
    assert.ok(days > 1.95 && days <= 2, `--tincan-token-ttl 2h (${days} h)`);
    for (let i = 0; i < 4; i++) {
      assert.equal((await post(server, '/tincan/login', { username: name, password: 'wrong one!' })).status, 401);
    }
    assertError(await post(server, '/tincan/login', { username: name, password: PASSWORD }), 429, 'rate_limited');
  });

  test('10 attempts a minute per address, whatever the names', async () => {
    // The previous test spent 6 of this address's attempts.
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await post(server, '/tincan/login', { username: uniqueName('ip'), password: 'wrong one!' })).status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429]);
  });
});

describe('TinCan on /tincan', { timeout: 300000 }, () => {
  let server;
  before(async () => {
    server = await startServer({
      args: ['--tincan-typing-timeout-ms', String(TYPING_MS), '--tincan-login-per-ip', '100000', '--tincan-login-per-user', '1000'],
    });
  });
  after(async () => { closeAllSockets(); await server?.stop(); });
  afterEach(closeAllSockets);

  /** A signed-up user with a connected socket: { user, token, sock }. */
  async function person(prefix, gen = 4) {
    const { user, token } = await signUp(server, prefix);
    const sock = await connect(gen, server, token);
    return { user, token, sock };
  }

  async function makeGroup(owner, fields = {}) {
    const got = await ok(owner.sock, 'group/create', { name: uniqueName('group'), ...fields });
    return got.group;
  }

  async function makeConversation(owner, groupId, fields = {}) {
    const got = await ok(owner.sock, 'conversation/create', { groupId, name: uniqueName('conv'), ...fields });
    return got.conversation;
  }

  test('connect: auth token (4.x), bearer header (2.x and 4.x), query (4.x); refused otherwise', async () => {
    const { token } = await signUp(server, 'conn');
    await connect(4, server, token, { via: 'auth' });
    await connect(4, server, token, { via: 'query' });
    await connect(4, server, token, { via: 'header', transports: ['polling'] });
    await connect(2, server, token, { via: 'header' });
    await connect(2, server, token, { via: 'header', transports: ['websocket'] });
    await assert.rejects(connect(4, server, undefined), /unauthorized/);
    await assert.rejects(connect(4, server, 'f'.repeat(64)), /unauthorized/);
    await assert.rejects(connect(4, server, 'junk', { via: 'query' }), /unauthorized/);
    await assert.rejects(connect(2, server, 'f'.repeat(64), { via: 'header' }), /unauthorized/);
  });

  test('group/create: owner, members and strangers each get what they may see', async () => {
    const owner = await person('own');
    const member = await person('mem', 2);
    const stranger = await person('str');
    const ownerOther = await connect(4, server, owner.token);
    const toMember = next(member.sock, 'group/created');
    const toOtherSocket = next(ownerOther, 'group/created');
    const quiet = none(stranger.sock, 'group/created', 300);
    const got = await ok(owner.sock, 'group/create', {
      name: '  Knitting 🧶 ', description: 'wool', visibility: 'private', members: [member.user.id, owner.user.id, member.user.id],
    });
    assertGroup(got.group, {
      role: 'owner', name: 'Knitting 🧶', description: 'wool', visibility: 'private', ownerId: owner.user.id, memberCount: 2,
      pendingRequests: [],
    });
    assert.deepEqual(ids(got.group.members), ids([owner.user, member.user]));
    const seen = await toMember;
    assertGroup(seen.group, { role: 'member', id: got.group.id, memberCount: 2 });
    assert.ok(!('requestId' in seen), 'others do not get the requestId');
    assert.deepEqual((await toOtherSocket).group, got.group, "the owner's other socket gets the owner view");
    await quiet;

    const defaults = await makeGroup(owner);
    assertGroup(defaults, { role: 'owner', description: '', visibility: 'public', memberCount: 1 });
    await fails(owner.sock, 'group/create', { name: 'x', members: ['no-such-user'] }, 'invalid_payload', { field: 'members' });
    await fails(owner.sock, 'group/create', { name: '   ' }, 'invalid_payload', { field: 'name' });
    await fails(owner.sock, 'group/create', { name: 'n'.repeat(101) }, 'invalid_payload', { field: 'name' });
    await fails(owner.sock, 'group/create', { name: 'x', visibility: 'secret' }, 'invalid_payload', { field: 'visibility' });
    await fails(owner.sock, 'group/create', { name: 'x', description: 5 }, 'invalid_payload', { field: 'description' });
    await fails(owner.sock, 'group/create', { name: 'x', members: 'abc' }, 'invalid_payload', { field: 'members' });
  });

  test('group/view: public details to anyone with the id, members to members, requests to the owner', async () => {
    const owner = await person('own');
    const member = await person('mem');
    const stranger = await person('str');
    const group = await makeGroup(owner, { visibility: 'private', members: [member.user.id] });
    await ok(stranger.sock, 'group/join', { groupId: group.id });
    const asStranger = (await ok(stranger.sock, 'group/view', { groupId: group.id })).group;
    assertGroup(asStranger, { role: 'public', id: group.id, memberCount: 2, visibility: 'private' });
    const asMember = (await ok(member.sock, 'group/view', { groupId: group.id })).group;
    assertGroup(asMember, { role: 'member' });
    const asOwner = (await ok(owner.sock, 'group/view', { groupId: group.id })).group;
    assertGroup(asOwner, { role: 'owner' });
    assert.deepEqual(asOwner.pendingRequests.map((u) => u.id), [stranger.user.id]);
    assertUser(asOwner.pendingRequests[0], 'pending request');
    await fails(owner.sock, 'group/view', { groupId: '00000000-0000-4000-8000-000000000000' }, 'not_found');
    await fails(owner.sock, 'group/view', {}, 'invalid_payload', { field: 'groupId' });
  });

  test('group/list: public groups and my own, by name then id, with a query and cursor pages', async () => {
    const me = await person('lst');
    const other = await person('oth');
    const tag = randomBytes(3).toString('hex');
    const mine = await makeGroup(me, { name: `${tag} b private mine`, visibility: 'private' });
    const hidden = await makeGroup(other, { name: `${tag} a private theirs`, visibility: 'private' });
    const names = ['c', 'a', 'b', 'a'].map((n) => `${tag} ${n} public`);
    const pub = [];
    for (const name of names) pub.push(await makeGroup(other, { name }));
    const all = [];
    let cursor;
    for (let page = 0; page < 5; page++) {
      const got = await ok(me.sock, 'group/list', { query: tag.toUpperCase(), limit: 2, ...(cursor ? { cursor } : {}) });
      assert.ok(got.groups.length <= 2);
      for (const g of got.groups) assertGroup(g, { role: 'public' });
      all.push(...got.groups);
      cursor = got.nextCursor;
      if (cursor === null) break;
      assert.equal(typeof cursor, 'string');
    }
    assert.equal(cursor, null, 'the last page has nextCursor null');
    const expected = [...pub, mine].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : x.id < y.id ? -1 : 1));
    assert.deepEqual(all.map((g) => g.id), expected.map((g) => g.id), 'every visible group once, by name then id');
    assert.ok(!all.some((g) => g.id === hidden.id), "others' private groups are not listed");
    const theirs = await ok(other.sock, 'group/list', { query: `${tag} a private` });
    assert.deepEqual(theirs.groups.map((g) => g.id), [hidden.id]);
    const noMatch = await ok(me.sock, 'group/list', { query: `${tag}%zzz` });
    assert.deepEqual(noMatch.groups, []);
    assert.equal(noMatch.nextCursor, null);
    const bare = await emitWithAck(me.sock, 'group/list', NO_PAYLOAD);
    assert.equal(bare.ok, true, 'no payload lists with the defaults');
    assert.ok(Array.isArray(bare.groups));
    await fails(me.sock, 'group/list', { cursor: 'nonsense' }, 'invalid_payload', { field: 'cursor' });
    await fails(me.sock, 'group/list', { limit: 201 }, 'invalid_payload', { field: 'limit' });
    await fails(me.sock, 'group/list', { limit: 0 }, 'invalid_payload', { field: 'limit' });
    await fails(me.sock, 'group/list', { query: 5 }, 'invalid_payload', { field: 'query' });
  });

  test('group/join: public at once (joiner and members hear it), private as a request the owner approves', async () => {
    const owner = await person('own');
    const member = await person('mem');
    const joiner = await person('joi', 2);
    const pub = await makeGroup(owner, { members: [member.user.id] });
    const toMember = next(member.sock, 'group/joined');
    const toOwner = next(owner.sock, 'group/joined');
    const got = await ok(joiner.sock, 'group/join', { groupId: pub.id });
    assert.equal(got.status, 'member');
    assert.equal(got.userId, joiner.user.id);
    assertGroup(got.group, { role: 'member', memberCount: 3 });
    assert.equal((await toMember).userId, joiner.user.id);
    assertGroup((await toOwner).group, { role: 'owner', memberCount: 3 });
    await fails(joiner.sock, 'group/join', { groupId: pub.id }, 'already_member');
    await fails(owner.sock, 'group/join', { groupId: pub.id }, 'already_member');

    const priv = await makeGroup(owner, { visibility: 'private', members: [member.user.id] });
    const ownerHears = next(owner.sock, 'group/joined', (p) => p.group.id === priv.id);
    const memberQuiet = none(member.sock, 'group/joined', 300);
    const pending = await ok(joiner.sock, 'group/join', { groupId: priv.id });
    assert.equal(pending.status, 'pending');
    assertGroup(pending.group, { role: 'public', memberCount: 2 });
    const heard = await ownerHears;
    assert.equal(heard.status, 'pending');
    assert.deepEqual(heard.group.pendingRequests.map((u) => u.id), [joiner.user.id]);
    await memberQuiet;
    await fails(joiner.sock, 'group/join', { groupId: priv.id }, 'conflict');
    // Pending is not membership.
    await fails(joiner.sock, 'conversation/list', { groupId: priv.id }, 'forbidden');

    const approved = next(joiner.sock, 'group/edited');
    const edited = await ok(owner.sock, 'group/edit', { groupId: priv.id, addMembers: [joiner.user.id] });
    assert.deepEqual(edited.group.pendingRequests, []);
    assert.equal(edited.group.memberCount, 3);
    assertGroup((await approved).group, { role: 'member', memberCount: 3 });
    await ok(joiner.sock, 'conversation/list', { groupId: priv.id });
    await fails(joiner.sock, 'group/join', { groupId: 'nope' }, 'not_found');
  });

  test('group/edit: owner only; edits reach members; removed members stop hearing the group at once', async () => {
    const owner = await person('own');
    const member = await person('mem');
    const removed = await person('rem', 2);
    const stranger = await person('str');
    const group = await makeGroup(owner, { members: [member.user.id, removed.user.id] });
    const conv = await makeConversation(owner, group.id);
    await fails(member.sock, 'group/edit', { groupId: group.id, name: 'mine now' }, 'forbidden');
    await fails(stranger.sock, 'group/edit', { groupId: group.id, name: 'mine now' }, 'forbidden');
    await fails(owner.sock, 'group/edit', { groupId: 'missing', name: 'x' }, 'not_found');
    await fails(owner.sock, 'group/edit', { groupId: group.id, removeMembers: [owner.user.id] }, 'invalid_payload', { field: 'removeMembers' });
    await fails(owner.sock, 'group/edit', { groupId: group.id, addMembers: ['ghost'] }, 'invalid_payload', { field: 'addMembers' });
    await fails(owner.sock, 'group/edit', { groupId: group.id, addMembers: 'x' }, 'invalid_payload', { field: 'addMembers' });
    await fails(owner.sock, 'group/edit', { groupId: group.id, visibility: 3 }, 'invalid_payload', { field: 'visibility' });

    const memberHears = next(member.sock, 'group/edited');
    const removedHears = next(removed.sock, 'group/edited');
    const got = await ok(owner.sock, 'group/edit', {
      groupId: group.id, name: 'Renamed', description: 'new', visibility: 'private', removeMembers: [removed.user.id],
    });
    assertGroup(got.group, { role: 'owner', name: 'Renamed', description: 'new', visibility: 'private', memberCount: 2 });
    assert.ok(Date.parse(got.group.updatedAt) >= Date.parse(group.updatedAt));
    assertGroup((await memberHears).group, { role: 'member', name: 'Renamed' });
    assertGroup((await removedHears).group, { role: 'public', name: 'Renamed' });

    const quiet = none(removed.sock, 'message/created', 300);
    const memberGets = next(member.sock, 'message/created');
    await ok(owner.sock, 'message/create', { conversationId: conv.id, content: 'after the removal' });
    await memberGets;
    await quiet;
    await fails(removed.sock, 'message/list', { conversationId: conv.id }, 'not_found');
    await fails(removed.sock, 'conversation/list', { groupId: group.id }, 'forbidden');
  });

  test('group/leave: members leave and stop hearing; the owner cannot; strangers are not members', async () => {
    const owner = await person('own');
    const leaver = await person('lea');
    const stranger = await person('str');
    const group = await makeGroup(owner, { members: [leaver.user.id] });
    const conv = await makeConversation(owner, group.id);
    await fails(owner.sock, 'group/leave', { groupId: group.id }, 'owner_cannot_leave');
    await fails(stranger.sock, 'group/leave', { groupId: group.id }, 'not_member');
    await fails(stranger.sock, 'group/leave', { groupId: 'missing' }, 'not_found');
    const leaverOther = await connect(4, server, leaver.token);
    const ownerHears = next(owner.sock, 'group/left');
    const otherHears = next(leaverOther, 'group/left');
    const got = await ok(leaver.sock, 'group/leave', { groupId: group.id });
    assert.deepEqual({ groupId: got.groupId, userId: got.userId }, { groupId: group.id, userId: leaver.user.id });
    assert.deepEqual(await ownerHears, { groupId: group.id, userId: leaver.user.id });
    await otherHears;
    const quiet = [none(leaver.sock, 'message/created', 300), none(leaverOther, 'message/created', 300)];
    await ok(owner.sock, 'message/create', { conversationId: conv.id, content: 'gone?' });
    await Promise.all(quiet);
    await fails(leaver.sock, 'group/leave', { groupId: group.id }, 'not_member');
    const view = await ok(leaver.sock, 'group/view', { groupId: group.id });
    assertGroup(view.group, { role: 'public', memberCount: 1 });
  });

  test('group/remove: owner only; members hear it and lose the group, its conversations and messages', async () => {
    const owner = await person('own');
    const member = await person('mem');
    const group = await makeGroup(owner, { members: [member.user.id] });
    const conv = await makeConversation(owner, group.id);
    await ok(owner.sock, 'message/create', { conversationId: conv.id, content: 'doomed' });
    await fails(member.sock, 'group/remove', { groupId: group.id }, 'forbidden');
    const hears = next(member.sock, 'group/removed');
    const got = await ok(owner.sock, 'group/remove', { groupId: group.id });
    assert.equal(got.groupId, group.id);
    assert.deepEqual(await hears, { groupId: group.id });
    await fails(member.sock, 'group/view', { groupId: group.id }, 'not_found');
    await fails(owner.sock, 'message/list', { conversationId: conv.id }, 'not_found');
    await fails(owner.sock, 'group/remove', { groupId: group.id }, 'not_found');
    const listed = await ok(member.sock, 'group/list', { query: group.name });
    assert.deepEqual(listed.groups, []);
  });

  test('conversations: members only, participants must be members, lists show what each may see', async () => {
    const owner = await person('own');
    const a = await person('aaa');
    const b = await person('bbb', 2);
    const stranger = await person('str');
    const group = await makeGroup(owner, { members: [a.user.id, b.user.id] });
    await fails(stranger.sock, 'conversation/create', { groupId: group.id, name: 'x' }, 'forbidden');
    await fails(a.sock, 'conversation/create', { groupId: 'missing', name: 'x' }, 'not_found');
    await fails(a.sock, 'conversation/create', { groupId: group.id, name: 'x', participants: [stranger.user.id] }, 'invalid_payload', { field: 'participants' });
    await fails(a.sock, 'conversation/create', { groupId: group.id, name: 'x', participants: 'all' }, 'invalid_payload', { field: 'participants' });
    await fails(a.sock, 'conversation/create', { groupId: group.id }, 'invalid_payload', { field: 'name' });

    const everyoneHears = [next(owner.sock, 'conversation/created'), next(b.sock, 'conversation/created')];
    const open = (await ok(a.sock, 'conversation/create', { groupId: group.id, name: 'All of us', participants: null })).conversation;
    assert.deepEqual(Object.keys(open).sort(), CONVERSATION_KEYS.sort());
    assert.equal(open.participants, null);
    assert.equal(open.ownerId, a.user.id);
    assert.equal(open.groupId, group.id);
    for (const p of everyoneHears) assert.deepEqual((await p).conversation, open);

    // A private conversation of a: b does not hear of it; the group owner does.
    const bQuiet = none(b.sock, 'conversation/created', 300);
    const ownerHears = next(owner.sock, 'conversation/created');
    const priv = (await ok(a.sock, 'conversation/create', { groupId: group.id, name: 'Just me', participants: [] })).conversation;
    assert.deepEqual(priv.participants, [a.user.id], 'the creator always takes part');
    assert.equal((await ownerHears).conversation.id, priv.id);
    await bQuiet;

    const listOf = async (who) => (await ok(who.sock, 'conversation/list', { groupId: group.id })).conversations.map((c) => c.id);
    assert.deepEqual(await listOf(a), [open.id, priv.id]);
    assert.deepEqual(await listOf(owner), [open.id, priv.id]);
    assert.deepEqual(await listOf(b), [open.id]);
    const listed = await ok(b.sock, 'conversation/list', { groupId: group.id });
    assert.equal(listed.groupId, group.id);
    await fails(stranger.sock, 'conversation/list', { groupId: group.id }, 'forbidden');
    await fails(b.sock, 'conversation/list', { groupId: 'missing' }, 'not_found');
    await fails(b.sock, 'message/create', { conversationId: priv.id, content: 'let me in' }, 'not_found');
    await fails(b.sock, 'conversation/edit', { conversationId: priv.id, name: 'x' }, 'not_found');
  });

  test('conversation/edit: owner only; participants changes move sockets in and out at once', async () => {
    const owner = await person('own');
    const a = await person('aaa');
    const b = await person('bbb', 2);
    const group = await makeGroup(owner, { members: [a.user.id, b.user.id] });
    const conv = await makeConversation(a, group.id, { participants: [a.user.id] });
    await fails(owner.sock, 'conversation/edit', { conversationId: conv.id, name: 'mine' }, 'forbidden');
    await fails(a.sock, 'conversation/edit', { conversationId: conv.id, participants: ['ghost'] }, 'invalid_payload', { field: 'participants' });
    await fails(a.sock, 'conversation/edit', { conversationId: conv.id, name: '' }, 'invalid_payload', { field: 'name' });

    const bJoins = next(b.sock, 'conversation/edited');
    const added = (await ok(a.sock, 'conversation/edit', { conversationId: conv.id, name: 'Two', participants: [b.user.id] })).conversation;
    assert.deepEqual(added.participants, [a.user.id, b.user.id].sort());
    assert.equal(added.name, 'Two');
    assert.deepEqual((await bJoins).conversation, added);
    const bGets = next(b.sock, 'message/created');
    await ok(a.sock, 'message/create', { conversationId: conv.id, content: 'hello b' });
    assert.equal((await bGets).message.content, 'hello b');

    const bHearsLast = next(b.sock, 'conversation/edited');
    const back = (await ok(a.sock, 'conversation/edit', { conversationId: conv.id, participants: [a.user.id] })).conversation;
    assert.deepEqual(back.participants, [a.user.id]);
    assert.deepEqual((await bHearsLast).conversation.participants, [a.user.id], 'the one removed hears it');
    const quiet = none(b.sock, 'message/created', 300);
    await ok(a.sock, 'message/create', { conversationId: conv.id, content: 'not for b' });
    await quiet;

    const bOpens = next(b.sock, 'conversation/edited');
    const opened = (await ok(a.sock, 'conversation/edit', { conversationId: conv.id, participants: null })).conversation;
    assert.equal(opened.participants, null);
    await bOpens;
    const bAgain = next(b.sock, 'message/created');
    await ok(a.sock, 'message/create', { conversationId: conv.id, content: 'everyone' });
    await bAgain;
  });

  test('conversation/remove: its owner or the group owner; everyone who saw it hears it', async () => {
    const owner = await person('own');
    const a = await person('aaa');
    const b = await person('bbb');
    const group = await makeGroup(owner, { members: [a.user.id, b.user.id] });
    const c1 = await makeConversation(a, group.id);
    const c2 = await makeConversation(a, group.id);
    await fails(b.sock, 'conversation/remove', { conversationId: c1.id }, 'forbidden');
    const bHears = next(b.sock, 'conversation/removed');
    const got = await ok(a.sock, 'conversation/remove', { conversationId: c1.id });
    assert.deepEqual({ conversationId: got.conversationId, groupId: got.groupId }, { conversationId: c1.id, groupId: group.id });
    assert.deepEqual(await bHears, { conversationId: c1.id, groupId: group.id });
    const aHears = next(a.sock, 'conversation/removed', (p) => p.conversationId === c2.id);
    await ok(owner.sock, 'conversation/remove', { conversationId: c2.id });
    await aHears;
    await fails(a.sock, 'conversation/remove', { conversationId: c2.id }, 'not_found');
    assert.deepEqual((await ok(a.sock, 'conversation/list', { groupId: group.id })).conversations, []);
  });

  test('messages: create, edit, remove, list with tombstones, pages and authorisation', async () => {
    const owner = await person('own');
    const author = await person('aut');
    const reader = await person('rea', 2);
    const stranger = await person('str');
    const group = await makeGroup(owner, { members: [author.user.id, reader.user.id] });
    const conv = await makeConversation(owner, group.id);
    const authorOther = await connect(4, server, author.token);

    const readerGets = next(reader.sock, 'message/created');
    const otherGets = next(authorOther, 'message/created');
    const created = (await ok(author.sock, 'message/create', { conversationId: conv.id, content: ' héllo 😀 ', clientId: 'c-1' })).message;
    assert.deepEqual(Object.keys(created).sort(), [...MESSAGE_KEYS, 'clientId'].sort());
    assert.equal(created.content, ' héllo 😀 ');
    assert.equal(created.clientId, 'c-1');
    assert.equal(created.authorId, author.user.id);
    assert.deepEqual(created.author, { id: author.user.id, username: author.user.username, displayName: author.user.displayName });
    assert.equal(created.editedAt, null);
    assert.equal(created.conversationId, conv.id);
    assert.match(created.createdAt, ISO_MS);
    assert.deepEqual((await readerGets).message, created);
    assert.deepEqual((await otherGets).message, created, "the author's other sockets get it too");

    await fails(author.sock, 'message/create', { conversationId: conv.id, content: '' }, 'invalid_payload', { field: 'content' });
    await fails(author.sock, 'message/create', { conversationId: conv.id, content: '  ' }, 'invalid_payload', { field: 'content' });
    await fails(author.sock, 'message/create', { conversationId: conv.id, content: 'x'.repeat(4001) }, 'invalid_payload', { field: 'content' });
    await fails(author.sock, 'message/create', { conversationId: conv.id, content: 5 }, 'invalid_payload', { field: 'content' });
    await fails(author.sock, 'message/create', { conversationId: conv.id, content: 'x', clientId: 7 }, 'invalid_payload', { field: 'clientId' });
    await fails(stranger.sock, 'message/create', { conversationId: conv.id, content: 'hi' }, 'not_found');
    const longest = (await ok(author.sock, 'message/create', { conversationId: conv.id, content: '😀'.repeat(4000) })).message;
    assert.equal([...longest.content].length, 4000);

    await fails(reader.sock, 'message/edit', { messageId: created.id, content: 'not mine' }, 'forbidden');
    await fails(owner.sock, 'message/edit', { messageId: created.id, content: 'not mine' }, 'forbidden');
    await fails(stranger.sock, 'message/edit', { messageId: created.id, content: 'x' }, 'not_found');
    const readerSeesEdit = next(reader.sock, 'message/edited');
    const edited = (await ok(author.sock, 'message/edit', { messageId: created.id, content: 'edited' })).message;
    assert.equal(edited.content, 'edited');
    assert.match(edited.editedAt, ISO_MS);
    assert.equal(edited.createdAt, created.createdAt);
    assert.deepEqual((await readerSeesEdit).message, edited);

    await fails(reader.sock, 'message/remove', { messageId: created.id }, 'forbidden');
    await fails(stranger.sock, 'message/remove', { messageId: created.id }, 'not_found');
    const readerSeesRemoval = next(reader.sock, 'message/removed');
    const removed = await ok(owner.sock, 'message/remove', { messageId: longest.id });
    assert.deepEqual({ messageId: removed.messageId, conversationId: removed.conversationId }, { messageId: longest.id, conversationId: conv.id });
    assert.deepEqual(await readerSeesRemoval, { messageId: longest.id, conversationId: conv.id });
    await fails(author.sock, 'message/remove', { messageId: longest.id }, 'not_found');
    await fails(author.sock, 'message/edit', { messageId: longest.id, content: 'back' }, 'not_found');
    await ok(author.sock, 'message/remove', { messageId: created.id });

    const sent = [];
    for (let i = 0; i < 5; i++) sent.push((await ok(author.sock, 'message/create', { conversationId: conv.id, content: `m${i}` })).message);
    const first = await ok(reader.sock, 'message/list', { conversationId: conv.id, limit: 3 });
    assert.equal(first.conversationId, conv.id);
    assert.deepEqual(first.messages.map((m) => m.content), ['m4', 'm3', 'm2']);
    assert.equal(first.hasMore, true);
    for (const m of first.messages) assert.deepEqual(Object.keys(m).sort(), MESSAGE_KEYS.sort());
    const rest = await ok(reader.sock, 'message/list', { conversationId: conv.id, before: first.messages[2].id, limit: 3 });
    assert.deepEqual(rest.messages.map((m) => m.content), ['m1', 'm0'], 'tombstones are left out');
    assert.equal(rest.hasMore, false);
    const fromTombstone = await ok(reader.sock, 'message/list', { conversationId: conv.id, before: longest.id });
    assert.deepEqual(fromTombstone.messages, [], 'a removed message still works as a cursor');
    const all = await ok(reader.sock, 'message/list', { conversationId: conv.id });
    assert.equal(all.messages.length, 5);
    await fails(stranger.sock, 'message/list', { conversationId: conv.id }, 'not_found');
    await fails(reader.sock, 'message/list', { conversationId: conv.id, before: 'nope' }, 'invalid_payload', { field: 'before' });
    await fails(reader.sock, 'message/list', { conversationId: conv.id, limit: 'ten' }, 'invalid_payload', { field: 'limit' });
  });

  test('events of one socket take effect in the order sent', async () => {
    const owner = await person('ord', 2);
    const group = await makeGroup(owner);
    const conv = await makeConversation(owner, group.id);
    const acks = [];
    for (let i = 0; i < 30; i++) acks.push(emitWithAck(owner.sock, 'message/create', { conversationId: conv.id, content: `n${i}` }));
    const got = await Promise.all(acks);
    assert.ok(got.every((a) => a.ok === true));
    const listed = await ok(owner.sock, 'message/list', { conversationId: conv.id });
    assert.deepEqual(listed.messages.map((m) => m.content).reverse(), Array.from({ length: 30 }, (_, i) => `n${i}`));
  });

  test('typing: relayed to the others who see the conversation, ended by the server after the timeout', async () => {
    const owner = await person('own');
    const a = await person('typ');
    const outsider = await person('out');
    const group = await makeGroup(owner, { members: [a.user.id, outsider.user.id] });
    const open = await makeConversation(owner, group.id);
    const priv = await makeConversation(owner, group.id, { participants: [a.user.id] });
    const aOther = await connect(4, server, a.token);

    const ownerHears = next(owner.sock, 'conversation/type-start');
    const ownQuiet = none(aOther, 'conversation/type-start', 300);
    const ack = await emitWithAck(a.sock, 'conversation/type-start', { conversationId: open.id, requestId: 't1' });
    assert.deepEqual(ack, { ok: true, requestId: 't1' });
    assert.deepEqual(await ownerHears, { conversationId: open.id, userId: a.user.id, username: a.user.username });
    await ownQuiet;
    const endHeard = next(owner.sock, 'conversation/type-end');
    await emitWithAck(a.sock, 'conversation/type-end', { conversationId: open.id });
    assert.deepEqual(await endHeard, { conversationId: open.id, userId: a.user.id, username: a.user.username });
    // A type-end cancels the timer: no second type-end.
    await none(owner.sock, 'conversation/type-end', TYPING_MS + 300);

    // Only those who see a private conversation hear its typing.
    const outsiderQuiet = none(outsider.sock, 'conversation/type-start', 300);
    const ownerHearsPrivate = next(owner.sock, 'conversation/type-start');
    await emitWithAck(a.sock, 'conversation/type-start', { conversationId: priv.id });
    await ownerHearsPrivate;
    await outsiderQuiet;

    // The server ends typing by itself; each type-start pushes that back.
    const t0 = Date.now();
    const ends = collect(owner.sock, 'conversation/type-end');
    await emitWithAck(a.sock, 'conversation/type-start', { conversationId: open.id });
    await sleep(TYPING_MS / 2);
    await emitWithAck(a.sock, 'conversation/type-start', { conversationId: open.id });
    await waitUntil(() => ends.some((e) => e.conversationId === open.id), TYPING_MS * 4, 'server type-end');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= TYPING_MS * 1.4, `type-end came after the last type-start's timeout (${elapsed} ms)`);
    await sleep(TYPING_MS);
    ends.stop();
    assert.equal(ends.filter((e) => e.conversationId === open.id).length, 1, 'one type-end');
    assert.deepEqual(ends.find((e) => e.conversationId === open.id), { conversationId: open.id, userId: a.user.id, username: a.user.username });

    // Not allowed: silently ignored (only the ack says why), and nothing stored.
    const stranger = await person('str');
    const nobody = none(owner.sock, 'conversation/type-start', 300);
    const refused = await emitWithAck(stranger.sock, 'conversation/type-start', { conversationId: open.id });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 'not_found');
    const bad = await emitWithAck(a.sock, 'conversation/type-start', { conversationId: 3 });
    assert.deepEqual([bad.ok, bad.code, bad.field], [false, 'invalid_payload', 'conversationId']);
    await nobody;
    assert.deepEqual((await ok(owner.sock, 'message/list', { conversationId: open.id })).messages, []);
  });

  test('bad payloads: nothing, null, a string, an array, wrong field types → invalid_payload with field', async () => {
    const owner = await person('bad');
    const group = await makeGroup(owner);
    const conv = await makeConversation(owner, group.id);
    const required = {
      'group/create': 'name', 'group/edit': 'groupId', 'group/view': 'groupId', 'group/join': 'groupId',
      'group/leave': 'groupId', 'group/remove': 'groupId', 'conversation/create': 'groupId',
      'conversation/edit': 'conversationId', 'conversation/list': 'groupId', 'conversation/remove': 'conversationId',
      'message/create': 'conversationId', 'message/edit': 'messageId', 'message/remove': 'messageId',
      'message/list': 'conversationId',
    };
    for (const [event, field] of Object.entries(required)) {
      await fails(owner.sock, event, NO_PAYLOAD, 'invalid_payload', { field, requestId: undefined });
      await fails(owner.sock, event, null, 'invalid_payload', { field, requestId: undefined });
      await fails(owner.sock, event, {}, 'invalid_payload', { field });
      await fails(owner.sock, event, { [field]: 12 }, 'invalid_payload', { field });
      await fails(owner.sock, event, { [field]: ['x'] }, 'invalid_payload', { field });
      await fails(owner.sock, event, 'a string', 'invalid_payload', { field: 'payload', requestId: undefined });
      await fails(owner.sock, event, [1, 2], 'invalid_payload', { field: 'payload', requestId: undefined });
    }
    await fails(owner.sock, 'group/list', 'a string', 'invalid_payload', { field: 'payload', requestId: undefined });
    const badId = next(owner.sock, 'group/list-response', (p) => p.ok === false);
    const badIdAck = await emitWithAck(owner.sock, 'group/list', { requestId: 5 });
    assert.deepEqual([badIdAck.ok, badIdAck.code, badIdAck.field], [false, 'invalid_payload', 'requestId']);
    assert.equal((await badId).field, 'requestId');
    await fails(owner.sock, 'group/edit', { groupId: group.id, name: 5 }, 'invalid_payload', { field: 'name' });
    await fails(owner.sock, 'group/edit', { groupId: group.id, removeMembers: [1] }, 'invalid_payload', { field: 'removeMembers' });
    await fails(owner.sock, 'conversation/edit', { conversationId: conv.id, participants: {} }, 'invalid_payload', { field: 'participants' });
    await fails(owner.sock, 'message/edit', { messageId: 'm', content: null }, 'invalid_payload', { field: 'content' });
    // The server survives all of it.
    await ok(owner.sock, 'group/view', { groupId: group.id });
  });

  test('auth/logout on the socket: ack, then every socket of that token is dropped', async () => {
    const { user, token } = await signUp(server, 'bye');
    const other = (await post(server, '/tincan/login', { username: user.username, password: PASSWORD })).body.token;
    const s1 = await connect(4, server, token);
    const s2 = await connect(2, server, token);
    const kept = await connect(4, server, other);
    const gone = [s1, s2].map((s) => new Promise((res) => s.once('disconnect', res)));
    const ack = await emitWithAck(s1, 'auth/logout', { requestId: 'bye' });
    assert.deepEqual(ack, { ok: true, requestId: 'bye' });
    await within(Promise.all(gone), 3000, 'sockets of the token dropped');
    await sleep(100);
    assert.ok(kept.connected);
    await assert.rejects(connect(4, server, token), /unauthorized/);
    assertError(await post(server, '/tincan/logout', undefined, { Authorization: `Bearer ${token}` }), 401, 'unauthorized');
    const ack2 = await emitWithAck(kept, 'auth/logout', NO_PAYLOAD);
    assert.equal(ack2.ok, true, 'no payload is fine for auth/logout');
    const third = (await post(server, '/tincan/login', { username: user.username, password: PASSWORD })).body.token;
    const s3 = await connect(4, server, third);
    const s3gone = new Promise((res) => s3.once('disconnect', res));
    assert.equal((await emitWithAck(s3, 'auth/logout', 'junk')).ok, true, 'a malformed payload still signs out');
    await within(s3gone, 3000, 'signed out despite the payload');
  });

  test('socket.io-client 1.x and 2.x over polling and websocket: a whole session with non-ASCII text', async () => {
    for (const [gen, transports] of [[1, ['polling']], [1, ['websocket']], [2, ['polling']], [2, ['websocket']]]) {
      const { token } = await signUp(server, 'old');
      const sock = await connect(gen, server, token, { transports });
      const peer = await person('new');
      const group = (await ok(sock, 'group/create', { name: 'Älte Sökets 😀', members: [peer.user.id] })).group;
      assert.equal(group.name, 'Älte Sökets 😀');
      const conv = (await ok(sock, 'conversation/create', { groupId: group.id, name: 'ünïcode' })).conversation;
      const peerGets = next(peer.sock, 'message/created');
      const msg = (await ok(sock, 'message/create', { conversationId: conv.id, content: 'naïve café 中文 😀' })).message;
      assert.equal(msg.content, 'naïve café 中文 😀');
      assert.equal((await peerGets).message.content, 'naïve café 中文 😀');
      const oldGets = next(sock, 'message/created');
      await ok(peer.sock, 'message/create', { conversationId: conv.id, content: 'ça va 👍' });
      assert.equal((await oldGets).message.content, 'ça va 👍');
    }
  });
});

describe('TinCan typing with the default timeout', { timeout: 30000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { closeAllSockets(); await server?.stop(); });

  test('the server sends type-end 10 s after the last type-start', async () => {
    const a = await signUp(server, 'ten');
    const b = await signUp(server, 'ten');
    const sa = await connect(4, server, a.token);
    const sb = await connect(4, server, b.token);
    const group = (await ok(sa, 'group/create', { name: 'ten', members: [b.user.id] })).group;
    const conv = (await ok(sa, 'conversation/create', { groupId: group.id, name: 'c' })).conversation;
    const t0 = Date.now();
    await emitWithAck(sb, 'conversation/type-start', { conversationId: conv.id });
    const end = await next(sa, 'conversation/type-end', () => true, 13000);
    const elapsed = Date.now() - t0;
    assert.deepEqual(end, { conversationId: conv.id, userId: b.user.id, username: b.user.username });
    assert.ok(elapsed >= 9900 && elapsed < 12000, `after about 10 s (${elapsed} ms)`);
  });
});
