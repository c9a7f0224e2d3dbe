// Every event of the spec on `/` (except the counsellor ones, see counsellor_root.test.mjs), driven by
// socket.io-client 1.x and 4.x.
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, closeClient, once, onceWhere, collect, expectNone,
  request, expectError, emitAck, createRoom, joinRoom, viewRoom, listRooms, myRooms, addMessage,
  bubbleIdOf, newToken, sleep, waitUntil, UUID_V4, NO_PAYLOAD,
} from './harness.mjs';
import {
  assertRoom, assertMessage, assertKeys, assertHasKeys, assertIso, assertNewestFirst, CATEGORIES,
  ADD_MESSAGE_KEYS, ADD_REACTION_KEYS, PRESENCE_KEYS,
} from './shapes.mjs';

for (const gen of [1, 4]) {
  describe(`events on / with socket.io-client ${gen}.x`, { timeout: 60000 }, () => {
    let server;
    before(async () => { server = await startServer(); });
    after(async () => { await server?.stop(); });
    afterEach(closeAll);

    const client = (opts) => connect(gen, server, opts);

    test('my_id: sent on connect, answered on request, stable per token, random without one', async () => {
      const token = newToken();
      const a = await client({ token });
      const bid = await bubbleIdOf(a);
      assert.equal(typeof bid, 'string');
      assert.ok(bid.length > 0, 'bubbleId must not be empty');
      assert.notEqual(bid, token, 'the bubbleId must not reveal the token');
      assert.equal(await request(a, 'my_id', {}), bid);
      assert.equal(await request(a, 'my_id', NO_PAYLOAD), bid);

      const a2 = await client({ token });
      assert.equal(await bubbleIdOf(a2), bid, 'same token, same bubbleId');
      assert.notEqual(a2.id, a.id, 'each socket has its own id');

      const other = await client({ token: newToken() });
      const none1 = await client();
      const none2 = await client();
      const bad1 = await client({ token: 'not-a-uuid' });
      const bad2 = await client({ token: 'not-a-uuid' });
      const ids = [bid, await bubbleIdOf(other), await bubbleIdOf(none1), await bubbleIdOf(none2),
        await bubbleIdOf(bad1), await bubbleIdOf(bad2)];
      assert.equal(new Set(ids).size, ids.length, `all distinct: ${ids}`);
    });

    test('create_room: defaults and the full Room payload', async () => {
      const a = await client();
      const bid = await bubbleIdOf(a);
      const room = await request(a, 'create_room', { roomName: 'Defaults', user: 'somebody-else' });
      assertRoom(room, {
        roomName: 'Defaults', roomDescription: '', roomType: 'PUBLIC', userLimit: 21, categories: [],
        numUsers: 1, isOpen: true, createdBy: a.id, createdByBubbleId: bid, messages: [],
        participants: [a.id],
      }, 'create_room');
      assert.deepEqual(await myRooms(a), [room.roomId]);
      const viewed = await viewRoom(a, room.roomId);
      assertRoom(viewed, {
        roomId: room.roomId, roomName: 'Defaults', numUsers: 1, createdBy: a.id, createdByBubbleId: bid,
        participants: [a.id], messages: [], createdAt: room.createdAt,
      }, 'view_room');
    });

    test('create_room: description, userLimit forms, categories, maximum lengths', async () => {
      const a = await client();
      const full = await createRoom(a, {
        roomName: 'N'.repeat(200), roomDescription: 'd'.repeat(1000), userLimit: 5, categories: CATEGORIES,
      });
      assertRoom(full, {
        roomName: 'N'.repeat(200), roomDescription: 'd'.repeat(1000), userLimit: 5, categories: CATEGORIES,
      });
      const cases = [[2, 2], [100, 100], ['7', 7], ['', 21], [null, 21]];
      for (const [userLimit, expected] of cases) {
        const r = await createRoom(a, { userLimit });
        assert.equal(r.userLimit, expected, `userLimit ${JSON.stringify(userLimit)}`);
      }
      const nullDesc = await createRoom(a, { roomDescription: null, categories: [] });
      assert.equal(nullDesc.roomDescription, '');
      assert.deepEqual(nullDesc.categories, []);
      const some = await createRoom(a, { categories: ['Advice', 'Rant'] });
      assert.deepEqual([...some.categories].sort(), ['Advice', 'Rant']);
      // A person may own several rooms; my_rooms lists them in join order.
      const ids = (await myRooms(a));
      assert.equal(ids.length, 8);
      assert.equal(ids[0], full.roomId);
      assert.equal(ids[7], some.roomId);
    });

    test('join_room: others get {roomId,userId,bubbleId,user}; the joiner gets the Room', async () => {
      const a = await client();
      const b = await client();
      const aBid = await bubbleIdOf(a);
      const bBid = await bubbleIdOf(b);
      const room = await createRoom(a, { roomDescription: 'about things', categories: ['Funny'] });
      const m1 = await addMessage(a, room.roomId, 'first');
      const m2 = await addMessage(a, room.roomId, 'second');

      const othersGet = once(a, 'join_room');
      const joined = await joinRoom(b, room.roomId);
      const other = await othersGet;
      assertKeys(other, PRESENCE_KEYS, 'join_room to others');
      assert.deepEqual(other, { roomId: room.roomId, userId: b.id, bubbleId: bBid, user: b.id });

      assertRoom(joined, {
        roomId: room.roomId, roomName: room.roomName, roomDescription: 'about things', categories: ['Funny'],
        roomType: 'PUBLIC', numUsers: 2, userLimit: 21, createdBy: a.id, createdByBubbleId: aBid,
        isOpen: true, userId: b.id, bubbleId: bBid,
      }, 'join_room to joiner');
      assertHasKeys(joined, ['userId', 'bubbleId', 'messages', 'participants'], 'join_room to joiner');
      assert.deepEqual([...joined.participants].sort(), [a.id, b.id].sort());
      assert.deepEqual(joined.messages.map((m) => m.id), [m2.id, m1.id], 'messages newest first');
      joined.messages.forEach((m, i) => assertMessage(m, { roomRoomId: room.roomId, userId: a.id, bubbleId: aBid }, `messages[${i}]`));
      assertNewestFirst(joined.messages);
      assert.deepEqual(await myRooms(b), [room.roomId]);
      const viewed = await viewRoom(b, room.roomId);
      assert.equal(viewed.numUsers, 2);
    });

    test('join_room when already in the room: joiner payload again, nothing changes, nobody told', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      const aSees = collect(a, 'join_room');
      const again = await joinRoom(b, room.roomId);
      assertRoom(again, { roomId: room.roomId, numUsers: 2, userId: b.id });
      assert.deepEqual([...again.participants].sort(), [a.id, b.id].sort());
      const selfAgain = await joinRoom(a, room.roomId);
      assert.equal(selfAgain.numUsers, 2);
      await sleep(200);
      aSees.stop();
      assert.deepEqual(aSees.filter((p) => !Array.isArray(p.messages)), [], 'others are not told about a repeated join');
      assert.deepEqual(await myRooms(b), [room.roomId]);
      assert.equal((await viewRoom(a, room.roomId)).numUsers, 2);
    });

    test('join_room: room_full beyond userLimit, nothing changes', async () => {
      const a = await client();
      const b = await client();
      const c = await client();
      const room = await createRoom(a, { userLimit: 2 });
      await joinRoom(b, room.roomId, [a]);
      const aSees = collect(a, 'join_room');
      await expectError(c, 'join_room', { roomId: room.roomId }, 'room_full');
      await expectError(c, 'join_room', { roomId: room.roomId }, 'room_full', { ack: false });
      aSees.stop();
      assert.equal(aSees.length, 0, 'nobody is told about a refused join');
      const v = await viewRoom(c, room.roomId);
      assert.equal(v.numUsers, 2);
      assert.deepEqual([...v.participants].sort(), [a.id, b.id].sort());
      assert.deepEqual(await myRooms(c), []);
      await expectError(c, 'add_message', { roomId: room.roomId, message: 'hi' }, 'user_not_in_room');
    });

    test('exit_room: i_exit to the sender, exit_room to others, membership ends', async () => {
      const a = await client();
      const bToken = newToken();
      const b = await client({ token: bToken });
      const bBid = await bubbleIdOf(b);
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);

      const othersGet = once(a, 'exit_room');
      const iExit = once(b, 'i_exit');
      const ack = await emitAck(b, 'exit_room', { roomId: room.roomId });
      const mine = await iExit;
      assertKeys(mine, ['roomId', 'userId', 'bubbleId'], 'i_exit');
      assert.deepEqual(mine, { roomId: room.roomId, userId: b.id, bubbleId: bBid });
      assert.deepEqual(ack, mine, 'the ack carries the i_exit payload');
      const theirs = await othersGet;
      assertKeys(theirs, PRESENCE_KEYS, 'exit_room to others');
      assert.deepEqual(theirs, { roomId: room.roomId, userId: b.id, bubbleId: bBid, user: b.id });
      await expectNone(b, 'exit_room', 100);

      assert.deepEqual(await myRooms(b), []);
      const v = await viewRoom(a, room.roomId);
      assert.equal(v.numUsers, 1);
      assert.deepEqual(v.participants, [a.id]);
      assert.equal(v.isOpen, true, 'a room with a member left stays open');
      await expectError(b, 'exit_room', { roomId: room.roomId }, 'user_not_in_room');
      await expectError(b, 'add_message', { roomId: room.roomId, message: 'x' }, 'user_not_in_room');

      // No longer a member: reconnecting with the token does not put the person back.
      closeClient(b);
      await expectNone(a, 'exit_room', 200);
      const b2 = await client({ token: bToken });
      assert.deepEqual(await myRooms(b2), []);
      await expectNone(a, 'join_room', 100);
    });

    test('exit_room by the last member closes the room', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a);
      await request(a, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
      await expectError(b, 'join_room', { roomId: room.roomId }, 'room_closed');
      const list = await listRooms(b);
      assert.ok(!list.some((r) => r.roomId === room.roomId), 'a closed room is not listed');
      const v = await viewRoom(b, room.roomId);
      assert.equal(v.isOpen, false);
      assert.equal(v.numUsers, 0);
    });

    test('list_rooms: array of open rooms with messages and participants, lastActive ascending', async () => {
      const a = await client();
      const b = await client();
      const r1 = await createRoom(a, { roomName: 'list one' });
      await sleep(5);
      const r2 = await createRoom(a, { roomName: 'list two' });
      await sleep(5);
      const r3 = await createRoom(b, { roomName: 'list three' });
      await sleep(5);
      const msg = await addMessage(a, r1.roomId, 'bump r1');
      const closed = await createRoom(b, { roomName: 'to close' });
      await request(b, 'exit_room', { roomId: closed.roomId }, { reply: 'i_exit' });

      for (const payload of [{}, NO_PAYLOAD, null, 'x']) {
        const list = await request(b, 'list_rooms', payload);
        assert.ok(Array.isArray(list), 'list_rooms payload is an array');
        list.forEach((r, i) => {
          assertRoom(r, {}, `list_rooms[${i}]`);
          assert.ok(Array.isArray(r.messages), `list_rooms[${i}].messages`);
          assert.ok(Array.isArray(r.participants), `list_rooms[${i}].participants`);
          assert.equal(r.isOpen, true, 'only open rooms');
          assert.notEqual(r.roomType, 'PRIVATE');
        });
        const ours = list.filter((r) => [r1, r2, r3].some((x) => x.roomId === r.roomId));
        assert.deepEqual(ours.map((r) => r.roomName), ['list two', 'list three', 'list one'],
          'rooms ordered by lastActive ascending');
        assert.ok(!list.some((r) => r.roomId === closed.roomId), 'closed room not listed');
        const l1 = list.find((r) => r.roomId === r1.roomId);
        assert.deepEqual(l1.messages.map((m) => m.id), [msg.id]);
        assertMessage(l1.messages[0], { content: 'bump r1', userId: a.id, messageType: 'MESSAGE' });
        assert.deepEqual(l1.participants, [a.id]);
        assert.equal(l1.numUsers, 1);
        assert.ok(l1.lastActive >= msg.createdAt, 'add_message moves lastActive');
        const sorted = list.filter((r) => r.roomType !== 'HOT').map((r) => r.lastActive);
        assert.deepEqual(sorted, [...sorted].sort(), 'non-HOT rooms in lastActive ascending order');
      }
    });

    test('view_room: Room with messages and participants, also for a non-member', async () => {
      const a = await client();
      const b = await client();
      const outsider = await client();
      const room = await createRoom(a, { roomDescription: 'v' });
      await joinRoom(b, room.roomId, [a]);
      const m = await addMessage(b, room.roomId, 'hello view');
      const v = await viewRoom(outsider, room.roomId);
      assertRoom(v, { roomId: room.roomId, roomDescription: 'v', numUsers: 2, isOpen: true }, 'view_room');
      assert.deepEqual([...v.participants].sort(), [a.id, b.id].sort());
      assert.equal(v.messages.length, 1);
      assertMessage(v.messages[0], {
        id: m.id, content: 'hello view', userId: b.id, bubbleId: await bubbleIdOf(b), roomRoomId: room.roomId,
        messageType: 'MESSAGE', targetUser: null, targetUserBubbleId: null, createdAt: m.createdAt,
      });
      assert.deepEqual(await myRooms(outsider), [], 'viewing does not join');
      // Room ids are case-insensitive.
      const upper = await viewRoom(outsider, room.roomId.toUpperCase());
      assert.equal(upper.roomId, room.roomId, 'ids the server emits are lowercase');
    });

    test('typing / stop_typing: others get {roomId,userId,bubbleId,user}, nothing stored', async () => {
      const a = await client();
      const b = await client();
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      const bBid = await bubbleIdOf(b);
      for (const event of ['typing', 'stop_typing']) {
        const got = once(a, event);
        const selfGot = collect(b, event);
        await request(b, event, { roomId: room.roomId }, { reply: null });
        const p = await got;
        assertKeys(p, PRESENCE_KEYS, event);
        assert.deepEqual(p, { roomId: room.roomId, userId: b.id, bubbleId: bBid, user: b.id });
        await sleep(50);
        selfGot.stop();
        assert.equal(selfGot.length, 0, `the sender does not get its own ${event}`);
        // Without an ack too.
        const got2 = once(a, event);
        b.emit(event, { roomId: room.roomId });
        assert.equal((await got2).userId, b.id);
      }
      assert.deepEqual((await viewRoom(a, room.roomId)).messages, [], 'typing is never stored');
    });

    test('add_message: exact payloads to the sender and others, stored, lastActive moves', async () => {
      const a = await client();
      const b = await client();
      const aBid = await bubbleIdOf(a);
      const room = await createRoom(a, { roomName: 'Msg room' });
      await joinRoom(b, room.roomId, [a]);

      const othersGet = once(b, 'add_message');
      const mine = await addMessage(a, room.roomId, 'hello there');
      const theirs = await othersGet;
      for (const [p, sentByMe, who] of [[mine, true, 'sender'], [theirs, false, 'others']]) {
        assertKeys(p, ADD_MESSAGE_KEYS, `add_message to ${who}`);
        assertMessage(p, {
          userId: a.id, bubbleId: aBid, messageType: 'MESSAGE', content: 'hello there',
          roomRoomId: room.roomId, roomId: room.roomId, targetUser: null, targetUserBubbleId: null,
          roomName: 'Msg room', sentByMe, user: a.id, message: 'hello there',
        }, `add_message to ${who}`);
      }
      assert.deepEqual({ ...theirs, sentByMe: true }, mine, 'same message to everyone but sentByMe');
      // Without an ack: same result.
      const othersGet2 = once(b, 'add_message');
      const mine2P = onceWhere(a, 'add_message', (p) => p.sentByMe === true);
      a.emit('add_message', { roomId: room.roomId, message: 'no ack' });
      const [mine2, theirs2] = await Promise.all([mine2P, othersGet2]);
      assert.equal(theirs2.content, 'no ack');
      assert.equal(mine2.id, theirs2.id);
      assert.ok(mine2.createdAt > mine.createdAt);

      const v = await viewRoom(b, room.roomId);
      assert.deepEqual(v.messages.map((m) => m.id), [mine2.id, mine.id]);
      assertMessage(v.messages[1], {
        id: mine.id, content: 'hello there', userId: a.id, bubbleId: aBid, createdAt: mine.createdAt,
      }, 'stored message');
      assert.ok(v.lastActive >= mine2.createdAt, 'lastActive is at least the newest message');
      assert.ok(v.lastActive > room.lastActive, 'lastActive moved');
      // 3000 characters is the maximum.
      const long = 'm'.repeat(3000);
      assert.equal((await addMessage(a, room.roomId, long)).content, long);
    });

    test('add_reaction: stored REACTION, targetUserBubbleId resolved, exact payloads', async () => {
      const a = await client();
      const b = await client();
      const aBid = await bubbleIdOf(a);
      const bBid = await bubbleIdOf(b);
      const room = await createRoom(a, { roomName: 'React room' });
      await joinRoom(b, room.roomId, [a]);
      const match = (p) => p.sentByMe === true;

      // targetUser is a socket id.
      let othersGet = once(b, 'add_reaction');
      const mine = await request(a, 'add_reaction', { roomId: room.roomId, reaction: 'THANK', targetUser: b.id }, { match });
      const theirs = await othersGet;
      for (const [p, sentByMe, who] of [[mine, true, 'sender'], [theirs, false, 'others']]) {
        assertKeys(p, ADD_REACTION_KEYS, `add_reaction to ${who}`);
        assertMessage(p, {
          userId: a.id, bubbleId: aBid, messageType: 'REACTION', content: 'THANK', reaction: 'THANK',
          roomRoomId: room.roomId, roomId: room.roomId, targetUser: b.id, targetUserBubbleId: bBid, roomName: 'React room',
          user: a.id, sentByMe,
        }, `add_reaction to ${who}`);
      }
      assert.equal(theirs.id, mine.id);

      // targetUser is a member's bubbleId.
      othersGet = once(b, 'add_reaction');
      const byBid = await request(a, 'add_reaction', { roomId: room.roomId, reaction: 'CHEER', targetUser: bBid }, { match });
      assert.equal(byBid.targetUser, bBid);
      assert.equal(byBid.targetUserBubbleId, bBid);
      await othersGet;

      // An explicit targetUserBubbleId wins; any string up to 50 characters is a reaction.
      const custom = 'r'.repeat(50);
      const explicit = await request(b, 'add_reaction',
        { roomId: room.roomId, reaction: custom, targetUser: a.id, targetUserBubbleId: aBid }, { match });
      assert.equal(explicit.targetUserBubbleId, aBid);
      assert.equal(explicit.content, custom);

      // A target that is neither a socket nor a member's bubbleId has no bubbleId.
      const unknown = await request(a, 'add_reaction', { roomId: room.roomId, reaction: 'ENCOURAGE', targetUser: 'somebody-gone' }, { match });
      assert.equal(unknown.targetUser, 'somebody-gone');
      assert.equal(unknown.targetUserBubbleId, null);

      const v = await viewRoom(a, room.roomId);
      assert.deepEqual(v.messages.map((m) => m.id), [unknown.id, explicit.id, byBid.id, mine.id]);
      assertMessage(v.messages[3], {
        messageType: 'REACTION', content: 'THANK', targetUser: b.id, targetUserBubbleId: bBid,
      }, 'stored reaction');
      assertNewestFirst(v.messages);
      assert.ok(v.lastActive >= explicit.createdAt, 'add_reaction updates lastActive');
    });

    test('set_user_name: others in every room of the sender are told, nobody else', async () => {
      const a = await client();
      const b = await client();
      const c = await client();
      const stranger = await client();
      const aBid = await bubbleIdOf(a);
      const r1 = await createRoom(b);
      const r2 = await createRoom(c);
      await joinRoom(a, r1.roomId, [b]);
      await joinRoom(a, r2.roomId, [c]);
      const bGets = collect(b, 'set_user_name');
      const cGets = collect(c, 'set_user_name');
      const aGets = collect(a, 'set_user_name');
      const strangerGets = collect(stranger, 'set_user_name');
      const name = 'n'.repeat(100);
      await request(a, 'set_user_name', { newName: name }, { reply: null });
      await waitUntil(() => bGets.length >= 1 && cGets.length >= 1, 3000, 'set_user_name to b and c')
        .catch(() => {});
      await sleep(150);
      for (const g of [bGets, cGets, aGets, strangerGets]) g.stop();
      assert.equal(bGets.length, 1, 'b (shares r1) is told once');
      assert.equal(cGets.length, 1, 'c (shares r2) is told once');
      assertKeys(bGets[0], ['userId', 'newName', 'bubbleId'], 'set_user_name');
      assert.deepEqual(bGets[0], { userId: a.id, newName: name, bubbleId: aBid });
      assert.deepEqual(cGets[0], bGets[0]);
      assert.equal(aGets.length, 0, 'the sender is not told');
      assert.equal(strangerGets.length, 0, 'a socket in no shared room is not told');
      // Without an ack.
      const again = once(b, 'set_user_name');
      a.emit('set_user_name', { newName: 'Second' });
      assert.equal((await again).newName, 'Second');
    });

    test('report_user: others get {roomId,reportedUserId,reason}; a USER_FLAGGED issue is listed', async () => {
      const a = await client();
      const b = await client();
      const c = await client();
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      await joinRoom(c, room.roomId, [a, b]);
      const bGets = once(b, 'report_user');
      const cGets = once(c, 'report_user');
      const aGets = collect(a, 'report_user');
      const reason = `spam ${newToken()}`;
      await request(a, 'report_user', { roomId: room.roomId, userToReport: b.id, reason }, { reply: null });
      for (const p of [await bGets, await cGets]) {
        assertKeys(p, ['roomId', 'reportedUserId', 'reason'], 'report_user');
        assert.deepEqual(p, { roomId: room.roomId, reportedUserId: b.id, reason });
      }
      await sleep(50);
      aGets.stop();
      assert.equal(aGets.length, 0, 'the reporter is not told');

      const noReason = once(c, 'report_user');
      await request(a, 'report_user', { roomId: room.roomId, userToReport: b.id }, { reply: null });
      const nr = await noReason;
      assertKeys(nr, ['roomId', 'reportedUserId', 'reason'], 'report_user without reason');
      assert.equal(nr.reportedUserId, b.id);

      const issues = await request(c, 'list_issues', {});
      assert.ok(Array.isArray(issues));
      const flagged = issues.filter((i) => i.issueType === 'USER_FLAGGED' && i.reason === reason);
      assert.equal(flagged.length, 1, `one USER_FLAGGED issue with the reason in ${JSON.stringify(issues).slice(0, 500)}`);
      assertHasKeys(flagged[0], ['id', 'issueType', 'userId', 'bubbleId', 'counsellorId', 'roomId', 'reason', 'createdAt', 'updatedAt'], 'issue');
      assert.equal(flagged[0].roomId, room.roomId);
      assertIso(flagged[0].createdAt, 'issue.createdAt');

      // Someone connected but not in the room cannot be reported.
      const outsider = await client();
      await expectError(a, 'report_user', { roomId: room.roomId, userToReport: outsider.id }, 'no_user_to_report', { reply: null });
      await expectError(a, 'report_user', { roomId: room.roomId }, 'no_user_to_report', { reply: null });
    });

    test('my_rooms: room ids in join order, never the socket id', async () => {
      const a = await client();
      const b = await client();
      assert.deepEqual(await myRooms(a), []);
      assert.deepEqual(await request(a, 'my_rooms', NO_PAYLOAD), []);
      const r1 = await createRoom(b);
      const r2 = await createRoom(b);
      const r3 = await createRoom(a);
      await joinRoom(a, r2.roomId);
      await joinRoom(a, r1.roomId);
      const mine = await myRooms(a);
      assert.deepEqual(mine, [r3.roomId, r2.roomId, r1.roomId]);
      assert.ok(!mine.includes(a.id));
      mine.forEach((id) => assert.match(id, UUID_V4));
    });

    test('register_push / registerPush: {} to the sender for every platform form', async () => {
      const a = await client();
      for (const [event, payload] of [
        ['register_push', { pushToken: `tok-${newToken()}` }],
        ['register_push', { pushToken: `tok-${newToken()}`, platform: 'fcm' }],
        ['register_push', { pushToken: `tok-${newToken()}`, platform: 'android' }],
        ['register_push', { pushToken: `tok-${newToken()}`, platform: 'apns' }],
        ['register_push', { pushToken: `tok-${newToken()}`, platform: 'ios' }],
        ['registerPush', { pushToken: `tok-${newToken()}`, platform: 'ios' }],
      ]) {
        const got = await request(a, event, payload, { reply: 'register_push' });
        assert.deepEqual(got, {}, `${event} ${JSON.stringify(payload)}`);
      }
      await expectError(a, 'register_push', { pushToken: 'x', platform: 'windows' }, 'invalid_platform', { reply: 'register_push' });
      await expectError(a, 'registerPush', { pushToken: '' }, 'invalid_push_token', { reply: 'register_push' });
    });

    test('identity comes from the socket: the `user`/`userId` keys old apps send are ignored', async () => {
      const a = await client();
      const b = await client();
      const victim = await client();
      const aBid = await bubbleIdOf(a);
      const room = await createRoom(a, { user: victim.id });
      assert.equal(room.createdBy, a.id);
      const joinSeen = once(a, 'join_room');
      const joined = await request(b, 'join_room', { roomId: room.roomId, user: victim.id },
        { match: (p) => Array.isArray(p?.messages) });
      assert.equal(joined.userId, b.id);
      assert.equal((await joinSeen).userId, b.id);
      const seen = once(b, 'add_message');
      const m = await request(a, 'add_message', { roomId: room.roomId, message: 'mine', user: victim.id, userId: victim.id, bubbleId: 'forged' },
        { match: (p) => p.sentByMe });
      assert.equal(m.userId, a.id);
      assert.equal(m.bubbleId, aBid);
      assert.equal((await seen).user, a.id);
      const typing = once(b, 'typing');
      await request(a, 'typing', { roomId: room.roomId, user: victim.id }, { reply: null });
      assert.equal((await typing).userId, a.id);
      const reacted = once(b, 'add_reaction');
      await request(a, 'add_reaction', { roomId: room.roomId, reaction: 'CHEER', targetUser: b.id, user: victim.id },
        { match: (p) => p.sentByMe });
      assert.equal((await reacted).userId, a.id);
      const named = once(b, 'set_user_name');
      await request(a, 'set_user_name', { newName: 'Me', userId: victim.id }, { reply: null });
      assert.equal((await named).userId, a.id);
      await expectError(victim, 'add_message', { roomId: room.roomId, message: 'x', user: a.id }, 'user_not_in_room');
      const exitSeen = once(b, 'exit_room');
      await request(a, 'exit_room', { roomId: room.roomId, user: b.id }, { reply: 'i_exit' });
      assert.equal((await exitSeen).userId, a.id);
      assert.deepEqual(await myRooms(b), [room.roomId], 'b was not taken out');
    });

    test('disconnect: others get exit_room, numUsers drops, membership stays', async () => {
      const a = await client();
      const token = newToken();
      const b = await client({ token });
      const bBid = await bubbleIdOf(b);
      const room = await createRoom(a);
      await joinRoom(b, room.roomId, [a]);
      const bId = b.id;
      const exitP = once(a, 'exit_room');
      closeClient(b);
      const p = await exitP;
      assertKeys(p, PRESENCE_KEYS, 'exit_room on disconnect');
      assert.deepEqual(p, { roomId: room.roomId, userId: bId, bubbleId: bBid, user: bId });
      const v = await viewRoom(a, room.roomId);
      assert.equal(v.numUsers, 1);
      assert.deepEqual(v.participants, [a.id]);
      assert.equal(v.isOpen, true);

      // Still a member: the person's new socket is put back into the room.
      const joinP = once(a, 'join_room');
      const b2 = await client({ token });
      const j = await joinP;
      assert.deepEqual(j, { roomId: room.roomId, userId: b2.id, bubbleId: bBid, user: b2.id });
      assert.deepEqual(await myRooms(b2), [room.roomId]);
      assert.equal((await viewRoom(a, room.roomId)).numUsers, 2);
    });
  });
}
