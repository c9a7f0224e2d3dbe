// Counsellors of the old apps on `/`: counsellor_online, find_counsellor, list_issues, PRIVATE rooms.
// (Signed-in counsellors on `/counsellor` are in signed_in_counsellor.test.mjs.)
import { describe, test, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, closeClient, once, request, expectError, joinRoom,
  viewRoom, listRooms, myRooms, addMessage, bubbleIdOf, newToken, sleep,
} from './harness.mjs';
import { assertRoom, assertHasKeys, assertKeys, PRESENCE_KEYS } from './shapes.mjs';

const ISSUE_KEYS = ['id', 'issueType', 'userId', 'bubbleId', 'counsellorId', 'roomId', 'reason', 'createdAt', 'updatedAt'];

async function withServer(t) {
  const server = await startServer();
  t.after(() => server.stop());
  return server;
}

describe('counsellors of the old apps on /', { timeout: 60000 }, () => {
  afterEach(closeAll);

  for (const [ug, cg] of [[1, 4], [4, 1]]) {
    test(`${ug}.x user, nobody online: counsellor_unavailable and a USER_MISSED issue`, async (t) => {
      const server = await withServer(t);
      const u = await connect(ug, server);
      const bid = await bubbleIdOf(u);
      await expectError(u, 'find_counsellor', {}, 'counsellor_unavailable');
      await expectError(u, 'find_counsellor', null, 'counsellor_unavailable', { ack: false });
      const issues = await request(u, 'list_issues', {});
      const missed = issues.filter((i) => i.issueType === 'USER_MISSED');
      assert.equal(missed.length, 2, `two USER_MISSED issues in ${JSON.stringify(issues)}`);
      assertHasKeys(missed[0], ISSUE_KEYS, 'issue');
      assert.equal(missed[0].userId, u.id);
      assert.equal(missed[0].bubbleId, bid);
      assert.deepEqual(await myRooms(u), [], 'no room was created');
    });

    test(`${ug}.x user matched with a ${cg}.x counsellor in a PRIVATE room`, async (t) => {
      const server = await withServer(t);
      const c = await connect(cg, server);
      const counsellorId = `counsellor-${newToken()}`;
      const online = await request(c, 'counsellor_online', { counsellorId, counsellorName: 'Dr Kim' });
      assert.deepEqual(online, {});
      const u = await connect(ug, server);
      const bid = await bubbleIdOf(u);

      const toCounsellor = once(c, 'find_counsellor');
      const mine = await request(u, 'find_counsellor', {});
      assertRoom(mine, {
        roomType: 'PRIVATE', roomName: 'Chat with counsellor', userLimit: 2, numUsers: 2, isOpen: true,
        counsellorName: 'Dr Kim',
      }, 'find_counsellor to the user');
      assert.ok([counsellorId, c.id].includes(mine.counsellorId), `counsellorId ${mine.counsellorId}`);
      const theirs = await toCounsellor;
      assert.deepEqual(theirs, { ...mine, userId: u.id, bubbleId: bid }, 'the counsellor gets the same plus who asked');

      const roomId = mine.roomId;
      assert.ok((await myRooms(u)).includes(roomId));
      assert.ok((await myRooms(c)).includes(roomId));
      const v = await viewRoom(u, roomId);
      assert.deepEqual([...v.participants].sort(), [u.id, c.id].sort());

      // Both are in the room.
      const cGets = once(c, 'add_message');
      await addMessage(u, roomId, 'I need to talk');
      assert.equal((await cGets).content, 'I need to talk');
      const uGets = once(u, 'add_message');
      await addMessage(c, roomId, 'I am here');
      assert.equal((await uGets).userId, c.id);
      const uTyping = once(u, 'typing');
      await request(c, 'typing', { roomId }, { reply: null });
      assertKeys(await uTyping, PRESENCE_KEYS, 'typing');

      // Outsiders: not listed, not viewable, always full.
      const outsider = await connect(4, server);
      assert.ok(!(await listRooms(outsider)).some((r) => r.roomId === roomId), 'PRIVATE rooms are never listed');
      assert.ok(!(await listRooms(u)).some((r) => r.roomId === roomId), 'not even to its members');
      await expectError(outsider, 'view_room', { roomId }, 'user_not_in_room');
      await expectError(outsider, 'join_room', { roomId }, 'room_full');
      const cExit = once(u, 'exit_room');
      await request(c, 'exit_room', { roomId }, { reply: 'i_exit' });
      assert.equal((await cExit).userId, c.id);
      await expectError(outsider, 'join_room', { roomId }, 'room_full', { ack: false });

      // The request is an issue of that counsellor.
      const issues = await request(c, 'list_issues', { counsellorId });
      const requested = issues.filter((i) => i.issueType === 'USER_REQUESTED');
      assert.equal(requested.length, 1, `one USER_REQUESTED issue in ${JSON.stringify(issues)}`);
      assertHasKeys(requested[0], ISSUE_KEYS, 'issue');
      assert.equal(requested[0].roomId, roomId);
      assert.equal(requested[0].userId, u.id);
      assert.equal(requested[0].bubbleId, bid);
      // Another counsellor's list holds no USER_REQUESTED issue of this one.
      const others = await request(outsider, 'list_issues', { counsellorId: `someone-else-${newToken()}` });
      assert.ok(Array.isArray(others));
      assert.equal(others.filter((i) => i.issueType === 'USER_REQUESTED' && i.roomId === roomId).length, 0,
        'USER_REQUESTED issues are listed only for their counsellor');
    });
  }

  test('the seed\'s counsellor_online {userId, newName}; going offline by disconnecting', async (t) => {
    const server = await withServer(t);
    const c = await connect(1, server);
    assert.deepEqual(await request(c, 'counsellor_online', { userId: 'seed-counsellor', newName: 'Sam' }), {});
    const u = await connect(4, server);
    const got = await request(u, 'find_counsellor', {});
    assert.equal(got.counsellorName, 'Sam');
    assert.ok(['seed-counsellor', c.id].includes(got.counsellorId), `counsellorId ${got.counsellorId}`);
    closeClient(c);
    await sleep(300);
    const u2 = await connect(4, server);
    await expectError(u2, 'find_counsellor', {}, 'counsellor_unavailable');
  });

  test('the counsellor with the fewest open counsellor rooms is chosen', async (t) => {
    const server = await withServer(t);
    const c1 = await connect(4, server);
    const c2 = await connect(1, server);
    await request(c1, 'counsellor_online', { counsellorId: 'one', counsellorName: 'One' });
    await request(c2, 'counsellor_online', { counsellorId: 'two', counsellorName: 'Two' });
    const names = [];
    for (let i = 0; i < 4; i++) {
      const u = await connect(i % 2 ? 1 : 4, server);
      names.push((await request(u, 'find_counsellor', {})).counsellorName);
    }
    assert.deepEqual([...names.slice(0, 2)].sort(), ['One', 'Two'], `first two requests spread: ${names}`);
    assert.deepEqual([...names.slice(2, 4)].sort(), ['One', 'Two'], `next two requests spread: ${names}`);
  });

  test('a member of a PRIVATE room is put back into it on reconnect', async (t) => {
    const server = await withServer(t);
    const c = await connect(4, server);
    await request(c, 'counsellor_online', { counsellorId: 'back', counsellorName: 'Back' });
    const token = newToken();
    const u = await connect(1, server, { token });
    const room = await request(u, 'find_counsellor', {});
    closeClient(u);
    await once(c, 'exit_room');
    const seen = once(c, 'join_room');
    const u2 = await connect(1, server, { token });
    assert.equal((await seen).userId, u2.id);
    assert.deepEqual(await myRooms(u2), [room.roomId]);
    const got = once(c, 'add_message');
    await addMessage(u2, room.roomId, 'back again');
    assert.equal((await got).content, 'back again');
    assert.equal((await joinRoom(u2, room.roomId)).roomType, 'PRIVATE', 'a member may (re)join its PRIVATE room');
  });
});
