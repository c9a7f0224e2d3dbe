// Push notifications end to end: the real server with its FCM sender pointed at a fake FCM HTTP v1
// endpoint and a fake OAuth2 token endpoint, both on loopback, and a service account generated
// here. The fake checks the JWT grant's signature and every send's bearer token, and records what
// it was sent per device token.
import { describe, test, before, after, afterEach } from 'node:test';
import { createServer } from 'node:http';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assert, startServer, connect, closeAll, closeClient, once, request, createRoom, joinRoom,
  addMessage, newToken, sleep, waitUntil,
} from './harness.mjs';

const PROJECT = 'bubble-test';
const CLIENT_EMAIL = `pusher@${PROJECT}.iam.gserviceaccount.com`;
const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** The collapse window of the burst test (`--push-collapse-ms`): wide enough for three messages
 * on a loaded machine. */
const COLLAPSE_MS = 1000;

/**
 * A fake of Google's token endpoint and FCM's messages:send. `script(token, outcome)` queues
 * answers for a device token (`{ status, headers, body }`); anything unscripted gets 200.
 * `sends(token)` lists the messages:send bodies received for a token, with the status answered.
 */
async function fakeGoogle(publicKey) {
  const received = [];
  const scripts = new Map();
  const issued = new Set();
  const problems = [];
  let tokenRequests = 0;

  const readBody = (req) => new Promise((res, rej) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { data += c; });
    req.on('end', () => res(data));
    req.on('error', rej);
  });
  const reply = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (req.method === 'POST' && req.url === '/token') {
      tokenRequests += 1;
      const form = new URLSearchParams(body);
      const problem = checkGrant(form, publicKey, `${fake.url}/token`);
      if (problem) {
        problems.push(problem);
        return reply(res, 400, { error: 'invalid_grant', error_description: problem });
      }
      const accessToken = `fake-access-${tokenRequests}`;
      issued.add(accessToken);
      return reply(res, 200, { access_token: accessToken, expires_in: 3600, token_type: 'Bearer' });
    }
    if (req.method === 'POST' && req.url === `/v1/projects/${PROJECT}/messages:send`) {
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer ') || !issued.has(auth.slice(7))) {
        problems.push(`send with authorization ${JSON.stringify(auth)}`);
        return reply(res, 401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
      }
      let message;
      try {
        message = JSON.parse(body).message;
      } catch {
        problems.push(`unparsable send body ${body}`);
        return reply(res, 400, { error: { code: 400, status: 'INVALID_ARGUMENT' } });
      }
      const queue = scripts.get(message.token) ?? [];
      const answer = queue.shift() ?? { status: 200, body: { name: `projects/${PROJECT}/messages/${received.length}` } };
      received.push({ message, status: answer.status, at: Date.now() });
      return reply(res, answer.status, answer.body ?? {}, answer.headers);
    }
    problems.push(`unexpected ${req.method} ${req.url}`);
    return reply(res, 404, { error: 'not found' });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const fake = {
    url: `http://127.0.0.1:${server.address().port}`,
    sends: (token) => received.filter((r) => r.message.token === token),
    all: () => received,
    script: (token, ...answers) => scripts.set(token, answers),
    problems,
    tokenRequests: () => tokenRequests,
    close: () => new Promise((res) => server.close(res)),
  };
  return fake;
}

/** Checks a JWT bearer grant as Google would: RS256 signature by the service account's key, and
 * its issuer, audience, scope and lifetime. Returns a description of what is wrong, or null. */
function checkGrant(form, publicKey, audience) {
  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return 'grant_type';
  const parts = (form.get('assertion') ?? '').split('.');
  if (parts.length !== 3) return 'assertion is not a JWT';
  const [head, claims, sig] = parts;
  const header = JSON.parse(Buffer.from(head, 'base64url').toString());
  if (header.alg !== 'RS256') return `alg ${header.alg}`;
  const ok = verify('RSA-SHA256', Buffer.from(`${head}.${claims}`), publicKey, Buffer.from(sig, 'base64url'));
  if (!ok) return 'bad signature';
  const c = JSON.parse(Buffer.from(claims, 'base64url').toString());
  if (c.iss !== CLIENT_EMAIL) return `iss ${c.iss}`;
  if (c.aud !== audience) return `aud ${c.aud}`;
  if (!String(c.scope).split(' ').includes(SCOPE)) return `scope ${c.scope}`;
  const now = Date.now() / 1000;
  if (!(c.iat <= now + 5 && c.exp > now && c.exp - c.iat <= 3600)) return `lifetime ${c.iat}..${c.exp}`;
  return null;
}

