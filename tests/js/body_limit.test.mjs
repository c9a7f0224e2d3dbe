// HTTP bodies over the size limit (2 MiB) on the counsellor and TinCan account routes: answered
// 413 payload_too_large, whether the length is announced or the body streamed, and nothing
// changes; other bad bodies keep their 400 invalid_payload.
import { describe, test, before, after } from 'node:test';
import { randomBytes } from 'node:crypto';

import { addCounsellor, assert, startServer } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const LIMIT = 2 * 1024 * 1024;

/** A JSON body with the given fields and padding that takes it to `size` bytes. */
function padded(fields, size) {
  const json = JSON.stringify({ ...fields, padding: '' });
  return JSON.stringify({ ...fields, padding: 'x'.repeat(size - json.length) });
}

/**
 * POSTs `body` (a string) as JSON, with its Content-Length or, with `stream`, chunked without one.
 * The tests' bodies are only a little over the limit: the server answers as soon as it knows the
 * body is too large and closes the connection, and a client still writing then may get a reset
 * before it reads the answer.
 */
async function post(server, path, body, { stream = false } = {}) {
  const init = {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(20000),
  };
  if (stream) {
    const bytes = new TextEncoder().encode(body);
    init.body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
        controller.close();
      },
    });
    init.duplex = 'half';
  } else {
    init.body = body;
  }
  const res = await fetch(`${server.url}${path}`, init);
  return { status: res.status, body: await res.json().catch(() => null) };
}

function assertTooLarge(res, what) {
  assert.equal(res.status, 413, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(res.body?.code, 'payload_too_large', what);
  assert.equal(typeof res.body.message, 'string', what);
  assert.ok(res.body.message.length > 0, what);
}

describe('HTTP bodies over the size limit', { timeout: 120000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });

  for (const [stream, size] of [[false, LIMIT + 1], [true, LIMIT + 1024]]) {
    const how = `${size} bytes ${stream ? 'streamed' : 'with their length'}`;
    test(`counsellor POST /auth, ${how}: 413 payload_too_large; a malformed body is still 400`, async () => {
      const username = `c_${randomBytes(4).toString('hex')}`;
      await addCounsellor(server, username, 'Robin', PASSWORD);
      const big = await post(server, '/auth', padded({ username, password: PASSWORD }, size), { stream });
      assertTooLarge(big, 'POST /auth');
      const malformed = await post(server, '/auth', '{"username":', { stream });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body?.code, 'invalid_payload');
      // The limit refused the body, not the account.
      const ok = await post(server, '/auth', JSON.stringify({ username, password: PASSWORD }), { stream });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    });

    test(`TinCan POST /tincan/register and /tincan/login, ${how}: 413 payload_too_large, nothing registered`, async () => {
      const username = `t_${randomBytes(4).toString('hex')}`;
      const register = await post(server, '/tincan/register', padded({ username, password: PASSWORD }, size), { stream });
      assertTooLarge(register, 'POST /tincan/register');
      const login = await post(server, '/tincan/login', padded({ username, password: PASSWORD }, size), { stream });
      assertTooLarge(login, 'POST /tincan/login');
      const malformed = await post(server, '/tincan/register', '[1,', { stream });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body?.code, 'invalid_payload');
      assert.equal(malformed.body?.field, 'body');
      // The refused registration left the name free.
      const registered = await post(server, '/tincan/register', JSON.stringify({ username, password: PASSWORD }), { stream });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
    });
  }
});
