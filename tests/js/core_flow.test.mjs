// The core flow across client generations and transports, CORS and /health.
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, createClient, waitConnected, closeAll, closeClient, once, onceWhere,
  collect, request, createRoom, joinRoom, viewRoom, myRooms, addMessage, bubbleIdOf, health, within,
  waitUntil, newToken, transportOf,
} from './harness.mjs';
import {
  assertKeys, assertRoom, assertMessage, PRESENCE_KEYS, ADD_MESSAGE_KEYS,
} from './shapes.mjs';


/** x creates a room, y joins; both see each other's join, messages, typing and exit. */
async function coreFlow(x, y) {
  const xBid = await bubbleIdOf(x);
  const yBid = await bubbleIdOf(y);
  const room = await createRoom(x, { roomName: `core ${x.gen}.x/${y.gen}.x` });
  assertRoom(room, { createdBy: x.id, createdByBubbleId: xBid, numUsers: 1, participants: [x.id] });

  const xSeesJoin = once(x, 'join_room');
  const joined = await joinRoom(y, room.roomId);
  assertRoom(joined, { roomId: room.roomId, numUsers: 2, userId: y.id, bubbleId: yBid });
  assert.deepEqual([...joined.participants].sort(), [x.id, y.id].sort());
  const j = await xSeesJoin;
  assertKeys(j, PRESENCE_KEYS, `join_room on ${x.gen}.x`);
  assert.deepEqual(j, { roomId: room.roomId, userId: y.id, bubbleId: yBid, user: y.id });

  for (const [from, to, fromBid] of [[x, y, xBid], [y, x, yBid]]) {
    const text = `from ${from.gen}.x to ${to.gen}.x`;
    const got = once(to, 'add_message');
    const echo = await addMessage(from, room.roomId, text);
    const p = await got;
    for (const [payload, sentByMe, who] of [[p, false, `${to.gen}.x receiver`], [echo, true, `${from.gen}.x sender`]]) {
      assertKeys(payload, ADD_MESSAGE_KEYS, `add_message on ${who}`);
      assertMessage(payload, {
        userId: from.id, bubbleId: fromBid, content: text, message: text, user: from.id, sentByMe,
        roomRoomId: room.roomId, roomId: room.roomId, roomName: room.roomName, messageType: 'MESSAGE',
        targetUser: null, targetUserBubbleId: null,
      }, `add_message on ${who}`);
    }
    for (const event of ['typing', 'stop_typing']) {
      const t = once(to, event);
      await request(from, event, { roomId: room.roomId }, { reply: null });
      const tp = await t;
      assertKeys(tp, PRESENCE_KEYS, `${event} on ${to.gen}.x`);
      assert.deepEqual(tp, { roomId: room.roomId, userId: from.id, bubbleId: fromBid, user: from.id });
    }
  }

  const ySeesExit = once(y, 'exit_room');
  const iExit = await request(x, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
  assert.deepEqual(iExit, { roomId: room.roomId, userId: x.id, bubbleId: xBid });
  const e = await ySeesExit;
  assertKeys(e, PRESENCE_KEYS, `exit_room on ${y.gen}.x`);
  assert.deepEqual(e, { roomId: room.roomId, userId: x.id, bubbleId: xBid, user: x.id });
  assert.ok(!(await myRooms(x)).includes(room.roomId), 'the exited room is not in my_rooms');
  assert.ok((await myRooms(y)).includes(room.roomId), 'the other stays in the room');
}

describe('core flow across client generations', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [gx, gy] of [[1, 4], [4, 1], [2, 4], [4, 2], [1, 2], [1, 1], [4, 4]]) {
    test(`${gx}.x creates, ${gy}.x joins: join_room, add_message, typing, exit_room`, async () => {
      await coreFlow(await connect(gx, server), await connect(gy, server));
    });
  }
});

describe('transports', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const gen of [1, 2, 4]) {
    test(`${gen}.x websocket only (no polling handshake)`, async () => {
      const x = await connect(gen, server, { transports: ['websocket'] });
      assert.equal(transportOf(x), 'websocket');
      const y = await connect(4, server, { transports: ['websocket'] });
      await coreFlow(x, y);
      assert.equal(transportOf(x), 'websocket');
    });

    test(`${gen}.x long-polling only`, async () => {
      const x = await connect(gen, server, { transports: ['polling'] });
      const y = await connect(1, server, { transports: ['polling'] });
      await coreFlow(x, y);
      assert.equal(transportOf(x), 'polling');
      assert.equal(transportOf(y), 'polling');
    });

    test(`${gen}.x polling first, then upgrade to websocket`, async () => {
      const x = await connect(gen, server, { transports: ['polling', 'websocket'] });
      const upgraded = transportOf(x) === 'websocket'
        ? Promise.resolve()
        : new Promise((res) => x.io.engine.once('upgrade', res));
      // Traffic during the upgrade must not get lost.
      const y = await connect(4, server);
      const room = await createRoom(y);
      await joinRoom(x, room.roomId, [y]);
      await within(upgraded, 5000, `${gen}.x upgrade to websocket`);
      assert.equal(transportOf(x), 'websocket');
      const got = onceWhere(x, 'add_message', (p) => p.content === 'after upgrade');
      await addMessage(y, room.roomId, 'after upgrade');
      await got;
      await coreFlow(x, y);
    });
  }
});

