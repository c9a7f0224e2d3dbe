// Message order and timestamps, the 100-message cap, and list_rooms filters and order.
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, collect, once, emitAck, createRoom, joinRoom, viewRoom,
  listRooms, myRooms, request, expectError, addMessage, newToken, waitUntil, runSql, sleep,
} from './harness.mjs';
import { assertMessage, assertNewestFirst, assertRoom } from './shapes.mjs';

describe('message order', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const gen of [1, 4]) {
    for (const withAck of [false, true]) {
      test(`${gen}.x: 20 add_message back to back${withAck ? ' with acks' : ''} are stored and delivered in order`, async () => {
        const a = await connect(gen, server);
        const b = await connect(gen === 1 ? 4 : 1, server);
        const room = await createRoom(a);
        await joinRoom(b, room.roomId, [a]);
        const mine = collect(a, 'add_message');
        const theirs = collect(b, 'add_message');
        const texts = Array.from({ length: 20 }, (_, i) => `burst ${i}`);
        const acks = [];
        for (const message of texts) {
          if (withAck) acks.push(emitAck(a, 'add_message', { roomId: room.roomId, message }, 10000));
          else a.emit('add_message', { roomId: room.roomId, message });
        }
        await waitUntil(() => mine.length >= 20 && theirs.length >= 20, 10000, '20 messages on both sides');
        await sleep(100);
        assert.deepEqual(mine.map((m) => m.content), texts, 'sender gets its messages in order');
        assert.deepEqual(theirs.map((m) => m.content), texts, 'others get them in order');
        assert.ok(mine.every((m) => m.sentByMe === true));
        assert.ok(theirs.every((m) => m.sentByMe === false));
        for (let i = 1; i < 20; i++) {
          assert.ok(mine[i].createdAt > mine[i - 1].createdAt,
            `createdAt strictly increases: ${mine[i - 1].createdAt} then ${mine[i].createdAt}`);
        }
        assert.deepEqual(theirs.map((m) => m.id), mine.map((m) => m.id));
        if (withAck) {
          const ackValues = await Promise.all(acks);
          assert.deepEqual(ackValues.map((m) => m.content), texts, 'each ack carries its own message');
          assert.deepEqual(ackValues, mine);
        }
        const v = await viewRoom(b, room.roomId);
        assert.deepEqual(v.messages.map((m) => m.content), [...texts].reverse(), 'view_room: newest first');
        assert.deepEqual(v.messages.map((m) => m.id), mine.map((m) => m.id).reverse());
        assertNewestFirst(v.messages);
      });
    }
  }

  test('two senders at once: every room keeps one strictly increasing timeline', async () => {
    const a = await connect(4, server);
    const b = await connect(1, server);
    const room = await createRoom(a);
    await joinRoom(b, room.roomId, [a]);
    const seenA = collect(a, 'add_message');
    for (let i = 0; i < 15; i++) {
      a.emit('add_message', { roomId: room.roomId, message: `a${i}` });
      b.emit('add_message', { roomId: room.roomId, message: `b${i}` });
    }
    await waitUntil(() => seenA.length >= 30, 10000, '30 messages');
    const v = await viewRoom(a, room.roomId);
    assert.equal(v.messages.length, 30);
    assertNewestFirst(v.messages);
    assert.deepEqual(new Set(v.messages.map((m) => m.id)), new Set(seenA.map((m) => m.id)),
      'every delivered message is stored');
    const fromA = v.messages.filter((m) => m.content.startsWith('a')).map((m) => m.content).reverse();
    const fromB = v.messages.filter((m) => m.content.startsWith('b')).map((m) => m.content).reverse();
    assert.deepEqual(fromA, Array.from({ length: 15 }, (_, i) => `a${i}`));
    assert.deepEqual(fromB, Array.from({ length: 15 }, (_, i) => `b${i}`));
  });

  test('rooms hold at most the 100 newest messages, newest first (105 sent)', async () => {
    const a = await connect(4, server);
    const b = await connect(1, server);
    const room = await createRoom(a, { roomName: 'hundred' });
    const acks = [];
    for (let i = 0; i < 105; i++) acks.push(emitAck(a, 'add_message', { roomId: room.roomId, message: `n${i}` }, 15000));
    await Promise.all(acks);
    const expected = Array.from({ length: 100 }, (_, i) => `n${104 - i}`);
    const v = await viewRoom(b, room.roomId);
    assert.deepEqual(v.messages.map((m) => m.content), expected, 'view_room');
    assertNewestFirst(v.messages);
    const listed = (await listRooms(b)).find((r) => r.roomId === room.roomId);
    assert.deepEqual(listed.messages.map((m) => m.content), expected, 'list_rooms');
    assert.deepEqual(listed.messages, v.messages);
    const joined = await joinRoom(b, room.roomId, [a]);
    assert.deepEqual(joined.messages.map((m) => m.content), expected, 'join_room');
    joined.messages.forEach((m, i) => assertMessage(m, { roomRoomId: room.roomId }, `messages[${i}]`));
  });
});

