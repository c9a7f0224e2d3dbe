// Restart persistence: SIGKILL the server, start it again on the same database.
import { describe, test, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, closeClient, once, onceWhere, request, expectError,
  createRoom, joinRoom, viewRoom, listRooms, myRooms, addMessage, bubbleIdOf, emitAck, newToken,
  waitUntil, within, runSql,
} from './harness.mjs';
import { assertRoom, assertNewestFirst } from './shapes.mjs';

/** A room as stored: everything but presence (numUsers, participants) and updatedAt. */
function stored(room) {
  const { numUsers, participants, updatedAt, ...rest } = room;
  return rest;
}

describe('restart persistence', { timeout: 90000 }, () => {
  afterEach(closeAll);

  test('rooms, messages, memberships, reports and token→bubbleId mappings survive SIGKILL', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const tokenA = newToken();
    const tokenB = newToken();
    const a = await connect(4, server, { token: tokenA });
    const b = await connect(1, server, { token: tokenB });
    const bidA = await bubbleIdOf(a);
    const bidB = await bubbleIdOf(b);
    const room = await createRoom(a, {
      roomName: 'Persist \u{1F30D}', roomDescription: 'kept across restarts', userLimit: 7, categories: ['Advice', 'School'],
    });
    await joinRoom(b, room.roomId, [a]);
    await addMessage(a, room.roomId, 'one');
    await addMessage(b, room.roomId, 'two \u{1F600}');
    await request(a, 'add_reaction', { roomId: room.roomId, reaction: 'THANK', targetUser: b.id }, { match: (p) => p.sentByMe });
    const reason = `persisted report ${newToken()}`;
    await request(a, 'report_user', { roomId: room.roomId, userToReport: b.id, reason }, { reply: null });
    await request(b, 'set_user_name', { newName: 'Bea' }, { reply: null });
    await request(b, 'register_push', { pushToken: `push-${newToken()}`, platform: 'ios' }, { reply: 'register_push' });
    const closed = await createRoom(b, { roomName: 'closed before restart' });
    await request(b, 'exit_room', { roomId: closed.roomId }, { reply: 'i_exit' });

    const watcher = await connect(4, server);
    const before = await viewRoom(watcher, room.roomId);
    const listedBefore = (await listRooms(watcher)).find((r) => r.roomId === room.roomId);
    assert.equal(before.messages.length, 3);

    await server.restart();
    closeAll();

    const c = await connect(4, server);
    const after = await viewRoom(c, room.roomId);
    assertRoom(after, { numUsers: 0, participants: [] }, 'room after restart');
    assert.deepEqual(stored(after), stored(before), 'room and its messages survive unchanged');
    const listed = (await listRooms(c)).find((r) => r.roomId === room.roomId);
    assert.ok(listed, 'the room is still listed');
    assert.deepEqual(stored(listed), stored(listedBefore));
    const closedAfter = await viewRoom(c, closed.roomId);
    assert.equal(closedAfter.isOpen, false, 'a closed room stays closed');
    assert.ok(!(await listRooms(c)).some((r) => r.roomId === closed.roomId));
    await expectError(c, 'join_room', { roomId: closed.roomId }, 'room_closed');

    // The same tokens give the same people, still members of the room.
    const a2 = await connect(1, server, { token: tokenA });
    assert.equal(await bubbleIdOf(a2), bidA, 'token→bubbleId survives a restart');
    assert.deepEqual(await myRooms(a2), [room.roomId], 'membership survives: put back into the room');
    const joinSeen = onceWhere(a2, 'join_room', (p) => p.bubbleId === bidB);
    const b2 = await connect(4, server, { token: tokenB });
    assert.equal(await bubbleIdOf(b2), bidB);
    const j = await joinSeen;
    assert.deepEqual(j, { roomId: room.roomId, userId: b2.id, bubbleId: bidB, user: b2.id });
    assert.deepEqual(await myRooms(b2), [room.roomId]);
    assert.equal((await viewRoom(c, room.roomId)).numUsers, 2);

    // New messages come after the old ones, with new ids.
    const seen = once(a2, 'add_message');
    const m = await addMessage(b2, room.roomId, 'after restart');
    assert.equal((await seen).content, 'after restart');
    const v = await viewRoom(c, room.roomId);
    assert.equal(v.messages.length, 4);
    assert.equal(v.messages[0].id, m.id);
    assertNewestFirst(v.messages);
    assert.ok(m.createdAt > before.messages[0].createdAt);

    const issues = await request(c, 'list_issues', {});
    assert.equal(issues.filter((i) => i.issueType === 'USER_FLAGGED' && i.reason === reason).length, 1,
      'the report survives');
  });

  test('whatever was acknowledged before SIGKILL is there after the restart', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const tokenB = newToken();
    const a = await connect(4, server);
    const b = await connect(1, server, { token: tokenB });
    const room = await createRoom(a);
    const joinAck = await emitAck(b, 'join_room', { roomId: room.roomId });
    assert.equal(joinAck.roomId, room.roomId);
    const n = 60;
    const acks = [];
    for (let i = 0; i < n; i++) acks.push(emitAck(a, 'add_message', { roomId: room.roomId, message: `acked ${i}` }, 10000));
    const acked = await Promise.all(acks);
    const lastRoom = await emitAck(b, 'create_room', { roomName: 'created just before the kill' });
    const nameAck = await emitAck(b, 'set_user_name', { newName: 'Just before' });
    assert.deepEqual(nameAck, {});
    // No pause: kill right after the last ack.
    await server.kill();
    await server.start();

    const c = await connect(4, server);
    const v = await viewRoom(c, room.roomId);
    assert.equal(v.messages.length, n, 'every acknowledged message is stored');
    assert.deepEqual(v.messages.map((m) => m.content).reverse(), acked.map((m) => m.content));
    assert.deepEqual(v.messages.map((m) => String(m.id)).reverse(), acked.map((m) => String(m.id)));
    const created = await viewRoom(c, lastRoom.roomId);
    assert.equal(created.roomName, 'created just before the kill');
    const b2 = await connect(4, server, { token: tokenB });
    await waitUntil(async () => (await myRooms(b2)).length === 2, 3000, 'memberships restored');
    assert.deepEqual(await myRooms(b2), [room.roomId, lastRoom.roomId], 'acknowledged join and create survive, in join order');
    closeClient(b2);
  });

  test('SIGKILL in the middle of a burst: stored messages are a gap-free prefix including every acknowledged one', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const a = await connect(4, server);
    const room = await createRoom(a);
    const n = 200;
    const acked = [];
    const enough = new Promise((res) => {
      for (let i = 0; i < n; i++) {
        a.emit('add_message', { roomId: room.roomId, message: `burst ${i}` }, (m) => {
          if (m && !m.error) acked.push(m.content);
          if (acked.length === 40) res();
        });
      }
    });
    await within(enough, 10000, '40 acks');
    await server.kill();
    const ackedBeforeKill = [...acked];
    await server.start();
    const c = await connect(4, server);
    const v = await viewRoom(c, room.roomId);
    // Every stored message, in the order stored (view_room shows the newest 100 only).
    const rows = await runSql(server, `SELECT content FROM message WHERE room_id = '${room.roomId}' ORDER BY id`);
    const stored = rows ? rows.split('\n') : [];
    assert.ok(stored.length >= ackedBeforeKill.length, `${stored.length} stored, ${ackedBeforeKill.length} acknowledged`);
    assert.deepEqual(stored, Array.from({ length: stored.length }, (_, i) => `burst ${i}`),
      'stored messages are the first ones sent, in order, without gaps');
    for (const content of ackedBeforeKill) assert.ok(stored.includes(content), `acknowledged ${content} is stored`);
    assert.deepEqual(v.messages.map((m) => m.content), stored.slice(-100).reverse(), 'view_room: the newest');
    assertNewestFirst(v.messages);
  });
});
