// `bubble backup FILE`: a consistent copy of a SQLite database taken while a server writes to it.
// Restoring is serving the copy: every message acknowledged before the backup began is in it.
import { describe, test, afterEach } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assert, BIN, DB_KIND, startServer, connect, closeAll, createRoom, viewRoom, emitAck, sleep,
} from './harness.mjs';

const execFileP = promisify(execFile);
const SKIP = DB_KIND === 'sqlite' ? false : 'SQLite only: PostgreSQL is backed up with pg_dump';
/** Below view_room's 100 newest messages, so that every message of a room can be read back. */
const PER_ROOM = 90;

/** Runs `bubble backup` (under `prlimit --fsize=N` with `fsize`); resolves to { code, stdout,
 * stderr }. */
async function backup(file, dbUrl, { fsize } = {}) {
  const command = ['backup', file, '--database-url', dbUrl];
  const [program, args] = fsize === undefined
    ? [BIN, command]
    : ['prlimit', [`--fsize=${fsize}`, BIN, ...command]];
  try {
    const { stdout, stderr } = await execFileP(program, args);
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('backup', { skip: SKIP, timeout: 120000 }, () => {
  afterEach(closeAll);

  test('a backup taken under write load holds every message acknowledged before it began', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const dir = mkdtempSync(join(tmpdir(), 'bubble-backup-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));

    const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => connect(i % 2 ? 1 : 4, server)));
    const rooms = [];
    for (const s of senders) rooms.push((await createRoom(s)).roomId);
    /** Acknowledged messages: [roomId, message id, when the ack came]. */
    const acked = [];
    let stop = false;
    const load = senders.map(async (s, i) => {
      for (let n = 0; n < PER_ROOM && !stop; n++) {
        const reply = await emitAck(s, 'add_message', { roomId: rooms[i], message: `m${n}` }, 10000);
        assert.equal(reply.error, undefined, JSON.stringify(reply.error));
        acked.push([rooms[i], reply.id, Date.now()]);
        await sleep(5);
      }
    });

    // Let the load run, then back up while it goes on.
    while (acked.length < 150) await sleep(10);
    const began = Date.now();
    const copy = join(dir, 'copy.db');
    const result = await backup(copy, server.dbUrl);
    const during = acked.filter(([, , at]) => at > began).length;
    stop = true;
    await Promise.all(load);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /backed up to .*copy\.db \(\d+ bytes\)/);
    assert.ok(statSync(copy).size > 0);
    assert.ok(!existsSync(`${copy}.partial`), 'no partial file left');
    t.diagnostic(`${acked.length} messages acknowledged, ${during} of them while the backup ran`);

    // Restore: serve the copy.
    const restored = await startServer({ dbUrl: `sqlite://${copy}?mode=rwc` });
    t.after(() => restored.stop());
    const reader = await connect(4, restored);
    const stored = new Set();
    for (const roomId of rooms) {
      for (const m of (await viewRoom(reader, roomId)).messages) stored.add(m.id);
    }
    const before = acked.filter(([, , at]) => at <= began);
    const missing = before.filter(([, id]) => !stored.has(id));
    assert.equal(before.length >= 150, true);
    assert.deepEqual(missing, [], 'every message acknowledged before the backup began is in the copy');

    // The restored server takes new writes.
    const writer = await connect(1, restored);
    const roomId = (await createRoom(writer)).roomId;
    const reply = await emitAck(writer, 'add_message', { roomId, message: 'after restore' });
    assert.equal(reply.error, undefined);
  });

  test('a backup that cannot be written (file size limit) fails and leaves no file behind', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const dir = mkdtempSync(join(tmpdir(), 'bubble-backup-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const s = await connect(4, server);
    const roomId = (await createRoom(s)).roomId;
    for (let i = 0; i < 20; i++) await emitAck(s, 'add_message', { roomId, message: 'x'.repeat(500) });

    const copy = join(dir, 'copy.db');
    const failed = await backup(copy, server.dbUrl, { fsize: 4096 });
    assert.notEqual(failed.code, 0, failed.stdout);
    assert.match(failed.stderr, /^error: /m);
    assert.ok(!existsSync(copy), 'no copy at the destination');
    assert.ok(!existsSync(`${copy}.partial`), 'no partial file left');

    // Once the limit is gone, the same backup succeeds.
    const done = await backup(copy, server.dbUrl);
    assert.equal(done.code, 0, done.stderr);
    assert.ok(statSync(copy).size > 4096);
  });

  test('a backup never overwrites a file, and a PostgreSQL URL is pointed to pg_dump', async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const dir = mkdtempSync(join(tmpdir(), 'bubble-backup-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const there = join(dir, 'there.db');
    writeFileSync(there, 'keep me');
    const refused = await backup(there, server.dbUrl);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /exists already/);
    assert.equal(readFileSync(there, 'utf8'), 'keep me');

    const pg = await backup(join(dir, 'pg.db'), 'postgres://root@127.0.0.1:5432/test');
    assert.notEqual(pg.code, 0);
    assert.match(pg.stderr, /pg_dump/);
    assert.ok(!existsSync(join(dir, 'pg.db')));

    // The served database is untouched and still written to.
    const s = await connect(4, server);
    const roomId = (await createRoom(s)).roomId;
    assert.equal((await viewRoom(s, roomId)).roomId, roomId);
  });
});
