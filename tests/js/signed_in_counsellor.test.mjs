// Signed-in counsellors on `/counsellor`: authentication, matching with users on `/`, chatting
// across namespaces, issues and moderation.
import { describe, test, before, after, afterEach } from 'node:test';
import { randomBytes } from 'node:crypto';

import {
  addCounsellor, assert, startServer, connect, closeAll, once, onceWhere, expectNone, request, expectError,
  createRoom, joinRoom, listRooms, addMessage, bubbleIdOf, within, waitUntil, collect, sleep,
  createCounsellorClient, postJson,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';

/** POST /auth; returns { status, body, cookie }. */
function signIn(server, username, password = PASSWORD) {
  return postJson(server, '/auth', { username, password });
}

/** A socket on `/counsellor`, not yet connected. `how`: { token } (4.x auth), { bearer } (header),
 * { cookie } (header). */
function counsellorClient(gen, server, how = {}, transports = undefined) {
  return createCounsellorClient(gen, server, how, { transports });
}

/** Connects, or rejects with the connect error's message. */
function connected(sock, ms = 5000) {
  return within(new Promise((resolve, reject) => {
    sock.once('connect', () => resolve(sock));
    sock.once('connect_error', (e) => reject(new Error(e?.message ?? String(e))));
    sock.once('error', (e) => reject(new Error(e?.message ?? String(e))));
  }), ms, `${sock.gen}.x /counsellor connect`);
}

/** Signs in a fresh account and brings one socket online on `/counsellor`. */
async function onlineCounsellor(server, gen = 4, name = 'Sam') {
  const username = `c_${randomBytes(4).toString('hex')}`;
  await addCounsellor(server, username, name, PASSWORD);
  const auth = await signIn(server, username);
  assert.equal(auth.status, 200, JSON.stringify(auth.body));
  const how = gen === 4 ? { token: auth.body.token } : { bearer: auth.body.token };
  const sock = await connected(counsellorClient(gen, server, how));
  const issues = once(sock, 'list_issues');
  await request(sock, 'counsellor_online', {});
  assert.ok(Array.isArray(await issues), 'going online sends list_issues');
  return { sock, auth, username, id: auth.body.counsellor.id, name };
}

describe('/counsellor authentication', { timeout: 90000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  test('no credentials, a bad token or a bad cookie: refused with unauthorized', async () => {
    await assert.rejects(connected(counsellorClient(4, server)), /unauthorized/);
    await assert.rejects(connected(counsellorClient(4, server, { token: 'nope' })), /unauthorized/);
    await assert.rejects(connected(counsellorClient(4, server, { bearer: 'nope' })), /unauthorized/);
    await assert.rejects(connected(counsellorClient(4, server, { cookie: 'bubble_session=forged' })), /unauthorized/);
  });

  test('wrong password: 401 unauthorized, same answer as an unknown user', async () => {
    const username = `c_${randomBytes(4).toString('hex')}`;
    await addCounsellor(server, username, 'Pat', PASSWORD);
    const wrong = await signIn(server, username, 'wrong password');
    const unknown = await signIn(server, 'nobody_here', 'wrong password');
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.equal(wrong.body.code, 'unauthorized');
    assert.deepEqual(wrong.body, unknown.body);
  });

  for (const [label, gen, via, transports] of [
    ['4.x auth token, websocket', 4, 'token', ['websocket']],
    ['4.x auth token, polling', 4, 'token', ['polling']],
    ['4.x session cookie', 4, 'cookie', undefined],
    ['1.x bearer header, polling', 1, 'bearer', ['polling']],
    ['1.x bearer header, websocket', 1, 'bearer', ['websocket']],
    ['1.x session cookie', 1, 'cookie', undefined],
  ]) {
    test(`accepted with ${label}; identity comes from the sign-in`, async () => {
      const username = `c_${randomBytes(4).toString('hex')}`;
      await addCounsellor(server, username, 'Robin', PASSWORD);
      const auth = await signIn(server, username);
      assert.equal(auth.status, 200);
      assert.equal(auth.body.counsellor.username, username);
      const how = via === 'cookie' ? { cookie: auth.cookie } : { [via]: auth.body.token };
      const sock = await connected(counsellorClient(gen, server, how, transports));
      assert.equal(await bubbleIdOf(sock), auth.body.counsellor.id, 'my_id is the account id');
      // A payload cannot claim another identity.
      await request(sock, 'counsellor_online', { counsellorId: 'someone-else', counsellorName: 'Fake' });
      const user = await connect(4, server);
      const matched = await request(user, 'find_counsellor', {});
      assert.equal(matched.counsellorId, auth.body.counsellor.id);
      assert.equal(matched.counsellorName, 'Robin');
    });
  }

  test('logout disconnects the counsellor and revokes the token', async () => {
    const c = await onlineCounsellor(server);
    const gone = once(c.sock, 'disconnect', 5000);
    const res = await fetch(`${server.url}/auth/logout`, {
      method: 'POST', headers: { Authorization: `Bearer ${c.auth.body.token}` },
    });
    assert.equal(res.status, 204);
    await gone;
    await assert.rejects(connected(counsellorClient(4, server, { token: c.auth.body.token })), /unauthorized/);
  });

  test('a session survives a server restart', async () => {
    const own = await startServer();
    try {
      const username = `c_${randomBytes(4).toString('hex')}`;
      await addCounsellor(own, username, 'Lee', PASSWORD);
      const auth = await signIn(own, username);
      await own.restart();
      const sock = await connected(counsellorClient(4, own, { cookie: auth.cookie }));
      assert.equal(await bubbleIdOf(sock), auth.body.counsellor.id);
    } finally {
      closeAll();
      await own.stop();
    }
  });
});

describe('matching and chatting across namespaces', { timeout: 90000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  for (const [ug, cg] of [[1, 4], [4, 1], [4, 4]]) {
    test(`${ug}.x user on / and ${cg}.x counsellor on /counsellor chat both ways`, async () => {
      const c = await onlineCounsellor(server, cg, 'Alex');
      const user = await connect(ug, server);
      const userBubble = await bubbleIdOf(user);
      const toCounsellor = once(c.sock, 'find_counsellor');
      const room = await request(user, 'find_counsellor', {});
      assert.equal(room.roomType, 'PRIVATE');
      assert.equal(room.roomName, 'Chat with counsellor');
      assert.equal(room.userLimit, 2);
      assert.equal(room.numUsers, 2);
      assert.equal(room.counsellorId, c.id);
      assert.equal(room.counsellorName, 'Alex');
      const seen = await toCounsellor;
      assert.equal(seen.roomId, room.roomId);
      assert.equal(seen.userId, user.id);
      assert.equal(seen.bubbleId, userBubble);

      const atCounsellor = onceWhere(c.sock, 'add_message', (m) => m.content === 'hello from user');
      await addMessage(user, room.roomId, 'hello from user');
      assert.equal((await atCounsellor).sentByMe, false);
      const atUser = onceWhere(user, 'add_message', (m) => m.content === 'hello from counsellor 😀');
      const mine = await addMessage(c.sock, room.roomId, 'hello from counsellor 😀');
      assert.equal(mine.sentByMe, true);
      assert.equal((await atUser).bubbleId, c.id);

      const typing = once(user, 'typing');
      c.sock.emit('typing', { roomId: room.roomId });
      assert.equal((await typing).bubbleId, c.id);
      const reaction = once(user, 'add_reaction');
      await request(c.sock, 'add_reaction', { roomId: room.roomId, reaction: 'CHEER', targetUser: user.id });
      assert.equal((await reaction).targetUserBubbleId, userBubble);
      // Aimed at the counsellor by socket id: a 1.x client's socket on / has the same id, but
      // only the one on /counsellor is in the room.
      const thanked = once(c.sock, 'add_reaction');
      await request(user, 'add_reaction', { roomId: room.roomId, reaction: 'THANK', targetUser: mine.userId });
      assert.equal((await thanked).targetUserBubbleId, c.id);

      const renamed = once(c.sock, 'set_user_name');
      await request(user, 'set_user_name', { newName: 'Kim 🌱' }, { reply: null });
      assert.deepEqual(await renamed, { userId: user.id, newName: 'Kim 🌱', bubbleId: userBubble });

      // A third person cannot get in.
      const stranger = await connect(4, server);
      await expectError(stranger, 'join_room', { roomId: room.roomId }, 'room_full');
      await expectError(stranger, 'view_room', { roomId: room.roomId }, 'user_not_in_room');

      const exit = once(c.sock, 'exit_room');
      await request(user, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
      assert.equal((await exit).userId, user.id);
    });
  }

  test('a counsellor with several sockets: a later one tells nobody; an exit reaches every one', async () => {
    const c = await onlineCounsellor(server, 4, 'Jo');
    const token = c.auth.body.token;
    // Connected before the match: never in the room.
    const early = await connected(counsellorClient(1, server, { bearer: token }, ['websocket']));
    await early.myIdPromise; // my_id comes once its rooms are restored
    const user = await connect(4, server);
    const room = await request(user, 'find_counsellor', {});
    const userJoins = collect(user, 'join_room');
    // Connected after the match: put back into the room, but the counsellor never left it.
    const late = await connected(counsellorClient(4, server, { token }));
    await waitUntil(async () => (await request(late, 'my_rooms', {})).includes(room.roomId), 3000,
      'the later socket is in the room');
    await sleep(300);
    userJoins.stop();
    assert.deepEqual([...userJoins], [], 'no join_room: the counsellor was in the room already');

    const exits = collect(user, 'exit_room');
    const earlyExit = once(early, 'i_exit');
    const lateExit = once(late, 'i_exit');
    const mine = await request(c.sock, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
    assert.deepEqual(mine, { roomId: room.roomId, userId: c.sock.id, bubbleId: c.id });
    assert.deepEqual(await earlyExit, { roomId: room.roomId, userId: early.id, bubbleId: c.id });
    assert.deepEqual(await lateExit, { roomId: room.roomId, userId: late.id, bubbleId: c.id });
    await sleep(300);
    exits.stop();
    assert.deepEqual([...exits], [{ roomId: room.roomId, userId: c.sock.id, bubbleId: c.id, user: c.sock.id }],
      'the user hears one exit_room');
  });

  test('the least-loaded counsellor is chosen, and one who went offline never is', async () => {
    const a = await onlineCounsellor(server, 4, 'A');
    const b = await onlineCounsellor(server, 4, 'B');
    const picks = [];
    for (let i = 0; i < 4; i++) {
      const user = await connect(4, server);
      picks.push((await request(user, 'find_counsellor', {})).counsellorId);
    }
    assert.equal(picks.filter((id) => id === a.id).length, 2, `spread: ${picks}`);
    assert.equal(picks.filter((id) => id === b.id).length, 2, `spread: ${picks}`);
    assert.notEqual(picks[0], picks[1], 'the second request goes to the other counsellor');

    await request(a.sock, 'counsellor_offline', {});
    for (let i = 0; i < 2; i++) {
      const user = await connect(4, server);
      assert.equal((await request(user, 'find_counsellor', {})).counsellorId, b.id);
    }
    b.sock.close();
    await waitUntil(async () => {
      const probe = await connect(4, server);
      const r = await new Promise((res) => probe.emit('find_counsellor', {}, res));
      return r?.error?.code === 'counsellor_unavailable';
    }, 5000, 'no counsellor left after disconnect');
  });
});

describe('issues and moderation', { timeout: 90000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  test('missed, requested and flagged issues; resolving one takes it off the list', async () => {
    const lonely = await connect(4, server);
    await expectError(lonely, 'find_counsellor', {}, 'counsellor_unavailable');
    const c = await onlineCounsellor(server);
    const other = await onlineCounsellor(server, 4, 'Other');
    const user = await connect(4, server);
    await request(user, 'find_counsellor', {});

    const reporter = await connect(4, server);
    const troll = await connect(1, server);
    const room = await createRoom(reporter);
    await joinRoom(troll, room.roomId, [reporter]);
    await request(reporter, 'report_user', { roomId: room.roomId, userToReport: troll.id, reason: 'rude' }, { reply: null });

    let issues = await request(c.sock, 'list_issues', {});
    const types = issues.map((i) => i.issueType).sort();
    assert.deepEqual(types.filter((t) => t !== 'USER_REQUESTED'), ['USER_FLAGGED', 'USER_MISSED']);
    const mine = issues.filter((i) => i.issueType === 'USER_REQUESTED');
    const theirs = (await request(other.sock, 'list_issues', {})).filter((i) => i.issueType === 'USER_REQUESTED');
    assert.equal(mine.length + theirs.length, 1, 'the request is listed for the matched counsellor only');
    const flagged = issues.find((i) => i.issueType === 'USER_FLAGGED');
    assert.equal(flagged.userId, troll.id);
    assert.equal(flagged.reason, 'rude');
    assert.equal(flagged.roomId, room.roomId);

    const resolved = await request(c.sock, 'resolve_issue', { issueId: flagged.id });
    assert.equal(resolved.id, flagged.id);
    issues = await request(c.sock, 'list_issues', {});
    assert.ok(!issues.some((i) => i.id === flagged.id), 'resolved issues leave the list');

    await expectError(c.sock, 'resolve_issue', {}, 'no_issue_id');
    await expectError(c.sock, 'resolve_issue', { issueId: 'x' }, 'invalid_issue_id');
    await expectError(c.sock, 'resolve_issue', { issueId: 999999 }, 'issue_not_found');
    await expectError(user, 'resolve_issue', { issueId: flagged.id }, 'unauthorized');
  });

  test('close_room empties and hides a room; set_room_type features one', async () => {
    const c = await onlineCounsellor(server);
    const a = await connect(1, server);
    const b = await connect(4, server);
    const room = await createRoom(a);
    await joinRoom(b, room.roomId, [a]);
    const other = await createRoom(b);

    await expectError(a, 'close_room', { roomId: room.roomId }, 'unauthorized');
    await expectError(a, 'set_room_type', { roomId: room.roomId, roomType: 'HOT' }, 'unauthorized');

    const hot = await request(c.sock, 'set_room_type', { roomId: other.roomId, roomType: 'HOT' });
    assert.equal(hot.roomType, 'HOT');
    assert.equal((await listRooms(a))[0].roomId, other.roomId, 'HOT rooms come first');
    await expectError(c.sock, 'set_room_type', { roomId: other.roomId, roomType: 'PRIVATE' }, 'invalid_room_type');

    const aExit = once(a, 'i_exit');
    const bExit = once(b, 'i_exit');
    const aHears = once(a, 'exit_room');
    const closed = await request(c.sock, 'close_room', { roomId: room.roomId });
    assert.equal(closed.isOpen, false);
    assert.equal((await aExit).roomId, room.roomId);
    assert.equal((await bExit).userId, b.id);
    assert.equal((await aHears).userId, b.id);
    assert.ok(!(await listRooms(a)).some((r) => r.roomId === room.roomId), 'closed rooms are not listed');
    await expectError(b, 'join_room', { roomId: room.roomId }, 'room_closed');
    await expectError(b, 'add_message', { roomId: room.roomId, message: 'hi' }, 'user_not_in_room');
    await expectNone(a, 'add_message', 200);
  });
});