/** A service account JSON file whose token_uri is the fake's. */
function serviceAccount(dir, privateKey, tokenUri) {
  const file = join(dir, 'service-account.json');
  writeFileSync(file, JSON.stringify({
    type: 'service_account',
    project_id: PROJECT,
    private_key_id: 'test-key',
    private_key: privateKey,
    client_email: CLIENT_EMAIL,
    client_id: '1234567890',
    token_uri: tokenUri,
  }));
  return file;
}

const UNREGISTERED = {
  status: 404,
  body: {
    error: {
      code: 404,
      message: 'Requested entity was not found.',
      status: 'NOT_FOUND',
      details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }],
    },
  },
};

describe('push notifications through FCM', { timeout: 120000 }, () => {
  let fake;
  let dir;
  let args;

  before(async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    fake = await fakeGoogle(publicKey);
    dir = mkdtempSync(join(tmpdir(), 'bubble-push-'));
    const file = serviceAccount(dir, privateKey, `${fake.url}/token`);
    args = ['--fcm-service-account', file, '--fcm-endpoint', fake.url];
  });

  after(async () => {
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    closeAll();
    assert.deepEqual(fake.problems, [], 'the fake Google saw no bad request');
  });

  /** A person connected with a bubble token, with a push token registered. */
  async function person(gen, server, pushToken) {
    const token = newToken();
    const sock = await connect(gen, server, { token });
    if (pushToken) {
      await request(sock, 'register_push', { pushToken, platform: 'android' }, { reply: 'register_push' });
    }
    return { sock, token };
  }

  test('an away member gets one push per burst; present members, the author and those who exited get none', async (t) => {
    const server = await startServer({ args: [...args, '--push-collapse-ms', String(COLLAPSE_MS)] });
    t.after(() => server.stop());
    const tag = newToken().slice(0, 8);
    const [devA, devB, devC, devD] = ['a', 'b', 'c', 'd'].map((x) => `dev-${x}-${tag}`);
    const a = await person(4, server, devA);
    const b = await person(2, server, devB);
    const c = await person(1, server, devC);
    const d = await person(4, server, devD);
    const room = await createRoom(a.sock, { roomName: 'Night owls 🦉' });
    await joinRoom(b.sock, room.roomId, [a.sock]);
    await joinRoom(c.sock, room.roomId, [a.sock, b.sock]);
    await joinRoom(d.sock, room.roomId, [a.sock, b.sock, c.sock]);
    // d exits: no longer a member. b goes away: still a member, no socket in the room.
    const seenExit = once(a.sock, 'exit_room');
    await request(d.sock, 'exit_room', { roomId: room.roomId }, { reply: 'i_exit' });
    await seenExit;
    const seenGone = once(a.sock, 'exit_room');
    closeClient(b.sock);
    await seenGone;

    const long = `${'x'.repeat(170)} ${'é'.repeat(40)}`;
    await addMessage(a.sock, room.roomId, 'one');
    await addMessage(a.sock, room.roomId, 'two');
    const last = await addMessage(a.sock, room.roomId, long);
    await waitUntil(() => fake.sends(devB).length > 0, 5000, 'a push to the away member');
    await sleep(COLLAPSE_MS + 700);

    const sends = fake.sends(devB);
    assert.equal(sends.length, 1, 'three messages in the collapse window: one push');
    const { message } = sends[0];
    assert.equal(message.notification.title, 'New message in Night owls 🦉');
    assert.equal([...message.notification.body].length, 180);
    assert.ok(message.notification.body.endsWith('…'));
    assert.ok(long.startsWith(message.notification.body.slice(0, -1)));
    assert.deepEqual(message.data, { roomId: room.roomId, messageId: String(last.id), type: 'message' });
    assert.equal(message.android.collapse_key, room.roomId);
    for (const [who, dev] of [['author', devA], ['present member', devC], ['member who exited', devD]]) {
      assert.deepEqual(fake.sends(dev), [], `the ${who} gets no push`);
    }

    // A reaction while b is still away: one more push, saying someone reacted.
    await request(a.sock, 'add_reaction', { roomId: room.roomId, reaction: 'CHEER', targetUser: 'someone' },
      { match: (p) => p.sentByMe === true });
    await waitUntil(() => fake.sends(devB).length === 2, 5000, 'a push for the reaction');
    const reaction = fake.sends(devB)[1].message;
    assert.equal(reaction.notification.title, 'New message in Night owls 🦉');
    assert.equal(reaction.notification.body, 'Someone reacted with CHEER');
    assert.equal(reaction.data.type, 'reaction');
    assert.equal(reaction.data.roomId, room.roomId);

    // Once the reactor has chosen a name, the push says who reacted.
    await request(a.sock, 'set_user_name', { newName: 'Kim 🌱' }, { reply: null });
    await request(a.sock, 'add_reaction', { roomId: room.roomId, reaction: 'THANK', targetUser: 'someone' },
      { match: (p) => p.sentByMe === true });
    await waitUntil(() => fake.sends(devB).length === 3, 5000, 'a push for the named reaction');
    assert.equal(fake.sends(devB)[2].message.notification.body, 'Kim 🌱 reacted with THANK');
    assert.ok(fake.tokenRequests() >= 1, 'an access token was fetched through token_uri');
  });

  test('UNREGISTERED removes the token: the next message sends nothing', async (t) => {
    const server = await startServer({ args: [...args, '--push-collapse-ms', '0'] });
    t.after(() => server.stop());
    const dev = `dev-gone-${newToken().slice(0, 8)}`;
    fake.script(dev, UNREGISTERED);
    const a = await person(4, server, null);
    const e = await person(4, server, dev);
    const room = await createRoom(a.sock);
    await joinRoom(e.sock, room.roomId, [a.sock]);
    const seenGone = once(a.sock, 'exit_room');
    closeClient(e.sock);
    await seenGone;

    await addMessage(a.sock, room.roomId, 'are you there?');
    await waitUntil(() => fake.sends(dev).length === 1, 5000, 'the push to the unregistered token');
    assert.equal(fake.sends(dev)[0].status, 404);
    await sleep(500);
    await addMessage(a.sock, room.roomId, 'hello?');
    await sleep(1500);
    assert.equal(fake.sends(dev).length, 1, 'no push to a token FCM called unregistered');
  });

  test('503 then success: retried and delivered once', async (t) => {
    const server = await startServer({ args: [...args, '--push-collapse-ms', '0'] });
    t.after(() => server.stop());
    const dev = `dev-flaky-${newToken().slice(0, 8)}`;
    fake.script(dev, { status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 503, status: 'UNAVAILABLE' } } });
    const a = await person(1, server, null);
    const f = await person(4, server, dev);
    const room = await createRoom(a.sock);
    await joinRoom(f.sock, room.roomId, [a.sock]);
    const seenGone = once(a.sock, 'exit_room');
    closeClient(f.sock);
    await seenGone;

    await addMessage(a.sock, room.roomId, 'try again');
    await waitUntil(() => fake.sends(dev).length === 2, 10000, 'the retry');
    const [first, second] = fake.sends(dev);
    assert.deepEqual([first.status, second.status], [503, 200]);
    assert.ok(second.at - first.at >= 950, `Retry-After: 1 honoured (${second.at - first.at} ms)`);
    assert.deepEqual(second.message, first.message, 'the same push again');
    assert.equal(second.message.notification.body, 'try again');
    await sleep(2500);
    assert.equal(fake.sends(dev).length, 2, 'delivered once, not sent again');
  });

  test('pushes pending when the server is killed are delivered once after the restart', async (t) => {
    // A long collapse window keeps the push pending while the server is killed.
    const server = await startServer({ args: [...args, '--push-collapse-ms', '1500'] });
    t.after(() => server.stop());
    const dev = `dev-restart-${newToken().slice(0, 8)}`;
    const a = await person(4, server, null);
    const g = await person(2, server, dev);
    const room = await createRoom(a.sock);
    await joinRoom(g.sock, room.roomId, [a.sock]);
    const seenGone = once(a.sock, 'exit_room');
    closeClient(g.sock);
    await seenGone;

    const sent = await addMessage(a.sock, room.roomId, 'before the crash');
    // restart() by hand, to look in between: SIGKILL, then start on the same database.
    await server.kill();
    assert.equal(fake.sends(dev).length, 0, 'nothing was sent before the kill');
    await server.start();
    await waitUntil(() => fake.sends(dev).length === 1, 8000, 'the push after the restart');
    const { message } = fake.sends(dev)[0];
    assert.equal(message.notification.body, 'before the crash');
    assert.equal(message.data.messageId, String(sent.id));
    await sleep(2000);
    assert.equal(fake.sends(dev).length, 1, 'sent once');
  });
});
