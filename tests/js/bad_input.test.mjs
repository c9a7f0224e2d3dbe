// Bad input matrix: every event sent with no payload, null, a string, a number, an array, wrong field
// types and 1 MB string fields gets the spec's error (or its normal answer where any payload is
// accepted), changes nothing, and neither the server nor the other clients notice.
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, collect, request, expectError, createRoom, joinRoom,
  viewRoom, listRooms, myRooms, addMessage, bubbleIdOf, health, once, sleep, NO_PAYLOAD,
  describePayload,
} from './harness.mjs';

const MB = 'x'.repeat(1_000_000);

/** Event → [code for an empty payload, event the sender gets on success]. */
const NEEDS_FIELDS = {
  create_room: ['no_room_name', 'create_room'],
  join_room: ['no_room_id', 'join_room'],
  exit_room: ['no_room_id', 'i_exit'],
  view_room: ['no_room_id', 'view_room'],
  typing: ['no_room_id', null],
  stop_typing: ['no_room_id', null],
  report_user: ['no_room_id', null],
  add_message: ['no_room_id', 'add_message'],
  add_reaction: ['no_room_id', 'add_reaction'],
  set_user_name: ['no_name', null],
  register_push: ['invalid_push_token', 'register_push'],
  registerPush: ['invalid_push_token', 'register_push'],
  find_counsellor: ['counsellor_unavailable', 'find_counsellor'], // no counsellor on this server
};

/** Events that accept anything, with a check of their answer. */
const ACCEPTS_ANYTHING = {
  list_rooms: (v) => Array.isArray(v),
  my_rooms: (v) => Array.isArray(v),
  my_id: (v) => typeof v === 'string' && v.length > 0,
  list_issues: (v) => Array.isArray(v),
};

/** Payloads that count as an empty object. */
function emptyShapes(ctx) {
  return [
    NO_PAYLOAD, null, 'a string', '', 42, 0, true, [1, 2], [],
    // Neither a JSON string nor an array holding a valid request is unwrapped.
    JSON.stringify({ roomId: ctx.roomId, message: 'wrapped', roomName: 'wrapped', newName: 'wrapped' }),
    [{ roomId: ctx.roomId, message: 'wrapped', roomName: 'wrapped', newName: 'wrapped', pushToken: 't' }],
  ];
}

