// What the log shows at `debug` and `trace`: no token, password or cookie however a client sends it, no text
// people write unless `--log-message-text` asks for it, and no colour codes when standard error is
// not a terminal (here: a pipe).
import { test, after } from 'node:test';
import { randomBytes } from 'node:crypto';

import {
  addCounsellor, assert, startServer, connect, connectNs, closeAll, closeClient, request, createRoom,
  joinRoom, addMessage, emitAck, within, waitUntil, newToken, expectError,
  postJson as post, runSql as sqlValue,
} from './harness.mjs';


after(() => closeAll());

/** A server logging at `level`, and everything it writes to standard error from its start. */
async function loggingServer(level, args = []) {
  process.env.BUBBLE_LOG = level;
  const server = await startServer({ args: ['--push-collapse-ms', '0', ...args] });
  after(() => server.stop());
  let log = server.stderr;
  server.proc.stderr.on('data', (chunk) => { log += chunk; });
  return {
    server,
    /** Stops the server (SIGTERM: queued log lines are written out) and returns its log. */
    async finish() {
      server.killedByUs = true;
      server.proc.kill('SIGTERM');
      await within(server.exited, 15000, 'server exit after SIGTERM');
      return log;
    },
  };
}

/** Two members in a room: one away with a push token, one writing `text`. Waits for the push. */
async function chat(server, { awayToken, writerToken, pushToken, text }) {
  const away = await connect(4, server, { token: awayToken });
  const room = await createRoom(away);
  await request(away, 'register_push', { pushToken });
  closeClient(away);
  const writer = await connect(1, server, { token: writerToken });
  await joinRoom(writer, room.roomId);
  await addMessage(writer, room.roomId, text);
  await waitUntil(async () =>
    (await sqlValue(server, "SELECT count(*) FROM push_outbox WHERE status = 'sent'")) === '1',
  15000, 'the push sent');
  return { room, writer };
}

/** The lines of `log` that contain `secret`, for the failure message. */
const linesWith = (log, secret) => log.split('\n').filter((l) => l.includes(secret)).join('\n').slice(0, 2000);

// The last filter also asks for the modules that print packets and frames by name.
const LEVELS = ['debug', 'trace', 'debug,socketioxide::client=trace,engineioxide=trace,tungstenite::protocol=trace'];

