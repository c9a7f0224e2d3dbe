// Any Unicode, emoji included, round-trips byte-exact on every transport, in particular over
// long-polling with socket.io-client 1.x (Engine.IO 3 frames payloads by character count).
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, collect, once, request, createRoom, joinRoom, viewRoom,
  listRooms, addMessage, waitUntil, transportOf, emitAck,
} from './harness.mjs';

const TEXTS = [
  'emoji \u{1F600}\u{1F44D}\u{1F3FD}\u{1F389}',
  'zwj family \u{1F469}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466} flag \u{1F1EB}\u{1F1F7} keycap 1\uFE0F\u20E3',
  'non-BMP \u{1D11E} \u{1D573}\u{1D58A}\u{1D591}\u{1D591}\u{1D594} \u{20731}\u{20771}',
  'Latin h\u00E9llo \u00F1 \u00DF \u00F8 \u03A9 \u0416',
  'CJK \u4E2D\u6587 \u65E5\u672C\u8A9E \uD55C\uAD6D\uC5B4',
  'RTL \u0627\u0644\u0639\u0631\u0628\u064A\u0629 \u05E2\u05D1\u05E8\u05D9\u05EA',
  'combining e\u0301 zero\u200Bwidth bom\uFEFF nbsp\u00A0 ',
  'JSON-ish "quotes" \\ backslash \n newline \t tab </script> \u2028 \u2029 \u0007',
  '12:34 looks like a polling length prefix 5:hello',
  '\u{1F600}'.repeat(1500),
];

function bytesEqual(actual, expected, what) {
  assert.equal(actual, expected, what);
  assert.ok(Buffer.from(actual, 'utf8').equals(Buffer.from(expected, 'utf8')), `${what}: bytes`);
}

describe('Unicode round trips', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [gen, transports] of [[1, ['polling']], [2, ['polling']], [4, ['polling']], [1, ['websocket']]]) {
    test(`${gen}.x over ${transports[0]}: messages, room names, names, reactions and reasons`, async () => {
      const sender = await connect(gen, server, { transports });
      const peers = [
        await connect(1, server, { transports: ['polling'] }),
        await connect(2, server, { transports: ['polling'] }),
        await connect(4, server, { transports: ['websocket'] }),
      ];
      const roomName = `Caf\u00E9 \u2615\u{1F30D} \u{1F469}\u200D\u{1F4BB}`;
      const roomDescription = `\u00BFQu\u00E9 tal? \u{1F914} \u4F60\u597D \u05E9\u05DC\u05D5\u05DD`;
      const room = await createRoom(sender, { roomName, roomDescription });
      bytesEqual(room.roomName, roomName, 'create_room roomName');
      bytesEqual(room.roomDescription, roomDescription, 'create_room roomDescription');
      for (const p of peers) await joinRoom(p, room.roomId);

      // Back to back, so that several packets share one polling response.
      const received = peers.map((p) => collect(p, 'add_message'));
      const echoes = collect(sender, 'add_message');
      for (const message of TEXTS) sender.emit('add_message', { roomId: room.roomId, message });
      await waitUntil(() => echoes.length >= TEXTS.length && received.every((r) => r.length >= TEXTS.length),
        8000, 'every message on every peer');
      TEXTS.forEach((text, i) => {
        bytesEqual(echoes[i].content, text, `echo ${i}`);
        bytesEqual(echoes[i].message, text, `echo ${i} .message`);
        received.forEach((r, j) => bytesEqual(r[i].content, text, `peer ${j} (${peers[j].gen}.x) message ${i}`));
        received.forEach((r, j) => bytesEqual(r[i].roomName, roomName, `peer ${j} roomName`));
      });

      for (const viewer of [sender, peers[0]]) {
        const v = await viewRoom(viewer, room.roomId);
        bytesEqual(v.roomName, roomName, 'view_room roomName');
        bytesEqual(v.roomDescription, roomDescription, 'view_room roomDescription');
        assert.deepEqual(v.messages.map((m) => m.content), [...TEXTS].reverse(), `view_room on ${viewer.gen}.x`);
        const listed = (await listRooms(viewer)).find((r) => r.roomId === room.roomId);
        bytesEqual(listed.roomName, roomName, 'list_rooms roomName');
        assert.deepEqual(listed.messages.map((m) => m.content), [...TEXTS].reverse(), 'list_rooms messages');
      }

      const newName = `Zo\u00EB \u{1F984}\u{1F308} \u674E`;
      const named = peers.map((p) => once(p, 'set_user_name'));
      await request(sender, 'set_user_name', { newName }, { reply: null });
      for (const n of named) bytesEqual((await n).newName, newName, 'set_user_name');

      const reaction = '\u{1F44D}\u{1F3FD}';
      const reacted = peers.map((p) => once(p, 'add_reaction'));
      const mine = await request(sender, 'add_reaction', { roomId: room.roomId, reaction, targetUser: peers[0].id },
        { match: (p) => p.sentByMe });
      bytesEqual(mine.reaction, reaction, 'add_reaction echo');
      for (const r of reacted) bytesEqual((await r).content, reaction, 'add_reaction');

      const reason = `\u{1F621} spam \u0441\u043F\u0430\u043C`;
      const reported = once(peers[1], 'report_user');
      await request(sender, 'report_user', { roomId: room.roomId, userToReport: peers[2].id, reason }, { reply: null });
      bytesEqual((await reported).reason, reason, 'report_user reason');
      assert.equal(transportOf(sender), transports[0], 'the sender stayed on its transport');
      assert.equal(transportOf(peers[0]), 'polling');
    });
  }

  test('4.x websocket to 1.x polling: emoji reach an old client intact', async () => {
    const old = await connect(1, server, { transports: ['polling'] });
    const modern = await connect(4, server, { transports: ['websocket'] });
    const room = await createRoom(modern, { roomName: '\u{1F525} hot take' });
    const joined = await joinRoom(old, room.roomId, [modern]);
    bytesEqual(joined.roomName, '\u{1F525} hot take', 'join_room roomName on 1.x polling');
    const got = collect(old, 'add_message');
    for (const text of TEXTS) await addMessage(modern, room.roomId, text);
    await waitUntil(() => got.length >= TEXTS.length, 5000, 'messages on the 1.x polling client');
    assert.deepEqual(got.map((m) => m.content), TEXTS);
    assert.equal(transportOf(old), 'polling');
  });

  for (const [gen, transports] of [[1, ['polling']], [4, ['websocket']]]) {
    test(`${gen}.x over ${transports[0]}: an emoji cut in half (lone surrogate) is invalid_message or replaced, never misread`, async () => {
      const a = await connect(gen, server, { transports });
      const b = await connect(4, server);
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      const ack = await emitAck(a, 'add_message', { roomId: room.roomId, message: 'cut \uD83D' });
      if (ack?.error) {
        assert.equal(ack.error.code, 'invalid_message',
          'the roomId was given and valid: the problem is the message text');
      } else {
        assert.equal(ack.content, 'cut \uFFFD', 'or it is stored with U+FFFD in place of the broken character');
      }
      assert.ok(a.connected, 'the sender stays connected');
      const ok = await addMessage(a, room.roomId, 'whole \u{1F600}');
      assert.equal(ok.content, 'whole \u{1F600}');
    });
  }
});