/** [event, payload, code] with wrong field types; the actor is in room ctx.roomId. */
function wrongTypes({ roomId, otherId }) {
  const cases = [
    ['create_room', { roomName: 5 }, 'invalid_room_name'],
    ['create_room', { roomName: { a: 1 } }, 'invalid_room_name'],
    ['create_room', { roomName: ['x'] }, 'invalid_room_name'],
    ['create_room', { roomName: 'ok', roomDescription: 7 }, 'invalid_room_name'],
    ['create_room', { roomName: 'ok', userLimit: 'abc' }, 'invalid_user_limit'],
    ['create_room', { roomName: 'ok', userLimit: {} }, 'invalid_user_limit'],
    ['create_room', { roomName: 'ok', userLimit: [] }, 'invalid_user_limit'],
    ['create_room', { roomName: 'ok', categories: 'Rant' }, 'invalid_categories'],
    ['create_room', { roomName: 'ok', categories: [1] }, 'invalid_categories'],
    ['create_room', { roomName: 'ok', categories: { 0: 'Rant' } }, 'invalid_categories'],
    ['report_user', { roomId, userToReport: 5 }, 'no_user_to_report'],
    ['report_user', { roomId, userToReport: { id: otherId } }, 'no_user_to_report'],
    ['report_user', { roomId, userToReport: otherId, reason: 5 }, 'invalid_reason'],
    ['report_user', { roomId, userToReport: otherId, reason: { r: 1 } }, 'invalid_reason'],
    ['add_message', { roomId, message: 5 }, 'invalid_message'],
    ['add_message', { roomId, message: {} }, 'invalid_message'],
    ['add_message', { roomId, message: ['x'] }, 'invalid_message'],
    ['add_message', { roomId, message: false }, 'invalid_message'],
    ['add_reaction', { roomId, reaction: 5, targetUser: otherId }, 'invalid_reaction'],
    ['add_reaction', { roomId, reaction: ['THANK'], targetUser: otherId }, 'invalid_reaction'],
    ['add_reaction', { roomId, reaction: 'THANK', targetUser: 5 }, 'invalid_target_user'],
    ['add_reaction', { roomId, reaction: 'THANK', targetUser: [otherId] }, 'invalid_target_user'],
    ['set_user_name', { newName: 5 }, 'invalid_new_name'],
    ['set_user_name', { newName: {} }, 'invalid_new_name'],
    ['set_user_name', { newName: ['n'] }, 'invalid_new_name'],
    ['register_push', { pushToken: 5 }, 'invalid_push_token'],
    ['register_push', { pushToken: { t: 1 } }, 'invalid_push_token'],
    ['register_push', { pushToken: 'tok', platform: 5 }, 'invalid_platform'],
    ['register_push', { pushToken: 'tok', platform: 'blackberry' }, 'invalid_platform'],
  ];
  for (const event of ['join_room', 'exit_room', 'view_room', 'typing', 'stop_typing', 'report_user', 'add_message', 'add_reaction']) {
    for (const bad of [5, {}, [roomId], true, 'nope']) {
      cases.push([event, { roomId: bad, message: 'x', reaction: 'THANK', targetUser: otherId, userToReport: otherId }, 'invalid_room_id']);
    }
  }
  return cases;
}

/** [event, payload, code] with 1 MB string fields. */
function megabyteFields({ roomId, otherId }) {
  return [
    ['create_room', { roomName: MB }, 'invalid_room_name'],
    ['create_room', { roomName: 'ok', roomDescription: MB }, 'invalid_room_name'],
    ['create_room', { roomName: 'ok', userLimit: '1'.repeat(1_000_000) }, 'invalid_user_limit'],
    ['create_room', { roomName: 'ok', categories: [MB] }, 'invalid_categories'],
    ['join_room', { roomId: MB }, 'invalid_room_id'],
    ['view_room', { roomId: MB }, 'invalid_room_id'],
    ['add_message', { roomId, message: MB }, 'invalid_message'],
    ['add_message', { roomId: MB, message: 'x' }, 'invalid_room_id'],
    ['add_reaction', { roomId, reaction: MB, targetUser: otherId }, 'invalid_reaction'],
    ['report_user', { roomId, userToReport: otherId, reason: MB }, 'invalid_reason'],
    ['report_user', { roomId, userToReport: MB }, 'no_user_to_report'],
    ['set_user_name', { newName: MB }, 'invalid_new_name'],
    ['register_push', { pushToken: MB }, 'invalid_push_token'],
    ['register_push', { pushToken: 'tok', platform: MB }, 'invalid_platform'],
  ];
}

const replyOf = (event) => (NEEDS_FIELDS[event] ? NEEDS_FIELDS[event][1] : event);

/**
 * Sets up a room with an owner, the actor (gen/transports) in it, and a 4.x bystander in it that
 * records every event it gets. Returns helpers to snapshot the state and check the bystander.
 */
async function scene(server, gen, transports) {
  const owner = await connect(4, server);
  const actor = await connect(gen, server, { transports });
  const bystander = await connect(4, server);
  const observer = await connect(4, server);
  const room = await createRoom(owner, { roomName: 'bad input room', userLimit: 10 });
  await addMessage(owner, room.roomId, 'before');
  await joinRoom(actor, room.roomId, [owner]);
  await joinRoom(bystander, room.roomId, [owner, actor]);
  const seenByBystander = [];
  bystander.onAny((event, payload) => seenByBystander.push([event, payload]));
  const snapshot = async () => ({
    view: await viewRoom(observer, room.roomId),
    list: await listRooms(observer),
    actorRooms: await myRooms(actor),
    actorId: await request(actor, 'my_id', {}),
  });
  return { owner, actor, bystander, observer, room, seenByBystander, snapshot };
}

