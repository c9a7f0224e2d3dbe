// Clients that ask for more than they read, or stall inside what they send. A socket's output is
// bounded in bytes: one that falls behind is disconnected (and counted in /stats), the server's
// memory stays bounded and comes back, other clients keep working, and no request is left
// unanswered on a socket that stays open. Raw clients (a websocket over node:net, HTTP
// long-polling over fetch), so that not reading is really not reading.
import { describe, test, before, after, afterEach } from 'node:test';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  assert, startServer, connect, closeAll, createRoom, listRooms, sleep, within, waitUntil,
} from './harness.mjs';

const MiB = 1024 * 1024;

/** GET /stats: the server's counters (none when it has no such route). */
async function stats(server) {
  const res = await fetch(`${server.url}/stats`, { signal: AbortSignal.timeout(3000) });
  return res.ok ? res.json() : {};
}

/** The server's resident memory, in bytes. */
function rss(server) {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)[1]) * 1024;
}

/** A client websocket frame (masked) carrying `text`. */
function frame(text) {
  const payload = Buffer.from(text);
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.from([0x81, 0x80 | len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x81;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}

/**
 * A raw Engine.IO 4 websocket on `/`, connected to the namespace: opened as a websocket, or with
 * `upgrade`, connected over long-polling first and then upgraded. `texts` holds the server's
 * frames read so far; `closed` settles when the server ends the connection.
 */
async function rawSocket(server, { upgrade = false } = {}) {
  let sid = null;
  if (upgrade) {
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    sid = JSON.parse((await (await fetch(base)).text()).slice(1)).sid;
    const res = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: '40' });
    assert.equal(res.status, 200);
    const got = (await (await fetch(`${base}&sid=${sid}`)).text()).split('\x1e');
    assert.ok(got.some((p) => p.startsWith('40{')), `connected: ${got.join(' | ')}`);
  }
  const sock = net.connect(server.port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  let head = null;
  const texts = [];
  const closed = new Promise((res) => sock.once('close', res));
  sock.on('error', () => {});
  const parse = () => {
    if (head === null) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      head = buf.subarray(0, end).toString('latin1');
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return;
      texts.push(buf.subarray(at, at + len).toString('utf8'));
      buf = buf.subarray(at + len);
    }
  };
  sock.on('data', (chunk) => { buf = Buffer.concat([buf, chunk]); parse(); });
  const key = randomBytes(16).toString('base64');
  const query = sid ? `EIO=4&transport=websocket&sid=${sid}` : 'EIO=4&transport=websocket';
  sock.write(`GET /socket.io/?${query} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  if (sid) {
    await waitUntil(() => head !== null, 5000, 'websocket handshake');
    sock.write(frame('2probe'));
    await waitUntil(() => texts.includes('3probe'), 5000, 'probe answered');
    sock.write(frame('5'));
  } else {
    await waitUntil(() => texts.some((t) => t.startsWith('0{')), 5000, 'engine.io open packet');
    sock.write(frame('40'));
    await waitUntil(() => texts.some((t) => t.startsWith('40{')), 5000, 'socket.io connect packet');
  }
  assert.match(head, / 101 /);
  return {
    sock,
    texts,
    closed,
    send: (packet) => sock.write(frame(packet)),
    sendMany: (packets) => sock.write(Buffer.concat(packets.map(frame))),
  };
}

/** Acknowledgement ids in socket.io packets `43<id>[...]`. */
function ackIds(texts) {
  const ids = new Set();
  for (const t of texts) {
    const m = /^43(\d+)\[/.exec(t);
    if (m) ids.add(Number(m[1]));
  }
  return ids;
}

/** 50 list_rooms sent while a create_room is being handled: one answer, 50 acks. */
async function answeredOnce(server) {
  const sock = await connect(4, server, { transports: ['websocket'] });
  const events = [];
  sock.on('list_rooms', (rooms) => events.push(rooms));
  const created = new Promise((res) => sock.emit('create_room', { roomName: 'keeps the inbox busy' }, res));
  const acks = [];
  for (let i = 0; i < 50; i++) acks.push(new Promise((res) => sock.emit('list_rooms', {}, res)));
  const room = await within(created, 5000, 'create_room ack');
  const answers = await within(Promise.all(acks), 10000, 'every list_rooms ack');
  await sleep(300);
  assert.ok(events.length >= 1 && events.length < 50, `${events.length} list_rooms events for 50 requests`);
  for (const answer of answers) {
    assert.ok(Array.isArray(answer), `ack ${JSON.stringify(answer).slice(0, 200)}`);
    assert.ok(answer.some((r) => r.roomId === room.roomId), 'the answer is as of after create_room');
  }
  assert.deepEqual(events.at(-1), answers.at(-1), 'the event and the acks carry the same answer');
}

/**
 * 100 websockets stall inside a 2 MiB packet each (1.7 MiB of it sent), then go: what they held
 * is bounded by the packet limit and given back.
 */
async function stalledInbound(server, t) {
  const before = rss(server);
  const socks = [];
  for (let i = 0; i < 100; i++) {
    const sock = net.connect(server.port, '127.0.0.1');
    sock.on('error', () => {});
    const key = randomBytes(16).toString('base64');
    sock.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    socks.push(sock);
  }
  const len = 2 * MiB - 100;
  const header = Buffer.alloc(14); // FIN, text, masked (with a zero mask), 64-bit length
  header[0] = 0x81;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(len), 2);
  const part = Buffer.concat([header, Buffer.alloc(Math.floor(1.7 * MiB), 0x61)]);
  await Promise.all(socks.map((sock) => new Promise((res) => sock.write(part, res))));
  let held = 0;
  await waitUntil(() => { held = rss(server) - before; return held > 100 * MiB; }, 10000).catch(() => {});
  t.diagnostic(`RSS ${(before / MiB).toFixed(0)} MiB before, +${(held / MiB).toFixed(0)} MiB with 100 stalled packets`);
  assert.ok(held < 100 * 4 * MiB, `stalled packets hold ${(held / MiB).toFixed(0)} MiB`);
  for (const sock of socks) sock.destroy();
  let after = 0;
  await waitUntil(() => { after = rss(server) - before; return after < 64 * MiB; }, 10000).catch(() => {});
  t.diagnostic(`+${(after / MiB).toFixed(0)} MiB once they are gone`);
  assert.ok(after < 64 * MiB, `${(after / MiB).toFixed(0)} MiB still held after the stalled sockets went`);
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
}

describe('slow readers', { timeout: 240000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  // 60 rooms of 100 messages: each list_rooms answer is about 4 MiB.
  let seeded = null;
  async function seed() {
    const owner = await connect(4, server, { transports: ['websocket'] });
    const text = 'm'.repeat(400);
    for (let r = 0; r < 60; r++) {
      const room = await createRoom(owner);
      const acks = [];
      for (let i = 0; i < 100; i++) {
        acks.push(new Promise((res) => owner.emit('add_message', { roomId: room.roomId, message: `${i} ${text}` }, res)));
      }
      const answers = await within(Promise.all(acks), 30000, `messages of room ${r}`);
      assert.ok(answers.every((a) => !a?.error), `messages stored: ${JSON.stringify(answers.find((a) => a?.error))}`);
    }
    const rooms = await listRooms(owner);
    assert.equal(rooms.length, 60);
    const answerSize = Buffer.byteLength(JSON.stringify(rooms));
    assert.ok(answerSize > 3 * MiB, `list_rooms answer is ${answerSize} bytes`);
  }

  /**
   * A reader that never reads sends 250 list_rooms (4 KB in all); the server's memory stays
   * bounded, the reader is counted as fallen behind and its connection is ended.
   */
  async function flood(t, reader) {
    const counted = (await stats(server)).socketsFellBehind ?? 0;
    const before = rss(server);
    reader.sock.pause(); // never reads again
    let peak = before;
    const sampling = setInterval(() => { peak = Math.max(peak, rss(server)); }, 20);
    try {
      // In rounds, so that they are not all waiting in the inbox at once.
      for (let round = 0; round < 25; round++) {
        reader.sendMany(Array.from({ length: 10 }, () => '42["list_rooms"]'));
        await sleep(40);
      }
      // Until the server counts the reader as fallen behind, or long enough to see it would not.
      await waitUntil(async () => (await stats(server)).socketsFellBehind > counted, 10000)
        .catch(() => {});
      await sleep(500);
    } finally {
      clearInterval(sampling);
    }
    const grew = peak - before;
    t.diagnostic(`RSS ${(before / MiB).toFixed(0)} MiB before, peak +${(grew / MiB).toFixed(0)} MiB`);
    assert.ok(grew < 200 * MiB, `server RSS grew by ${(grew / MiB).toFixed(0)} MiB (from ${(before / MiB).toFixed(0)} MiB)`);
    assert.equal((await stats(server)).socketsFellBehind, counted + 1, 'the reader is counted as fallen behind');

    // The server closed the connection: reading again, the client sees it end.
    reader.sock.resume();
    await within(reader.closed, 20000, 'the server ending the reader\'s connection');

    // Memory is given back once the reader is gone.
    await waitUntil(() => rss(server) < before + 64 * MiB, 15000,
      `RSS back near ${(before / MiB).toFixed(0)} MiB (now ${(rss(server) / MiB).toFixed(0)} MiB)`);
  }

  test('a websocket that asks for list_rooms and never reads is disconnected; memory stays bounded and comes back', async (t) => {
    seeded ??= seed();
    await seeded;
    const other = await connect(4, server, { transports: ['websocket'] });
    await flood(t, await rawSocket(server));
    // Others keep working, connected before or after.
    assert.equal((await listRooms(other)).length, 60);
    assert.equal((await listRooms(await connect(1, server))).length, 60);
  });

  test('the same over a websocket upgraded from long-polling', async (t) => {
    seeded ??= seed();
    await seeded;
    await flood(t, await rawSocket(server, { upgrade: true }));
    assert.equal((await listRooms(await connect(2, server))).length, 60);
  });

  test('list_rooms asked again before it was answered is answered once, and every ack is called', async () => {
    // A server of its own: the rooms of the other tests would make 50 answers too many to wait.
    const own = await startServer();
    try {
      await answeredOnce(own);
    } finally {
      await own.stop();
    }
  });

  test('websockets stalled inside a large packet hold at most the packet limit, given back when they go', async (t) => {
    const own = await startServer();
    try {
      await stalledInbound(own, t);
    } finally {
      await own.stop();
    }
  });

  test('a websocket burst of acked requests: every request is answered, or the socket is closed', async (t) => {
    const owner = await connect(4, server, { transports: ['websocket'] });
    const room = await createRoom(owner);
    const raw = await rawSocket(server);
    raw.sock.pause();
    // Far more answers than the kernel's socket buffers hold for a reader that does not read.
    const N = 100000;
    const packets = [];
    for (let id = 0; id < N; id++) {
      packets.push(`42${id}["add_message",{"roomId":"${room.roomId}","message":"burst ${id}"}]`);
    }
    raw.sendMany(packets);
    await sleep(2000);
    raw.sock.resume();
    // Read until every ack is in, or the server ends the connection; a connection that stays open
    // with acks missing goes quiet instead.
    let ended = false;
    raw.closed.then(() => { ended = true; });
    let last = -1;
    for (;;) {
      const got = ackIds(raw.texts).size;
      if (got === N || ended) break;
      if (got === last) break; // nothing new for a while: quiet
      last = got;
      await sleep(3000);
    }
    const got = ackIds(raw.texts).size;
    t.diagnostic(`${got} of ${N} acknowledged, connection ${ended ? 'closed' : 'open'}`);
    assert.ok(got === N || ended,
      `${got} of ${N} requests acknowledged and the connection still open: a silent gap`);
    raw.sock.destroy();
    // The room's owner was not disturbed.
    await listRooms(owner);
  });

  test('a long-polling burst of acked requests: every request is answered, or the socket is disconnected', async (t) => {
    const owner = await connect(4, server, { transports: ['websocket'] });
    const room = await createRoom(owner);
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const { sid } = JSON.parse(open.slice(1));
    const url = `${base}&sid=${sid}`;
    const post = async (body) => {
      const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      assert.equal(res.status, 200, `POST answered ${res.status}`);
    };
    const packets = [];
    await post('40');
    // A poll that answers nothing within 3 s means the server has nothing more to send.
    const poll = async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
        return (await res.text()).split('\x1e');
      } catch {
        return null;
      }
    };
    // The connect packet, maybe after a ping.
    for (let i = 0; i < 5 && !packets.some((p) => p.startsWith('40{')); i++) {
      packets.push(...((await poll()) ?? []));
    }
    assert.ok(packets.some((p) => p.startsWith('40{')), `connected: ${packets.join(' | ').slice(0, 200)}`);
    const N = 2000;
    const body = [];
    for (let id = 0; id < N; id++) {
      body.push(`42${id}["add_message",{"roomId":"${room.roomId}","message":"poll ${id}"}]`);
    }
    await post(body.join('\x1e'));
    await sleep(2000);
    let disconnected = false;
    for (;;) {
      const got = await poll();
      if (got === null) break;
      packets.push(...got);
      if (got.some((p) => p === '41' || p === '1')) {
        disconnected = true;
        break;
      }
      if (ackIds(packets).size === N) break;
    }
    const acked = ackIds(packets).size;
    t.diagnostic(`${acked} of ${N} acknowledged, ${disconnected ? 'disconnected' : 'connected'}`);
    assert.ok(acked === N || disconnected,
      `${acked} of ${N} requests acknowledged and the socket still connected: a silent gap`);
    await listRooms(owner);
  });
});
