// A log collector that died: the server's standard error (and standard output, after the
// `listening on` line) is a pipe nobody reads any more. Logging is at `trace`, so every path
// writes log lines; every request must still be answered as usual, pushes still sent, and the
// server must stay up.
import { test, after } from 'node:test';
import { randomBytes } from 'node:crypto';

import {
  addCounsellor, assert, startServer, connect, connectNs, closeAll, closeClient, request,
  expectError, createRoom, joinRoom, addMessage, emitAck, health, waitUntil, newToken,
  postJson as post, runSql as sqlValue,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';

after(() => closeAll());

test('with nobody reading its log, every request is answered and the server stays up', async () => {
  process.env.BUBBLE_LOG = 'trace';
  const server = await startServer({ args: ['--push-collapse-ms', '0'] });
  after(() => server.stop());
  const username = `owl_${randomBytes(3).toString('hex')}`;
  await addCounsellor(server, username, 'Night Owl', PASSWORD);

  // The collector goes away.
  server.proc.stderr.destroy();
  server.proc.stdout.destroy();

  // Counsellor sign-in over HTTP, then on `/counsellor`.
  const signIn = await post(server, '/auth', { username, password: PASSWORD });
  assert.equal(signIn.status, 200, `POST /auth: ${signIn.text}`);
  assert.equal(typeof signIn.body.token, 'string');
  const wrong = await post(server, '/auth', { username, password: 'not the password' });
  assert.equal(wrong.status, 401, `POST /auth with a wrong password: ${wrong.text}`);
  const counsellor = await connectNs(4, server, '/counsellor', { auth: { token: signIn.body.token } });

  // TinCan: register (once: a retry would be a conflict), sign in, requests on `/tincan`.
  const tinName = `tin_${randomBytes(3).toString('hex')}`;
  const reg = await post(server, '/tincan/register', { username: tinName, password: PASSWORD });
  assert.equal(reg.status, 201, `POST /tincan/register: ${reg.text}`);
  const login = await post(server, '/tincan/login', { username: tinName, password: PASSWORD });
  assert.equal(login.status, 200, `POST /tincan/login: ${login.text}`);
  const tin = await connectNs(4, server, '/tincan', { auth: { token: login.body.token } });
  const created = await emitAck(tin, 'group/create', { name: 'Owls', requestId: 'g1' });
  assert.equal(created.ok, true, JSON.stringify(created));
  const refused = await emitAck(tin, 'group/create', { name: '', requestId: 'g2' });
  assert.equal(refused.ok, false, JSON.stringify(refused));
  assert.equal(refused.requestId, 'g2');
  assert.equal(typeof refused.code, 'string');
  const listed = await emitAck(tin, 'group/list', { requestId: 'g3' });
  assert.equal(listed.ok, true, JSON.stringify(listed));

  // Bubble: someone away with a push token, someone writing, failing requests in between.
  const awayToken = newToken();
  const away = await connect(4, server, { token: awayToken });
  const room = await createRoom(away);
  await request(away, 'register_push', { pushToken: `device-${randomBytes(8).toString('hex')}` });
  closeClient(away);
  const writer = await connect(4, server, { token: newToken() });
  await expectError(writer, 'join_room', { roomId: 'no such room' }, 'invalid_room_id');
  await expectError(writer, 'view_room', {}, 'no_room_id');
  await joinRoom(writer, room.roomId);
  await addMessage(writer, room.roomId, 'still here');
  await expectError(writer, 'add_message', { roomId: room.roomId, message: 5 }, 'invalid_message');
  await addMessage(writer, room.roomId, 'and still answered');
  await request(counsellor, 'list_rooms', {});

  // The push worker sent the pushes (no provider is configured: it logs them).
  await waitUntil(async () => {
    const pending = await sqlValue(server, "SELECT count(*) FROM push_outbox WHERE status <> 'sent'");
    const sent = await sqlValue(server, "SELECT count(*) FROM push_outbox WHERE status = 'sent'");
    return pending === '0' && Number(sent) > 0;
  }, 15000, 'every push sent');

  assert.equal((await health(server)).status, 200);
  assert.ok(server.alive && !server.crashed, 'the server is still running');
});
