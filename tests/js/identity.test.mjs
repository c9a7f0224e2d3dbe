// bubbleIds shared by several sockets, and the rejoin of a reconnecting socket.
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, createClient, waitConnected, closeAll, closeClient, once, onceWhere,
  collect, expectNone, request, expectError, createRoom, joinRoom, viewRoom, listRooms, myRooms, addMessage,
  bubbleIdOf, newToken, sleep, waitUntil, within, emitAck,
} from './harness.mjs';
import { assertKeys, PRESENCE_KEYS } from './shapes.mjs';

describe('several sockets sharing one bubble token', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [g1, g2] of [[1, 4], [4, 1], [2, 4]]) {
    test(`${g1}.x and ${g2}.x sockets of one person: one bubbleId, one member, both in the room`, async () => {
      const token = newToken();
      const a1 = await connect(g1, server, { token });
      const bid = await bubbleIdOf(a1);
      const b = await connect(4, server);
      const room = await createRoom(a1, { userLimit: 2 });
      await joinRoom(b, room.roomId, [a1]);

      // The second device is the same person: it is put into the person's rooms, even a full one.
      const a2 = await connect(g2, server, { token });
      assert.equal(await bubbleIdOf(a2), bid, 'same token, same bubbleId');
      await waitUntil(async () => (await myRooms(a2)).length === 1, 3000, 'second socket in the room');
      assert.deepEqual(await myRooms(a2), [room.roomId]);
      let v = await viewRoom(b, room.roomId);
      assert.equal(v.numUsers, 2, 'numUsers counts people, not sockets');
      assert.deepEqual([...v.participants].sort(), [a1.id, a2.id, b.id].sort());
      const again = await joinRoom(a2, room.roomId);
      assert.equal(again.numUsers, 2, 'a join by a socket already in the room changes nothing');

      // Messages from either device reach everyone, with the shared bubbleId.
      const toB = once(b, 'add_message');
      const toA1 = onceWhere(a1, 'add_message', (p) => p.content === 'from a2');
      const mine = await addMessage(a2, room.roomId, 'from a2');
      assert.equal(mine.userId, a2.id);
      assert.equal(mine.bubbleId, bid);
      const seen = await toB;
      assert.equal(seen.userId, a2.id);
      assert.equal(seen.bubbleId, bid);
      assert.equal(seen.sentByMe, false);
      const onA1 = await toA1;
      assert.equal(onA1.id, mine.id, 'the other device of the sender gets the message too');

      // One device leaving the network is not the person leaving.
      const bExits = collect(b, 'exit_room');
      const a1Id = a1.id;
      closeClient(a1);
      await sleep(300);
      bExits.stop();
      assert.deepEqual([...bExits], [], 'no exit_room while another socket of the person is in the room');
      v = await viewRoom(b, room.roomId);
      assert.equal(v.numUsers, 2);
      assert.ok(!v.participants.includes(a1Id), 'a disconnected socket is no participant');

      // exit_room from one device takes every socket of the person out.
      const a3 = await connect(g1, server, { token });
      await waitUntil(async () => (await myRooms(a3)).length === 1, 3000, 'third socket in the room');
      const i2 = once(a2, 'i_exit');
      const i3 = once(a3, 'i_exit');
      const bGets = collect(b, 'exit_room');
      await request(a2, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
      assert.deepEqual(await i2, { roomId: room.roomId, userId: a2.id, bubbleId: bid });
      assert.deepEqual(await i3, { roomId: room.roomId, userId: a3.id, bubbleId: bid });
      await sleep(300);
      bGets.stop();
      assert.equal(bGets.length, 1, 'others get one exit_room for the person');
      assertKeys(bGets[0], PRESENCE_KEYS, 'exit_room');
      assert.deepEqual(bGets[0], { roomId: room.roomId, userId: a2.id, bubbleId: bid, user: a2.id });
      assert.deepEqual(await myRooms(a2), []);
      assert.deepEqual(await myRooms(a3), []);
      v = await viewRoom(b, room.roomId);
      assert.equal(v.numUsers, 1);
      assert.deepEqual(v.participants, [b.id]);
      await expectError(a3, 'add_message', { roomId: room.roomId, message: 'x' }, 'user_not_in_room');

      // No longer a member: a new device is not put back.
      const a4 = await connect(g2, server, { token });
      await sleep(100);
      assert.deepEqual(await myRooms(a4), []);
    });
  }

  test('a new token used by several sockets connecting at once gives them all one bubbleId', async () => {
    for (let round = 0; round < 3; round++) {
      const token = newToken();
      const socks = await Promise.all(Array.from({ length: 8 }, (_, i) => connect(i % 2 ? 1 : 4, server, { token })));
      const ids = await Promise.all(socks.map((s) => bubbleIdOf(s)));
      assert.equal(new Set(ids).size, 1, `one bubbleId for one token: ${ids}`);
    }
  });

  test('two sockets of one person joining a room at once both get in', async () => {
    const token = newToken();
    const a1 = await connect(4, server, { token });
    const a2 = await connect(1, server, { token });
    const b = await connect(4, server);
    for (let i = 0; i < 5; i++) {
      const room = await createRoom(b);
      const [j1, j2] = await Promise.all([
        emitAck(a1, 'join_room', { roomId: room.roomId }),
        emitAck(a2, 'join_room', { roomId: room.roomId }),
      ]);
      assert.equal(j1.error, undefined, `first socket: ${JSON.stringify(j1.error)}`);
      assert.equal(j2.error, undefined, `second socket: ${JSON.stringify(j2.error)}`);
      const v = await viewRoom(b, room.roomId);
      assert.equal(v.numUsers, 2);
      assert.equal(v.participants.length, 3);
    }
  });

  test('a person already in a full room can join it from another socket', async () => {
    const token = newToken();
    const a1 = await connect(4, server, { token });
    const a2 = await connect(1, server, { token }); // connected before the room exists: not in it
    const b = await connect(4, server);
    const room = await createRoom(a1, { userLimit: 2 });
    await joinRoom(b, room.roomId, [a1]);
    assert.deepEqual(await myRooms(a2), []);
    const joined = await joinRoom(a2, room.roomId);
    assert.equal(joined.numUsers, 2, 'the same person does not count twice');
    const v = await viewRoom(b, room.roomId);
    assert.equal(v.numUsers, 2);
    assert.equal(v.participants.length, 3);
    const c = await connect(4, server);
    await expectError(c, 'join_room', { roomId: room.roomId }, 'room_full');
  });

  test('the last socket of a person leaving the network: others get exit_room', async () => {
    const token = newToken();
    const a1 = await connect(1, server, { token });
    const a2 = await connect(4, server, { token });
    const bid = await bubbleIdOf(a1);
    const b = await connect(4, server);
    const room = await createRoom(a1);
    await joinRoom(a2, room.roomId);
    await joinRoom(b, room.roomId, [a1]);
    const bGets = collect(b, 'exit_room');
    closeClient(a1);
    await sleep(200);
    assert.equal(bGets.length, 0);
    const a2Id = a2.id;
    closeClient(a2);
    await waitUntil(() => bGets.length >= 1, 3000, 'exit_room after the last socket left');
    await sleep(200);
    bGets.stop();
    assert.equal(bGets.length, 1);
    assert.deepEqual(bGets[0], { roomId: room.roomId, userId: a2Id, bubbleId: bid, user: a2Id });
    assert.equal((await viewRoom(b, room.roomId)).numUsers, 1);
  });
});

