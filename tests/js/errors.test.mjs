// Every error code of the spec on `/` and the order of the checks, with socket.io-client 1.x and 4.x.
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, once, collect, request, expectError, createRoom, joinRoom,
  viewRoom, myRooms, addMessage, bubbleIdOf, sleep, NO_PAYLOAD,
} from './harness.mjs';
import { uuidOfVersion } from './shapes.mjs';

/** Room events with the event the sender gets on success (null: only the ack). */
const ROOM_EVENTS = {
  join_room: 'join_room',
  exit_room: 'i_exit',
  view_room: 'view_room',
  typing: null,
  stop_typing: null,
  report_user: null,
  add_message: 'add_message',
  add_reaction: 'add_reaction',
};

/** Fields that would fail the event's own checks, to show the id checks come first. */
const BAD_OWN_FIELDS = { message: 5, reaction: 5, targetUser: 5, userToReport: 5, reason: 5 };

const INVALID_ROOM_IDS = [
  'not-a-uuid', 5, true, {}, [uuidOfVersion(4)], 'zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz',
  `${uuidOfVersion(4)}0`, uuidOfVersion(4).slice(1),
  '00000000-0000-0000-0000-000000000000', uuidOfVersion(0), uuidOfVersion(6), uuidOfVersion(7),
  uuidOfVersion(8), ` ${uuidOfVersion(4)}`, `${uuidOfVersion(4)} `, `{${uuidOfVersion(4)}}`,
  `urn:uuid:${uuidOfVersion(4)}`, uuidOfVersion(4).replaceAll('-', ''),
];
const UNKNOWN_ROOM_IDS = [
  uuidOfVersion(1), uuidOfVersion(2), uuidOfVersion(3), uuidOfVersion(4), uuidOfVersion(5),
  uuidOfVersion(4).toUpperCase(), 'c232ab00-9414-11ec-b3c8-9f6bdeced846',
];