async function runCases(s, cases, label) {
  const before = await s.snapshot();
  for (const [event, payload, code] of cases) {
    await expectError(s.actor, event, payload, code, { reply: replyOf(event), ms: 10000 });
  }
  const after = await s.snapshot();
  assert.deepEqual(after, before, `${label}: refused requests must change nothing`);
  assert.deepEqual(s.seenByBystander, [], `${label}: the bystander must not hear of refused requests`);
  assert.ok(s.actor.connected, `${label}: the sender stays connected`);
}

/** The bystander and the actor still get messages, the server answers /health. */
async function stillWorking(server, s) {
  assert.ok(s.bystander.connected, 'bystander still connected');
  assert.ok(s.actor.connected, 'actor still connected');
  const toBystander = once(s.bystander, 'add_message');
  const toActor = once(s.actor, 'add_message');
  await addMessage(s.owner, s.room.roomId, 'after');
  assert.equal((await toBystander).content, 'after');
  assert.equal((await toActor).content, 'after');
  assert.deepEqual(await health(server), { status: 200, body: { status: 'ok' } });
  assert.ok(server.alive, 'server process alive');
}

for (const gen of [1, 4]) {
  describe(`bad input with socket.io-client ${gen}.x`, { timeout: 120000 }, () => {
    let server;
    before(async () => { server = await startServer(); });
    after(async () => { await server?.stop(); });
    afterEach(closeAll);

    test('payload missing, null, a string, a number or an array counts as an empty object', async () => {
      const s = await scene(server, gen);
      const ctx = { roomId: s.room.roomId, otherId: s.bystander.id };
      for (const [event, [code, reply]] of Object.entries(NEEDS_FIELDS)) {
        const before = await s.snapshot();
        for (const payload of emptyShapes(ctx)) {
          await expectError(s.actor, event, payload, code, { reply });
          // And without an ack.
          await expectError(s.actor, event, payload, code, { reply, ack: false });
        }
        assert.deepEqual(await s.snapshot(), before, `${event}: refused requests must change nothing`);
      }
      for (const [event, check] of Object.entries(ACCEPTS_ANYTHING)) {
        for (const payload of emptyShapes(ctx)) {
          const got = await request(s.actor, event, payload);
          assert.ok(check(got), `${event} ${describePayload(payload)} answered ${JSON.stringify(got)?.slice(0, 200)}`);
        }
      }
      assert.deepEqual(s.seenByBystander, [], 'the bystander must not hear of refused requests');
      await stillWorking(server, s);
    });

    test('wrong field types get the field\'s error code', async () => {
      const s = await scene(server, gen);
      await runCases(s, wrongTypes({ roomId: s.room.roomId, otherId: s.bystander.id }), 'wrong types');
      await stillWorking(server, s);
    });

    const transportSets = gen === 1
      ? [['polling'], ['websocket']]
      : [['websocket'], ['polling']];
    for (const transports of transportSets) {
      test(`1 MB string fields over ${transports[0]} get the field's error code, not a disconnect`, async () => {
        const s = await scene(server, gen, transports);
        const disconnects = collect(s.actor, 'disconnect');
        await runCases(s, megabyteFields({ roomId: s.room.roomId, otherId: s.bystander.id }), `1 MB over ${transports[0]}`);
        await sleep(100);
        disconnects.stop();
        assert.deepEqual([...disconnects], [], 'the sender was not disconnected');
        await stillWorking(server, s);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Packet sizes and malformed packets

/** Opens a raw Engine.IO polling session; returns its sid. */
async function rawSession(server, eio) {
  const res = await fetch(`${server.url}/socket.io/?EIO=${eio}&transport=polling`, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  assert.equal(res.status, 200, `handshake: ${text}`);
  const m = /0(\{[^}]*\})/.exec(text);
  assert.ok(m, `open packet in ${text}`);
  return JSON.parse(m[1]).sid;
}

async function rawPost(server, eio, sid, body, contentType = 'text/plain;charset=UTF-8') {
  const res = await fetch(`${server.url}/socket.io/?EIO=${eio}&transport=polling&sid=${sid}`, {
    method: 'POST', body, headers: { 'Content-Type': contentType }, signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  return res.status;
}

async function rawGet(server, eio, sid) {
  const res = await fetch(`${server.url}/socket.io/?EIO=${eio}&transport=polling&sid=${sid}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

describe('packet limits and malformed packets', { timeout: 120000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  const NEAR_LIMIT = 'y'.repeat(2_000_000); // the packet stays under 2 MiB
  for (const [gen, transports] of [[4, ['websocket']], [4, ['polling']], [1, ['polling']], [1, ['websocket']]]) {
    test(`${gen}.x over ${transports[0]}: a field just under the 2 MiB packet limit gets its error code`, async () => {
      const s = await scene(server, gen, transports);
      await runCases(s, [
        ['add_message', { roomId: s.room.roomId, message: NEAR_LIMIT }, 'invalid_message'],
        ['set_user_name', { newName: NEAR_LIMIT }, 'invalid_new_name'],
      ], 'near the packet limit');
      await stillWorking(server, s);
    });
  }

  for (const [gen, transports] of [[4, ['websocket']], [4, ['polling']], [1, ['polling']], [2, ['websocket']]]) {
    test(`${gen}.x over ${transports[0]}: a packet over the limit stores nothing and affects nobody else`, async () => {
      const s = await scene(server, gen, transports);
      const before = await viewRoom(s.observer, s.room.roomId);
      s.actor.emit('add_message', { roomId: s.room.roomId, message: 'z'.repeat(3_000_000) });
      await sleep(1500);
      const after = await viewRoom(s.observer, s.room.roomId);
      assert.deepEqual(after.messages, before.messages, 'nothing stored');
      assert.ok(!s.seenByBystander.some(([e]) => e === 'add_message'), 'nothing broadcast');
      assert.ok(s.bystander.connected);
      const toBystander = once(s.bystander, 'add_message');
      await addMessage(s.owner, s.room.roomId, 'still here');
      assert.equal((await toBystander).content, 'still here');
      assert.deepEqual(await health(server), { status: 200, body: { status: 'ok' } });
    });
  }

  test('malformed Engine.IO / socket.io packets over polling crash nothing and affect nobody else', async () => {
    const s = await scene(server, 4, ['websocket']);
    const v4Garbage = [
      '42["add_message",', '42[', '42{}', '42[5]', '42[null]', '42[]', '42"add_message"', '4', '9', '',
      '43', '4399["x"]', '41/nope,', '40/nope,', '44', '46', '4/,42["my_id"]',
      `42["add_message",{"roomId":"${s.room.roomId}"}]\u001e42[`,
      '451-["add_message",{"_placeholder":true,"num":0}]', '\u001e\u001e\u001e', '0', '5', '6', '1',
      '42["join_room",{"roomId":"' + 'q'.repeat(10000) + '"}]', '42[{"a":1}]', '42[1,2,3]',
      '\u0000\u0001\u0002', '4\uD800', 'b4AAAA', 'bxyz',
    ];
    for (const body of v4Garbage) {
      const sid = await rawSession(server, 4);
      await rawPost(server, 4, sid, '40');
      await rawPost(server, 4, sid, body);
      assert.ok(server.alive, `server alive after ${JSON.stringify(body).slice(0, 80)}`);
    }
    const v3Garbage = [
      '5:42["x"', '99999:42[]', 'abc', '2:4', '0:', '3:42[', '1:', '12:42["x"]', ':::', '4:42[]2:4', '-1:42',
      '1:4', '3:451', '6:42[{}]', `${'9'.repeat(30)}:42`, '2:41', '8:40/nope,',
    ];
    for (const body of v3Garbage) {
      const sid = await rawSession(server, 3);
      await rawPost(server, 3, sid, body);
      assert.ok(server.alive, `server alive after EIO3 ${JSON.stringify(body)}`);
    }
    for (const eio of [3, 4]) {
      const sid = await rawSession(server, eio);
      await rawPost(server, eio, sid, Buffer.from([0, 1, 2, 255, 254, 4, 0, 0]), 'application/octet-stream');
      await rawGet(server, eio, 'no-such-sid');
      await rawPost(server, eio, 'no-such-sid', '42["my_id"]');
    }
    await stillWorking(server, s);
    const fresh = await connect(1, server);
    assert.equal(typeof await bubbleIdOf(fresh), 'string');
  });

  test('deeply nested payloads crash nothing and affect nobody else', async () => {
    for (const [gen, transports] of [[4, ['websocket']], [1, ['polling']]]) {
      const s = await scene(server, gen, transports);
      for (const depth of [200, 3000]) {
        let deep = 'x';
        for (let i = 0; i < depth; i++) deep = [deep];
        s.actor.emit('add_message', { roomId: s.room.roomId, message: 'nested', extra: deep });
        let deepObj = {};
        for (let i = 0; i < depth; i++) deepObj = { a: deepObj };
        s.actor.emit('create_room', deepObj);
      }
      await sleep(300);
      assert.ok(server.alive, 'server alive');
      assert.deepEqual(s.seenByBystander.filter(([e, p]) => !(e === 'add_message' && p?.content === 'nested')), []);
      await stillWorking(server, s);
      closeAll();
    }
    // Deeper than a JS client can serialise: raw packets.
    const s = await scene(server, 4, ['websocket']);
    for (const eio of [3, 4]) {
      const sid = await rawSession(server, eio);
      const deep = `${'['.repeat(100000)}${']'.repeat(100000)}`;
      const packet = `42["add_message",{"roomId":"${s.room.roomId}","message":${deep}}]`;
      if (eio === 4) {
        await rawPost(server, eio, sid, '40');
        await rawPost(server, eio, sid, packet);
      } else {
        await rawPost(server, eio, sid, `${packet.length}:${packet}`);
      }
      assert.ok(server.alive, `server alive after a 100000-deep array over EIO${eio}`);
    }
    await stillWorking(server, s);
  });

  test('a raw polling client gets its answer framed correctly', async () => {
    const sid = await rawSession(server, 4);
    assert.equal(await rawPost(server, 4, sid, '40'), 200);
    // The namespace CONNECT answer (and my_id) come on the next GET.
    const got = [];
    for (let i = 0; i < 5 && !got.some((p) => p.startsWith('42["my_id"')); i++) {
      const { status, body } = await rawGet(server, 4, sid);
      assert.equal(status, 200);
      got.push(...body.split('\u001e'));
    }
    assert.ok(got.some((p) => p.startsWith('40')), `CONNECT answer in ${got}`);
    assert.ok(got.some((p) => p.startsWith('42["my_id","')), `my_id in ${got}`);
    assert.equal(await rawPost(server, 4, sid, '421["list_rooms"]'), 200);
    const packets = [];
    for (let i = 0; i < 5 && !packets.some((p) => p.startsWith('431')); i++) {
      packets.push(...(await rawGet(server, 4, sid)).body.split('\u001e'));
    }
    const shown = packets.map((p) => p.slice(0, 40));
    assert.ok(packets.some((p) => p.startsWith('42["list_rooms",[')), `list_rooms in ${shown}`);
    assert.ok(packets.some((p) => p.startsWith('431[[')), `ack 1 with the list in ${shown}`);
  });
});