describe('concurrency', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const gen of [1, 4]) {
    test(`${gen}.x: pipelined requests of one socket are handled in the order sent`, async () => {
      const owner = await connect(4, server);
      const room = await createRoom(owner);
      const a = await connect(gen, server);
      const events = [];
      for (const e of ['join_room', 'add_message', 'i_exit', 'bubble_error']) a.on(e, (p) => events.push([e, p]));
      const acks = [];
      const send = (event, payload) => acks.push(emitAck(a, event, payload, 5000));
      send('join_room', { roomId: room.roomId });
      send('add_message', { roomId: room.roomId, message: 'right after joining' });
      send('typing', { roomId: room.roomId });
      send('exit_room', { roomId: room.roomId });
      send('add_message', { roomId: room.roomId, message: 'after leaving' });
      const ackValues = await Promise.all(acks);
      await waitUntil(() => events.length >= 4, 3000, 'four events');
      assert.deepEqual(events.map(([e]) => e), ['join_room', 'add_message', 'i_exit', 'bubble_error']);
      assert.equal(events[1][1].content, 'right after joining');
      assert.equal(events[3][1].code, 'user_not_in_room');
      assert.equal(ackValues[1].content, 'right after joining');
      assert.deepEqual(ackValues[2], {});
      assert.equal(ackValues[4].error?.code, 'user_not_in_room');
      const v = await viewRoom(owner, room.roomId);
      assert.deepEqual(v.messages.map((m) => m.content), ['right after joining']);
    });
  }

  for (const gen of [1, 4]) {
    test(`${gen}.x: 150 requests in flight, messages, reactions, failures and others mixed: answered in the order sent`, async () => {
      const owner = await connect(4, server);
      const room = await createRoom(owner);
      const elsewhere = await createRoom(owner, { roomName: 'not joined' });
      const a = await connect(gen, server);
      await joinRoom(a, room.roomId, [owner]);
      const heard = collect(owner, 'add_message');
      const order = [];
      const sent = [];
      const send = (event, payload, expect) => {
        const i = sent.length;
        sent.push(expect);
        return emitAck(a, event, payload, 20000).then((answer) => { order.push(i); return answer; });
      };
      const answers = [];
      for (let i = 0; i < 150; i++) {
        if (i % 10 === 3) {
          answers.push(send('add_message', { roomId: elsewhere.roomId, message: `astray ${i}` }, 'user_not_in_room'));
        } else if (i % 10 === 6) {
          answers.push(send('add_reaction', { roomId: room.roomId, reaction: 'hug', targetUser: owner.id }, 'hug'));
        } else if (i % 25 === 9) {
          answers.push(send('typing', { roomId: room.roomId }, 'typing'));
        } else {
          answers.push(send('add_message', { roomId: room.roomId, message: `m ${i}` }, `m ${i}`));
        }
      }
      const got = await Promise.all(answers);
      assert.deepEqual(order, sent.map((_, i) => i), 'acknowledgements arrive in the order sent');
      got.forEach((answer, i) => {
        const expect = sent[i];
        if (expect === 'user_not_in_room') assert.equal(answer.error?.code, expect, `answer ${i}`);
        else if (expect === 'typing') assert.deepEqual(answer, {}, `answer ${i}`);
        else assert.equal(answer.content, expect, `answer ${i}`);
      });
      const messages = sent.filter((e) => e.startsWith('m '));
      await waitUntil(() => heard.length >= messages.length, 10000, 'every message delivered');
      assert.deepEqual(heard.map((m) => m.content), messages, 'delivered in the order sent');
      const v = await viewRoom(owner, room.roomId);
      const stored = v.messages.filter((m) => m.messageType === 'MESSAGE').map((m) => m.content).reverse();
      assert.deepEqual(stored, messages.slice(-stored.length), 'stored in the order sent');
      assertNewestFirst(v.messages);
      const astray = await viewRoom(owner, elsewhere.roomId);
      assert.equal(astray.messages.length, 0, 'nothing stored where the sender is not');
    });
  }

  test('simultaneous joins never overfill a room', async () => {
    const owner = await connect(4, server);
    const room = await createRoom(owner, { userLimit: 4 });
    const joiners = [];
    for (let i = 0; i < 8; i++) joiners.push(await connect(i % 2 ? 1 : 4, server));
    const results = await Promise.all(joiners.map((j) => emitAck(j, 'join_room', { roomId: room.roomId }, 5000)));
    const ok = results.filter((r) => !r.error);
    const full = results.filter((r) => r.error?.code === 'room_full');
    assert.equal(ok.length, 3, `3 of 8 get in: ${JSON.stringify(results.map((r) => r.error?.code ?? 'ok'))}`);
    assert.equal(full.length, 5);
    const v = await viewRoom(owner, room.roomId);
    assert.equal(v.numUsers, 4);
    assert.equal(v.participants.length, 4);
  });

  test('the last two members exiting at once close the room', async () => {
    const pairs = [];
    for (let i = 0; i < 10; i++) {
      const a = await connect(4, server);
      const b = await connect(i % 2 ? 1 : 4, server);
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      pairs.push([a, b, room.roomId]);
    }
    await Promise.all(pairs.flatMap(([a, b, roomId]) => [
      emitAck(a, 'exit_room', { roomId }),
      emitAck(b, 'exit_room', { roomId }),
    ]));
    const c = await connect(4, server);
    const open = [];
    for (const [, , roomId] of pairs) {
      const v = await viewRoom(c, roomId);
      assert.equal(v.numUsers, 0);
      if (v.isOpen) open.push(roomId);
    }
    assert.deepEqual(open, [], 'every room whose last member exited is closed');
    await expectError(c, 'join_room', { roomId: pairs[0][2] }, 'room_closed');
  });
});