for (const level of LEVELS) test(`at ${level}, the log shows no token, password, cookie or message text, and no colour codes`, async () => {
  const { server, finish } = await loggingServer(level);
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const username = `owl_${randomBytes(3).toString('hex')}`;
  await addCounsellor(server, username, 'Night Owl', password);
  const secrets = { 'counsellor password': password };

  const signIn = await post(server, '/auth', { username, password });
  assert.equal(signIn.status, 200, signIn.text);
  secrets['counsellor token'] = signIn.body.token;
  secrets['session cookie'] = signIn.cookie.split('=')[1];
  const bearer = { Authorization: `Bearer ${signIn.body.token}` };
  await connectNs(4, server, '/counsellor', { auth: { token: signIn.body.token } });
  await connectNs(1, server, '/counsellor', { headers: bearer });
  const me = await within(fetch(`${server.url}/auth/me`, { headers: { Cookie: signIn.cookie } }), 10000, 'GET /auth/me');
  assert.equal(me.status, 200);

  const tinPassword = `tin-pw-${randomBytes(6).toString('hex')}`;
  const tinName = `tin_${randomBytes(3).toString('hex')}`;
  secrets['TinCan password'] = tinPassword;
  assert.equal((await post(server, '/tincan/register', { username: tinName, password: tinPassword })).status, 201);
  const login = await post(server, '/tincan/login', { username: tinName, password: tinPassword });
  assert.equal(login.status, 200, login.text);
  const tinToken = login.body.token;
  secrets['TinCan token'] = tinToken;
  const tin = await connectNs(4, server, '/tincan', { auth: { token: tinToken } });
  await connectNs(4, server, '/tincan', { query: { token: tinToken } });
  await connectNs(1, server, '/tincan', { headers: { Authorization: `Bearer ${tinToken}` } });
  const group = await emitAck(tin, 'group/create', { name: 'Owls' });
  assert.equal(group.ok, true, JSON.stringify(group));
  const conversation = await emitAck(tin, 'conversation/create', { groupId: group.group.id, name: 'night' });
  assert.equal(conversation.ok, true, JSON.stringify(conversation));
  const tinText = `tin text ${randomBytes(6).toString('hex')}`;
  secrets['TinCan message'] = tinText;
  const sent = await emitAck(tin, 'message/create', { conversationId: conversation.conversation.id, content: tinText });
  assert.equal(sent.ok, true, JSON.stringify(sent));

  const bubble = {
    awayToken: newToken(),
    writerToken: newToken(),
    pushToken: `device-${randomBytes(12).toString('hex')}`,
    text: `bubble text ${randomBytes(6).toString('hex')}`,
  };
  Object.assign(secrets, {
    'bubble token (4.x query)': bubble.awayToken,
    'bubble token (1.x query)': bubble.writerToken,
    'push token': bubble.pushToken,
    'Bubble message': bubble.text,
  });
  await chat(server, bubble);

  const log = await finish();
  const least = level.split(',')[0].toUpperCase();
  assert.match(log, new RegExp(` ${least} `), `the server logged at ${least}`);
  assert.match(log, /push \(no provider configured, not sent\)/, 'the push was logged');
  const problems = [];
  if (log.includes('\x1b')) problems.push(`ANSI escape codes in a log that is not a terminal:\n${linesWith(log, '\x1b').slice(0, 300)}`);
  for (const [what, secret] of Object.entries(secrets)) {
    assert.ok(typeof secret === 'string' && secret.length >= 8, `${what} is known`);
    if (log.includes(secret)) problems.push(`the log shows the ${what}:\n${linesWith(log, secret)}`);
  }
  assert.deepEqual(problems, []);
});

test('--log-message-text lets the text people write into the log', async () => {
  const { server, finish } = await loggingServer('debug', ['--log-message-text']);
  const text = `shown text ${randomBytes(6).toString('hex')}`;
  await chat(server, {
    awayToken: newToken(), writerToken: newToken(), pushToken: `device-${randomBytes(12).toString('hex')}`, text,
  });
  const log = await finish();
  assert.ok(log.includes(text), 'the message text is in the log');
});

test('--log-format json: one JSON object per line, with the socket, namespace, event and code as fields', async () => {
  const { server, finish } = await loggingServer('debug', ['--log-format', 'json']);
  const sock = await connect(4, server);
  const room = await createRoom(sock);
  await expectError(sock, 'add_message', { roomId: room.roomId }, 'no_message');
  const sid = sock.id;
  closeClient(sock);

  const log = await finish();
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length > 10, `the server logged (${lines.length} lines)`);
  const records = lines.map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      assert.fail(`a log line is not JSON: ${line.slice(0, 300)}`);
    }
  });
  for (const r of records) {
    assert.equal(typeof r.timestamp, 'string', 'every line has a timestamp');
    assert.match(r.level, /^(TRACE|DEBUG|INFO|WARN|ERROR)$/, 'every line has a level');
    assert.equal(typeof r.target, 'string', 'every line has a target');
  }
  const refused = records.filter((r) => r.code === 'no_message');
  assert.equal(refused.length, 1, 'the refused request was logged once');
  assert.deepEqual(
    { sid: refused[0].sid, ns: refused[0].ns, event: refused[0].event, level: refused[0].level },
    { sid, ns: '/', event: 'add_message', level: 'DEBUG' },
  );
  assert.ok(records.some((r) => r.message === 'serving' && /^127\.0\.0\.1:\d+$/.test(r.addr)),
    'the start-up line is JSON too, its address a field');
});
