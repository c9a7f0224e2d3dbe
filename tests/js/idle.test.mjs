// Idle connections stay up past one ping interval plus ping timeout on every client generation and
// transport (Engine.IO 3 clients send the pings, Engine.IO 4 servers send them).
import { describe, test, before, after, afterEach } from 'node:test';
import {
  assert, startServer, connect, closeAll, collect, once, createRoom, joinRoom, addMessage, sleep,
  transportOf,
} from './harness.mjs';

describe('idle connections', { timeout: 120000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  test('1.x, 2.x and 4.x sockets on both transports survive a full ping cycle', async () => {
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    const open = JSON.parse((await res.text()).slice(1));
    assert.ok(open.pingInterval > 0 && open.pingTimeout > 0, `ping settings ${JSON.stringify(open)}`);
    const wait = Math.min(open.pingInterval + open.pingTimeout + 3000, 70000);

    const owner = await connect(4, server);
    const room = await createRoom(owner);
    const socks = [];
    for (const [gen, transports] of [[1, undefined], [1, ['polling']], [2, ['websocket']], [2, ['polling']], [4, ['polling']]]) {
      const s = await connect(gen, server, { transports });
      await joinRoom(s, room.roomId, [owner]);
      socks.push(s);
    }
    const ids = socks.map((s) => s.id);
    const drops = socks.map((s) => collect(s, 'disconnect'));
    const ownerDrops = collect(owner, 'disconnect');
    const exits = collect(owner, 'exit_room');
    await sleep(wait);
    assert.deepEqual(drops.map((d) => d.length), socks.map(() => 0), 'nobody was disconnected');
    assert.equal(ownerDrops.length, 0);
    assert.deepEqual([...exits], [], 'nobody left the room');
    assert.deepEqual(socks.map((s) => s.id), ids, 'same sockets');
    const got = socks.map((s) => once(s, 'add_message'));
    await addMessage(owner, room.roomId, 'still there?');
    for (const g of got) assert.equal((await g).content, 'still there?');
    assert.equal(transportOf(socks[1]), 'polling');
  });
});