describe('concurrency: last exit against a join', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  test('the last member exiting while another joins leaves a consistent room', async () => {
    const pairs = [];
    for (let i = 0; i < 10; i++) {
      const a = await connect(4, server);
      const b = await connect(i % 2 ? 1 : 4, server);
      pairs.push([a, b, (await createRoom(a)).roomId]);
    }
    const results = await Promise.all(pairs.map(([a, b, roomId]) => Promise.all([
      emitAck(a, 'exit_room', { roomId }),
      emitAck(b, 'join_room', { roomId }),
    ])));
    const c = await connect(4, server);
    const listed = new Set((await listRooms(c)).map((r) => r.roomId));
    const wrong = [];
    for (const [i, [, join]] of results.entries()) {
      const [, b, roomId] = pairs[i];
      const v = await viewRoom(c, roomId);
      if (join.error) {
        if (join.error.code !== 'room_closed' || v.isOpen) wrong.push(`room ${i}: join got ${join.error.code}, isOpen ${v.isOpen}`);
      } else if (!v.isOpen || v.numUsers !== 1 || !v.participants.includes(b.id) || !listed.has(roomId)) {
        wrong.push(`room ${i}: join succeeded but isOpen ${v.isOpen}, numUsers ${v.numUsers}, listed ${listed.has(roomId)}`);
      }
    }
    assert.deepEqual(wrong, [], 'either the join is refused as room_closed, or the joiner is in an open, listed room');
  });
});

describe('large answers', { timeout: 60000 }, () => {
  afterEach(closeAll);

  test('a multi-megabyte list_rooms reaches 1.x and 4.x polling clients intact', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const a = await connect(4, server);
    const rooms = [];
    for (let r = 0; r < 4; r++) {
      const room = await createRoom(a, { roomName: `big ${r}` });
      rooms.push(room.roomId);
      const acks = [];
      for (let i = 0; i < 100; i++) {
        const text = `${r}/${i} \u{1F600} ${'w'.repeat(2990)}`;
        acks.push(emitAck(a, 'add_message', { roomId: room.roomId, message: text }, 15000));
      }
      await Promise.all(acks);
    }
    for (const gen of [1, 4]) {
      const p = await connect(gen, server, { transports: ['polling'] });
      const list = await request(p, 'list_rooms', {}, { ms: 15000 });
      const big = list.filter((r) => rooms.includes(r.roomId));
      assert.equal(big.length, 4);
      for (const room of big) {
        assert.equal(room.messages.length, 100);
        const r = room.roomName.split(' ')[1];
        assert.equal(room.messages[0].content, `${r}/99 \u{1F600} ${'w'.repeat(2990)}`);
      }
      assert.ok(JSON.stringify(big).length > 1_000_000, 'the answer is over 1 MB');
    }
  });
});

