// Metrics on `--metrics-addr`: the Prometheus text format, counters that move with traffic (a
// connection, an error code, a message stored, a push sent to a fake FCM), labels that never carry
// an id, and nothing of it on the public port.
import { describe, test, before, after, afterEach } from 'node:test';
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assert, startServer, connect, closeAll, closeClient, once, request, emitAck, createRoom,
  joinRoom, addMessage, newToken, waitUntil, DB_KIND,
} from './harness.mjs';

const PROJECT = 'bubble-metrics-test';

/** A fake of Google's token endpoint and FCM's messages:send that accepts everything. */
async function fakeFcm() {
  const sent = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/token') {
        res.end(JSON.stringify({ access_token: 'fake', expires_in: 3600, token_type: 'Bearer' }));
        return;
      }
      sent.push(JSON.parse(body).message);
      res.end(JSON.stringify({ name: `projects/${PROJECT}/messages/${sent.length}` }));
    });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    sent,
    close: () => new Promise((res) => server.close(res)),
  };
}

/** The scraped text. */
async function scrape(server) {
  const res = await fetch(`${server.metricsUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  return res.text();
}

/** The samples of the text: `{ name, labels, value }`. */
function samples(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[k] = v;
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `labels`. */
function total(text, name, labels = {}) {
  return samples(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('metrics', { timeout: 120000 }, () => {
  let fake;
  let dir;
  let server;

  before(async () => {
    fake = await fakeFcm();
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    dir = mkdtempSync(join(tmpdir(), 'bubble-metrics-'));
    const account = join(dir, 'service-account.json');
    writeFileSync(account, JSON.stringify({
      type: 'service_account',
      project_id: PROJECT,
      private_key_id: 'test-key',
      private_key: privateKey,
      client_email: `pusher@${PROJECT}.iam.gserviceaccount.com`,
      client_id: '1234567890',
      token_uri: `${fake.url}/token`,
    }));
    server = await startServer({
      args: ['--metrics-addr', '127.0.0.1:0', '--fcm-service-account', account,
        '--fcm-endpoint', fake.url, '--push-collapse-ms', '100'],
    });
  });

  after(async () => {
    await server?.stop();
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => closeAll());

  test('the public port serves no metrics; the metrics listener does, with the process gauges', async () => {
    assert.ok(server.metricsUrl, 'the server announced its metrics listener');
    const pub = await fetch(`${server.url}/metrics`);
    assert.equal(pub.status, 404);
    await pub.arrayBuffer();
    const text = await scrape(server);
    assert.ok(total(text, 'bubble_process_resident_memory_bytes') > 0);
    assert.ok(total(text, 'bubble_process_open_fds') > 0);
    assert.ok(total(text, 'bubble_process_uptime_seconds') > 0);
    assert.match(text, /# TYPE bubble_process_uptime_seconds gauge/);
  });

  test('counters move with traffic: connections, events, error codes, messages, pushes', async () => {
    const before = await scrape(server);
    const ws = { namespace: '/', protocol: 'EIO4', transport: 'websocket' };
    const old = { namespace: '/', protocol: 'EIO3' };

    const a = await connect(4, server, { token: newToken(), transports: ['websocket'] });
    const b = await connect(2, server, { token: newToken() });
    const pushToken = `dev-${newToken()}`;
    await request(b, 'register_push', { pushToken, platform: 'android' }, { reply: 'register_push' });
    let text = await scrape(server);
    assert.equal(total(text, 'bubble_connections_opened_total', ws)
      - total(before, 'bubble_connections_opened_total', ws), 1);
    assert.equal(total(text, 'bubble_connections_opened_total', old)
      - total(before, 'bubble_connections_opened_total', old), 1);
    assert.equal(total(text, 'bubble_connections', { namespace: '/' })
      - total(before, 'bubble_connections', { namespace: '/' }), 2);

    // An error code, and an event no protocol knows.
    const refused = await emitAck(a, 'join_room', { roomId: 'no-such-room' });
    const code = refused?.error?.code;
    assert.ok(code, `join_room of no room is refused: ${JSON.stringify(refused)}`);
    a.emit('some_room_1234', { roomId: 'x' });

    // A message stored, and a push to the member who went away.
    const room = await createRoom(a);
    await joinRoom(b, room.roomId, [a]);
    const gone = once(a, 'exit_room');
    closeClient(b);
    await gone;
    await addMessage(a, room.roomId, 'hello');
    await waitUntil(() => fake.sent.some((m) => m.token === pushToken), 10000, 'a push to the fake FCM');

    await waitUntil(async () => {
      text = await scrape(server);
      return total(text, 'bubble_pushes_total', { provider: 'fcm', result: 'sent' }) >= 1;
    }, 10000, 'the push counted sent');
    const moved = (name, labels) => total(text, name, labels) - total(before, name, labels);
    assert.equal(moved('bubble_answers_total', { outcome: code }), 1);
    assert.ok(moved('bubble_answers_total', { outcome: 'ok' }) >= 4);
    assert.equal(moved('bubble_events_received_total', { event: 'add_message' }), 1);
    assert.equal(moved('bubble_events_received_total', { event: 'join_room' }), 2);
    assert.ok(moved('bubble_events_received_total', { event: 'other' }) >= 1);
    assert.ok(moved('bubble_event_handling_seconds_count', { family: 'messages' }) >= 1);
    assert.ok(moved('bubble_event_handling_seconds_count', { family: 'rooms' }) >= 3);
    assert.equal(moved('bubble_connections_closed_total', old), 1);
    if (DB_KIND === 'sqlite') {
      assert.ok(moved('bubble_writer_batch_size_count') >= 1, 'the writer committed the message');
      assert.ok(moved('bubble_writer_commit_seconds_count') >= 1);
    }
    assert.ok(total(text, 'bubble_db_pool_connections', { state: 'idle' })
      + total(text, 'bubble_db_pool_connections', { state: 'in_use' }) >= 1);

    // No label carries an id: not the room's, a socket's, a token's, nor the unknown event's name.
    const ids = [room.roomId, a.id, pushToken, 'some_room_1234', 'no-such-room'];
    for (const s of samples(text)) {
      for (const value of Object.values(s.labels)) {
        for (const id of ids) {
          assert.ok(!value.includes(id), `${s.name} carries ${id} in a label`);
        }
      }
    }
  });
});
