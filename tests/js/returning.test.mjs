// A person with several sockets, and a person who comes back: `i_exit` reaches every socket of
// the person who exits, and others hear `join_room` only when the person was absent from the
// room (the spec's `exit_room` and `disconnect` sections).
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, closeClient, once, collect, request, createRoom, joinRoom,
  viewRoom, myRooms, bubbleIdOf, newToken, sleep, waitUntil, transportOf,
} from './harness.mjs';
import { assertKeys, PRESENCE_KEYS } from './shapes.mjs';

/** The window in which an event that must not come would have come. */
const QUIET_MS = 400;

describe('exit_room reaches every socket of the person', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [g1, g2] of [[1, 4], [4, 1], [1, 1], [4, 4]]) {
    test(`${g1}.x exits a room its ${g2}.x socket was never in: both get i_exit, each with its own id`, async () => {
      const token = newToken();
      const a = await connect(g1, server, { token });
      const other = await connect(g2, server, { token }); // connected before the room exists
      const bid = await bubbleIdOf(a);
      assert.equal(await bubbleIdOf(other), bid, 'my_id comes once its rooms are restored');
      const b = await connect(4, server);
      const stranger = await connect(g2, server, { token: newToken() });
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      assert.deepEqual(await myRooms(other), [], 'the other socket is not in the room');

      const otherExit = once(other, 'i_exit');
      const bExits = collect(b, 'exit_room');
      const notMine = [b, stranger].map((s) => collect(s, 'i_exit'));
      const mine = await request(a, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
      assert.deepEqual(mine, { roomId: room.roomId, userId: a.id, bubbleId: bid });
      assert.deepEqual(await otherExit, { roomId: room.roomId, userId: other.id, bubbleId: bid });
      await sleep(QUIET_MS);
      bExits.stop();
      assert.deepEqual([...bExits], [{ roomId: room.roomId, userId: a.id, bubbleId: bid, user: a.id }],
        'others get one exit_room');
      assert.deepEqual(notMine.map((got) => got.length), [0, 0], 'no i_exit for other people');
    });
  }
});

describe('join_room on restore only when the person was absent', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [gen, transports] of [[1, ['websocket']], [1, ['polling']], [4, ['websocket']], [4, ['polling']]]) {
    test(`a second ${gen}.x socket (${transports[0]}) of a present person: put back in the room, nobody told`, async () => {
      const token = newToken();
      const a = await connect(4, server, { token });
      const b = await connect(1, server);
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      const bJoins = collect(b, 'join_room');

      const a2 = await connect(gen, server, { token, transports });
      assert.equal(transportOf(a2), transports[0]);
      await waitUntil(async () => (await myRooms(a2)).length === 1, 3000, 'second socket in the room');
      const v = await viewRoom(b, room.roomId);
      assert.equal(v.numUsers, 2);
      assert.deepEqual([...v.participants].sort(), [a.id, a2.id, b.id].sort());
      await sleep(QUIET_MS);
      bJoins.stop();
      assert.deepEqual([...bJoins], [], 'no join_room: the person never left');

      // The old socket going away (a reload) tells nobody either.
      const bExits = collect(b, 'exit_room');
      closeClient(a);
      await waitUntil(async () => !(await viewRoom(b, room.roomId)).participants.includes(a.id), 3000,
        'the old socket gone');
      await sleep(QUIET_MS);
      bExits.stop();
      assert.deepEqual([...bExits], [], 'no exit_room: the person is still here');
    });
  }

  for (const gen of [1, 4]) {
    test(`a person whose only socket dropped comes back with two ${gen}.x sockets: one join_room per room`, async () => {
      const token = newToken();
      const a = await connect(gen, server, { token });
      const bid = await bubbleIdOf(a);
      const b = await connect(4, server);
      const r1 = await createRoom(a);
      const r2 = await createRoom(a);
      await joinRoom(b, r1.roomId, [a]);
      await joinRoom(b, r2.roomId, [a]);
      const bExits = collect(b, 'exit_room');
      closeClient(a);
      await waitUntil(() => bExits.length === 2, 3000, 'exit_room from both rooms');

      const bJoins = collect(b, 'join_room');
      const [n1, n2] = await Promise.all([connect(gen, server, { token }), connect(gen, server, { token })]);
      for (const s of [n1, n2]) {
        await waitUntil(async () => (await myRooms(s)).length === 2, 3000, 'back in both rooms');
      }
      await sleep(QUIET_MS);
      bJoins.stop();
      const joins = [...bJoins];
      assert.deepEqual(joins.map((p) => p.roomId).sort(), [r1.roomId, r2.roomId].sort(),
        'exactly one join_room per room');
      for (const p of joins) {
        assertKeys(p, PRESENCE_KEYS, 'join_room on restore');
        assert.ok([n1.id, n2.id].includes(p.userId), 'named by one of the new sockets');
        assert.deepEqual(p, { roomId: p.roomId, userId: p.userId, bubbleId: bid, user: p.userId });
      }
      const v = await viewRoom(b, r1.roomId);
      assert.equal(v.numUsers, 2);
      assert.deepEqual([...v.participants].sort(), [n1.id, n2.id, b.id].sort());
    });
  }
});