describe('list_rooms filters and order', { timeout: 60000 }, () => {
  afterEach(closeAll);

  test('HOT rooms first, then lastActive ascending; rooms idle for 3 days only for their sockets; no PRIVATE, no closed', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const token = newToken();
    const a = await connect(4, server, { token });
    const names = ['old', 'hot', 'hot-old', 'recent-1', 'recent-2', 'private', 'closed'];
    const rooms = {};
    for (const name of names) {
      rooms[name] = await createRoom(a, { roomName: name });
      await sleep(3);
    }
    await request(a, 'exit_room', { roomId: rooms.closed.roomId }, { reply: 'i_exit' });
    await addMessage(a, rooms['recent-1'].roomId, 'bump');

    // States the protocol cannot make: HOT rooms, idle rooms and a PRIVATE room without a counsellor.
    await server.kill();
    const fourDaysAgo = Date.now() - 4 * 24 * 3600 * 1000;
    const q = (name) => `'${rooms[name].roomId}'`;
    await runSql(server, `UPDATE room SET room_type = 'HOT' WHERE id IN (${q('hot')}, ${q('hot-old')});`);
    await runSql(server, `UPDATE room SET last_active = ${fourDaysAgo} WHERE id IN (${q('old')}, ${q('hot-old')});`);
    await runSql(server, `UPDATE room SET room_type = 'PRIVATE' WHERE id = ${q('private')};`);
    await server.start();

    const stranger = await connect(1, server);
    const list = await listRooms(stranger);
    list.forEach((r, i) => assertRoom(r, { isOpen: true }, `list_rooms[${i}]`));
    const got = list.map((r) => r.roomName);
    assert.deepEqual([...got.slice(0, 2)].sort(), ['hot', 'hot-old'], `HOT rooms first: ${got}`);
    assert.deepEqual(got.slice(2), ['recent-2', 'recent-1'],
      'then lastActive ascending; idle, PRIVATE and closed rooms left out');
    assert.equal(list[0].roomType, 'HOT');
    assert.equal(list[2].roomType, 'PUBLIC');

    // A member whose socket is in the idle room still sees it (the app looks up every my_rooms id).
    const a2 = await connect(4, server, { token });
    await waitUntil(async () => (await myRooms(a2)).length === 6, 3000, 'rooms restored');
    const mine = await listRooms(a2);
    const ids = new Set(mine.map((r) => r.roomId));
    for (const id of await myRooms(a2)) {
      if (id === rooms.private.roomId) continue;
      assert.ok(ids.has(id), `room ${id} of my_rooms is in list_rooms`);
    }
    assert.ok(ids.has(rooms.old.roomId), 'idle room listed for a socket in it');
    assert.ok(!ids.has(rooms.private.roomId), 'PRIVATE never listed');
    const nonHot = mine.filter((r) => r.roomType !== 'HOT').map((r) => r.lastActive);
    assert.deepEqual(nonHot, [...nonHot].sort());
    assert.ok(mine.findIndex((r) => r.roomType !== 'HOT') >= 2, 'HOT first');
  });
});

describe('rate limiting', { timeout: 60000 }, () => {
  afterEach(closeAll);

  test('a socket flooding past --max-queued-events gets rate_limited; nothing else breaks', async (t) => {
    const server = await startServer({ args: ['--max-queued-events', '4'] });
    t.after(() => server.stop());
    const a = await connect(4, server);
    const b = await connect(1, server);
    const room = await createRoom(a);
    await joinRoom(b, room.roomId, [a]);
    const errors = collect(a, 'bubble_error');
    const acks = [];
    for (let i = 0; i < 60; i++) acks.push(emitAck(a, 'add_message', { roomId: room.roomId, message: `flood ${i}` }, 10000));
    const results = await Promise.all(acks);
    const limited = results.filter((r) => r.error);
    const stored = results.filter((r) => !r.error);
    assert.ok(limited.length > 0, 'some requests are refused');
    assert.ok(limited.every((r) => r.error.code === 'rate_limited'), JSON.stringify(limited.map((r) => r.error)));
    assert.ok(stored.length >= 4, `at least the queue's worth is handled (${stored.length})`);
    await waitUntil(() => errors.length >= limited.length, 3000, 'a bubble_error per refused request');
    assert.ok(errors.every((e) => e.code === 'rate_limited'));
    const v = await viewRoom(b, room.roomId);
    assert.deepEqual(v.messages.map((m) => m.content).reverse(), stored.map((m) => m.content),
      'exactly the accepted messages are stored, in order');
    assert.ok(a.connected && b.connected);
    const seen = once(b, 'add_message');
    await addMessage(a, room.roomId, 'after the flood');
    assert.equal((await seen).content, 'after the flood');
  });
});