for (const gen of [1, 4]) {
  describe(`errors on / with socket.io-client ${gen}.x`, { timeout: 60000 }, () => {
    let server;
    before(async () => { server = await startServer(); });
    after(async () => { await server?.stop(); });
    afterEach(closeAll);

    const client = (opts) => connect(gen, server, opts);

    test('room events: no_room_id, then invalid_room_id, then room_id_not_found, before own checks', async () => {
      const a = await client();
      for (const [event, reply] of Object.entries(ROOM_EVENTS)) {
        for (const payload of [{}, NO_PAYLOAD, { roomId: null }, { roomId: null, ...BAD_OWN_FIELDS }]) {
          await expectError(a, event, payload, 'no_room_id', { reply });
        }
        for (const roomId of INVALID_ROOM_IDS) {
          await expectError(a, event, { roomId, ...BAD_OWN_FIELDS }, 'invalid_room_id', { reply });
        }
        for (const roomId of UNKNOWN_ROOM_IDS) {
          await expectError(a, event, { roomId, ...BAD_OWN_FIELDS }, 'room_id_not_found', { reply });
        }
      }
      assert.deepEqual(await myRooms(a), []);
    });

    test('errors go only to the sender, with and without an ack', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      const aErrors = collect(a, 'bubble_error');
      await expectError(b, 'add_message', { roomId: room.roomId }, 'no_message', { ack: false });
      await expectError(b, 'add_message', { roomId: room.roomId }, 'no_message');
      await expectError(b, 'join_room', {}, 'no_room_id', { ack: false });
      await sleep(100);
      aErrors.stop();
      assert.equal(aErrors.length, 0, 'others in the room get no bubble_error');
    });

    test('create_room: no_room_name, invalid_room_name, invalid_user_limit, invalid_categories in order', async () => {
      const a = await client();
      const worse = { userLimit: 1, categories: 'Rant' };
      for (const payload of [{}, NO_PAYLOAD, { roomName: '' }, { roomName: null }, { roomName: '', ...worse },
        { roomDescription: 5, ...worse }, { user: 'x' }]) {
        await expectError(a, 'create_room', payload, 'no_room_name');
      }
      for (const payload of [
        { roomName: 5, ...worse }, { roomName: ['a'] }, { roomName: { a: 1 } }, { roomName: true },
        { roomName: 'N'.repeat(201) }, { roomName: 'ok', roomDescription: 5, ...worse },
        { roomName: 'ok', roomDescription: {} }, { roomName: 'ok', roomDescription: ['d'] },
        { roomName: 'ok', roomDescription: 'd'.repeat(1001) },
      ]) {
        await expectError(a, 'create_room', payload, 'invalid_room_name');
      }
      for (const userLimit of [1, 0, -5, 101, 1000, 2.5, '2.5', 'abc', '1', '101', true, {}, [5], 'twenty']) {
        await expectError(a, 'create_room', { roomName: 'ok', userLimit, categories: 'Rant' }, 'invalid_user_limit');
      }
      for (const categories of ['Rant', ['Rant', 'Bogus'], [5], [null], {}, 5, true, ['rant']]) {
        await expectError(a, 'create_room', { roomName: 'ok', categories }, 'invalid_categories');
      }
      assert.deepEqual(await myRooms(a), [], 'no room was created');
    });

    test('join_room: room_closed', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a);
      await request(a, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
      await expectError(b, 'join_room', { roomId: room.roomId }, 'room_closed');
      await expectError(a, 'join_room', { roomId: room.roomId }, 'room_closed');
      assert.deepEqual(await myRooms(b), []);
    });

    test('add_message: no_message, invalid_message, then user_not_in_room', async () => {
      const a = await client();
      const outsider = await client();
      const room = await createRoom(a);
      const roomId = room.roomId;
      // Outsider: the message checks come before user_not_in_room.
      for (const payload of [{ roomId }, { roomId, message: '' }, { roomId, message: null }]) {
        await expectError(outsider, 'add_message', payload, 'no_message');
        await expectError(a, 'add_message', payload, 'no_message');
      }
      for (const message of [5, true, {}, ['hi'], 'm'.repeat(3001)]) {
        await expectError(outsider, 'add_message', { roomId, message }, 'invalid_message');
        await expectError(a, 'add_message', { roomId, message }, 'invalid_message');
      }
      await expectError(outsider, 'add_message', { roomId, message: 'hi' }, 'user_not_in_room');
      assert.deepEqual((await viewRoom(a, roomId)).messages, [], 'nothing stored');
    });

    test('add_reaction: user_not_in_room, no_reaction, no_target_user; invalid_reaction, invalid_target_user', async () => {
      const a = await client();
      const b = await client();
      const outsider = await client();
      const room = await createRoom(a);
      const roomId = room.roomId;
      await joinRoom(b, roomId, [a]);
      const reply = 'add_reaction';
      for (const payload of [{ roomId }, { roomId, reaction: 5, targetUser: 5 }, { roomId, reaction: 'THANK', targetUser: a.id }]) {
        await expectError(outsider, 'add_reaction', payload, 'user_not_in_room', { reply });
      }
      for (const payload of [{ roomId }, { roomId, reaction: '' }, { roomId, reaction: null, targetUser: 5 }, { roomId, targetUser: a.id }]) {
        await expectError(b, 'add_reaction', payload, 'no_reaction', { reply });
      }
      for (const targetUser of [undefined, '', null]) {
        await expectError(b, 'add_reaction', { roomId, reaction: 'THANK', targetUser }, 'no_target_user', { reply });
      }
      for (const reaction of [5, true, {}, ['THANK'], 'r'.repeat(51)]) {
        await expectError(b, 'add_reaction', { roomId, reaction, targetUser: a.id }, 'invalid_reaction', { reply });
      }
      for (const targetUser of [5, true, {}, [a.id]]) {
        await expectError(b, 'add_reaction', { roomId, reaction: 'THANK', targetUser }, 'invalid_target_user', { reply });
      }
      assert.deepEqual((await viewRoom(a, roomId)).messages, [], 'nothing stored');
    });

    test('typing, stop_typing, exit_room, report_user from outside the room', async () => {
      const a = await client();
      const outsider = await client();
      const room = await createRoom(a);
      const aGets = collect(a, 'typing');
      for (const [event, reply] of [['typing', null], ['stop_typing', null], ['exit_room', 'i_exit']]) {
        await expectError(outsider, event, { roomId: room.roomId }, 'user_not_in_room', { reply });
      }
      await sleep(50);
      aGets.stop();
      assert.equal(aGets.length, 0);
    });

    test('report_user: no_user_to_report and invalid_reason', async () => {
      const a = await client();
      const b = await client();
      const outsider = await client();
      const room = await createRoom(a);
      const roomId = room.roomId;
      await joinRoom(b, roomId, [a]);
      const bGets = collect(b, 'report_user');
      for (const userToReport of [undefined, null, '', outsider.id, 'nobody', 5, {}]) {
        await expectError(a, 'report_user', { roomId, userToReport, reason: 'r' }, 'no_user_to_report', { reply: null });
      }
      for (const reason of [5, true, {}, ['r'], 'r'.repeat(1001)]) {
        await expectError(a, 'report_user', { roomId, userToReport: b.id, reason }, 'invalid_reason', { reply: null });
      }
      await sleep(50);
      bGets.stop();
      assert.equal(bGets.length, 0, 'a refused report is not broadcast');
      const issues = await request(a, 'list_issues', {});
      assert.equal(issues.filter((i) => i.issueType === 'USER_FLAGGED' && i.roomId === roomId).length, 0,
        'a refused report raises no issue');
      // The maximum is accepted.
      const ok = once(b, 'report_user');
      await request(a, 'report_user', { roomId, userToReport: b.id, reason: 'r'.repeat(1000) }, { reply: null });
      assert.equal((await ok).reason, 'r'.repeat(1000));
    });

    test('set_user_name: no_name, invalid_new_name', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      const bGets = collect(b, 'set_user_name');
      for (const payload of [{}, NO_PAYLOAD, { newName: '' }, { newName: null }, { userId: a.id }]) {
        await expectError(a, 'set_user_name', payload, 'no_name', { reply: null });
      }
      for (const newName of [5, true, {}, ['n'], 'n'.repeat(101)]) {
        await expectError(a, 'set_user_name', { newName }, 'invalid_new_name', { reply: null });
      }
      await sleep(50);
      bGets.stop();
      assert.equal(bGets.length, 0, 'a refused name is not broadcast');
    });

    test('register_push: invalid_push_token, invalid_platform', async () => {
      const a = await client();
      for (const event of ['register_push', 'registerPush']) {
        for (const payload of [{}, NO_PAYLOAD, { pushToken: '' }, { pushToken: null }, { pushToken: 5 },
          { pushToken: {} }, { pushToken: ['t'] }, { pushToken: 't'.repeat(100000) }, { platform: 'fcm' }]) {
          await expectError(a, event, payload, 'invalid_push_token', { reply: 'register_push' });
        }
        for (const platform of ['windows', 'FCMX', 5, true, {}, ['ios']]) {
          await expectError(a, event, { pushToken: 'tok', platform }, 'invalid_platform', { reply: 'register_push' });
        }
      }
    });

    test('room ids are case-insensitive; the server emits them lowercase', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a);
      const upper = room.roomId.toUpperCase();
      const joinSeen = once(a, 'join_room');
      const joined = await request(b, 'join_room', { roomId: upper }, { match: (p) => Array.isArray(p?.messages) });
      assert.equal(joined.roomId, room.roomId);
      assert.equal((await joinSeen).roomId, room.roomId);
      const seen = once(a, 'add_message');
      const m = await request(b, 'add_message', { roomId: upper, message: 'upper' }, { match: (p) => p.sentByMe });
      assert.equal(m.roomRoomId, room.roomId);
      assert.equal((await seen).roomRoomId, room.roomId);
      assert.deepEqual(await myRooms(b), [room.roomId]);
      const typing = once(a, 'typing');
      await request(b, 'typing', { roomId: upper }, { reply: null });
      assert.equal((await typing).roomId, room.roomId);
      const exit = once(a, 'exit_room');
      const i = await request(b, 'exit_room', { roomId: upper }, { reply: 'i_exit' });
      assert.equal(i.roomId, room.roomId);
      assert.equal((await exit).roomId, room.roomId);
      assert.equal((await viewRoom(a, upper)).numUsers, 1);
    });

    test('a refused request changes nothing', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a, { userLimit: 2 });
      await joinRoom(b, room.roomId, [a]);
      await addMessage(a, room.roomId, 'only message');
      const before = await viewRoom(a, room.roomId);
      const c = await client();
      await expectError(c, 'join_room', { roomId: room.roomId }, 'room_full');
      await expectError(c, 'add_message', { roomId: room.roomId, message: 'x' }, 'user_not_in_room');
      await expectError(b, 'add_message', { roomId: room.roomId, message: 'm'.repeat(3001) }, 'invalid_message');
      await expectError(b, 'add_reaction', { roomId: room.roomId, reaction: 'THANK' }, 'no_target_user');
      await expectError(c, 'exit_room', { roomId: room.roomId }, 'user_not_in_room', { reply: 'i_exit' });
      const after = await viewRoom(a, room.roomId);
      assert.deepEqual(after, before);
      assert.equal(typeof await bubbleIdOf(c), 'string');
    });
  });
}