describe('reconnect rejoin', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [gen, transports] of [[1, undefined], [1, ['polling']], [1, ['websocket']], [2, undefined], [4, undefined], [4, ['polling']]]) {
    const how = transports ? transports[0] : 'default transports';
    test(`${gen}.x client (${how}) reconnecting by itself is back in its rooms before its first event`, async () => {
      const token = newToken();
      const a = await connect(gen, server, { token, transports, reconnection: true });
      const bid = await bubbleIdOf(a);
      const b = await connect(4, server);
      const r1 = await createRoom(a);
      const r2 = await createRoom(b);
      await joinRoom(a, r2.roomId, [b]);
      await joinRoom(b, r1.roomId, [a]);
      const oldId = a.id;

      const bEvents = [];
      b.onAny((event, payload) => bEvents.push([event, payload]));
      const aJoins = collect(a, 'join_room');
      const aErrors = collect(a, 'bubble_error');
      const aEcho = onceWhere(a, 'add_message', (p) => p.sentByMe === true, 8000, 'echo after reconnect');
      const reconnected = new Promise((res) => a.once('connect', res));
      // Drop the connection under the client; it reconnects with the same query (token) by itself.
      a.io.engine.close();
      // The app never re-joins: it just keeps sending to its room. This is buffered until reconnected.
      a.emit('add_message', { roomId: r1.roomId, message: 'sent while offline' });
      await within(reconnected, 8000, 'client reconnected');
      const echo = await aEcho;
      assert.notEqual(a.id, oldId, 'a new socket id after reconnecting');
      assert.equal(echo.userId, a.id);
      assert.equal(echo.bubbleId, bid);
      assert.equal(echo.roomRoomId, r1.roomId);
      await waitUntil(() => bEvents.some(([e, p]) => e === 'add_message' && p.content === 'sent while offline'),
        3000, 'b gets the message');
      await sleep(200);

      const ofNew = bEvents.filter(([, p]) => p && p.userId === a.id);
      const joins = ofNew.filter(([e]) => e === 'join_room').map(([, p]) => p);
      assert.deepEqual(joins.map((p) => p.roomId).sort(), [r1.roomId, r2.roomId].sort(),
        'others get join_room for each room the new socket is put back into');
      for (const p of joins) assert.deepEqual(p, { roomId: p.roomId, userId: a.id, bubbleId: bid, user: a.id });
      const firstMsg = ofNew.findIndex(([e]) => e === 'add_message');
      const joinR1 = ofNew.findIndex(([e, p]) => e === 'join_room' && p.roomId === r1.roomId);
      assert.ok(joinR1 >= 0 && joinR1 < firstMsg, 'join_room of the new socket comes before its message');
      const exits = bEvents.filter(([e, p]) => e === 'exit_room' && p.userId === oldId);
      assert.equal(exits.length, 2, 'the old socket exited both rooms');
      assert.deepEqual(aErrors, [], 'no bubble_error: the socket was in the room');
      assert.deepEqual(aJoins, [], 'the reconnected socket itself gets nothing extra');
      assert.deepEqual(await myRooms(a), [r1.roomId, r2.roomId]);
      const v = await viewRoom(b, r1.roomId);
      assert.equal(v.numUsers, 2);
      assert.deepEqual([...v.participants].sort(), [a.id, b.id].sort());
    });
  }

  for (const gen of [1, 4]) {
    test(`${gen}.x: a new socket's very first event, sent before connect completes, runs in the rooms`, async () => {
      const token = newToken();
      const a = await connect(gen, server, { token });
      const b = await connect(4, server);
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      closeClient(a);
      await once(b, 'exit_room');

      const a2 = createClient(gen, server, { token, transports: ['websocket'] });
      const errors = collect(a2, 'bubble_error');
      const echo = onceWhere(a2, 'add_message', (p) => p.sentByMe === true);
      const seen = once(b, 'add_message');
      a2.emit('add_message', { roomId: room.roomId, message: 'first thing' });
      await waitConnected(a2);
      assert.equal((await echo).content, 'first thing');
      assert.equal((await seen).userId, a2.id);
      assert.deepEqual([...errors], []);
    });
  }

  test('members who are offline keep a room open; it closes when the last member exits', async () => {
    const token = newToken();
    const a = await connect(1, server, { token });
    const b = await connect(4, server);
    const room = await createRoom(b);
    await joinRoom(a, room.roomId, [b]);
    closeClient(a); // a stays a member
    await request(b, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
    const c = await connect(4, server);
    let v = await viewRoom(c, room.roomId);
    assert.equal(v.isOpen, true, 'an offline member keeps the room open');
    assert.equal(v.numUsers, 0);
    assert.ok((await listRooms(c)).some((r) => r.roomId === room.roomId), 'and listed');
    const a2 = await connect(4, server, { token });
    await waitUntil(async () => (await myRooms(a2)).length === 1, 3000, 'back in the room');
    await request(a2, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
    v = await viewRoom(c, room.roomId);
    assert.equal(v.isOpen, false, 'closed once the last member exited');
    await expectError(c, 'join_room', { roomId: room.roomId }, 'room_closed');
  });

  test('a socket without a token is not put into anybody\'s rooms', async () => {
    const a = await connect(4, server);
    const room = await createRoom(a);
    const b = await connect(1, server);
    assert.deepEqual(await myRooms(b), []);
    await expectNone(a, 'join_room', 100);
    assert.equal((await viewRoom(b, room.roomId)).numUsers, 1);
  });
});