describe('traffic during the upgrade', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const gen of [1, 2, 4]) {
    test(`${gen}.x: messages both ways while upgrading from polling are neither lost nor reordered`, async () => {
      const token = newToken();
      const y = await connect(4, server, { transports: ['websocket'] });
      const room = await createRoom(y);
      // x is a member already, so it is put into the room on connect.
      const x0 = await connect(4, server, { token });
      await joinRoom(x0, room.roomId, [y]);
      closeClient(x0);
      await once(y, 'exit_room');

      const x = createClient(gen, server, { token, transports: ['polling', 'websocket'] });
      const toX = collect(x, 'add_message');
      const toY = collect(y, 'add_message');
      const firstTransport = new Promise((res) => x.io.engine.once('open', () => res(transportOf(x))));
      await waitConnected(x);
      assert.equal(await firstTransport, 'polling', 'the session opened over polling');
      const n = 30;
      for (let i = 0; i < n; i++) {
        y.emit('add_message', { roomId: room.roomId, message: `down ${i}` });
        x.emit('add_message', { roomId: room.roomId, message: `up ${i}` });
        if (i % 5 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await waitUntil(() => toX.length >= 2 * n && toY.length >= 2 * n, 10000,
        `all messages (x got ${toX.length}, y got ${toY.length})`);
      await waitUntil(() => transportOf(x) === 'websocket', 5000, 'upgrade to websocket');
      const down = Array.from({ length: n }, (_, i) => `down ${i}`);
      const up = Array.from({ length: n }, (_, i) => `up ${i}`);
      for (const [got, who] of [[toX, 'x'], [toY, 'y']]) {
        assert.deepEqual(got.filter((m) => m.content.startsWith('down')).map((m) => m.content), down, `${who}: y's messages in order`);
        assert.deepEqual(got.filter((m) => m.content.startsWith('up')).map((m) => m.content), up, `${who}: x's messages in order`);
      }
      const v = await viewRoom(y, room.roomId);
      assert.equal(v.messages.length, 2 * n);
    });
  }
});

describe('HTTP: CORS and /health', { timeout: 30000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });

  test('GET /health answers 200 {"status":"ok"}', async () => {
    assert.deepEqual(await health(server), { status: 200, body: { status: 'ok' } });
  });

  for (const eio of [3, 4]) {
    test(`polling handshake (EIO=${eio}) echoes the Origin and allows credentials`, async () => {
      const origin = 'http://example.test';
      const res = await fetch(`${server.url}/socket.io/?EIO=${eio}&transport=polling&t=abc`, {
        headers: { Origin: origin },
        signal: AbortSignal.timeout(3000),
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
      const body = await res.text();
      assert.match(body, /"sid"\s*:/, 'an Engine.IO open packet');

      const other = 'https://app.other.example:8443';
      const res2 = await fetch(`${server.url}/socket.io/?EIO=${eio}&transport=polling`, {
        headers: { Origin: other },
        signal: AbortSignal.timeout(3000),
      });
      await res2.text();
      assert.equal(res2.headers.get('access-control-allow-origin'), other, 'all origins allowed by default');
    });
  }

  test('polling POST and GET of a session carry the CORS headers too', async () => {
    const origin = 'http://example.test';
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: origin } });
    const sid = JSON.parse((await res.text()).slice(1)).sid;
    const post = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
      method: 'POST', body: '40', headers: { Origin: origin, 'Content-Type': 'text/plain;charset=UTF-8' },
    });
    assert.equal(await post.text(), 'ok');
    assert.equal(post.headers.get('access-control-allow-origin'), origin);
    assert.equal(post.headers.get('access-control-allow-credentials'), 'true');
    const get = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { headers: { Origin: origin } });
    assert.match(await get.text(), /(^|\u001e)40/);
    assert.equal(get.headers.get('access-control-allow-origin'), origin);
    assert.equal(get.headers.get('access-control-allow-credentials'), 'true');
  });

  test('CORS preflight for a credentialed polling POST', async () => {
    const origin = 'http://example.test';
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=x`, {
      method: 'OPTIONS',
      headers: {
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      },
      signal: AbortSignal.timeout(3000),
    });
    await res.text();
    assert.ok(res.status >= 200 && res.status < 300, `preflight status ${res.status}`);
    assert.equal(res.headers.get('access-control-allow-origin'), origin);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    const methods = (res.headers.get('access-control-allow-methods') || '').toUpperCase();
    assert.ok(methods.includes('POST') || methods === '*', `allowed methods: ${methods}`);
  });
});

describe('CORS with configured origins', { timeout: 30000 }, () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--cors-origins', 'http://allowed.test,https://app.allowed.test'] });
  });
  after(async () => { await server?.stop(); });

  test('an allowed origin is echoed with credentials; another is not allowed, never `*`', async () => {
    for (const origin of ['http://allowed.test', 'https://app.allowed.test']) {
      const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: origin } });
      await res.text();
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    }
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.test' } });
    await res.text();
    const acao = res.headers.get('access-control-allow-origin');
    assert.ok(acao === null || acao !== 'http://evil.test', `evil origin allowed: ${acao}`);
    assert.notEqual(acao, '*');
  });
});
