// The socket.io Admin UI (`@socket.io/admin-ui`): the `/admin` namespace's protocol with a 4.x
// client, then the UI's own built page in headless Chromium, connected to the server.
import { describe, test, before, after, afterEach } from 'node:test';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  BIN, ISO_MS, assert, closeAll, closeClient, connect, createNsClient, createRoom, expectNone,
  startServer, waitDisconnected, waitUntil, within,
} from './harness.mjs';

const USER = 'admin';
const PASSWORD = 'admin password';
const CHROMIUM = process.env.BUBBLE_TEST_CHROMIUM || '/usr/bin/chromium';
const UI_DIST = fileURLToPath(new URL('../../node_modules/@socket.io/admin-ui/ui/dist/', import.meta.url));

/** The bcrypt hash of `password`, made by `bubble admin-hash` (password on standard input). */
function adminHash(password) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['admin-hash'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`admin-hash: ${code} ${out}`))));
    proc.stdin.end(`${password}\n`);
  });
}

/** Server options for the Admin UI, and `more`. */
async function adminArgs(...more) {
  return ['--admin-user', USER, '--admin-password-hash', await adminHash(PASSWORD), ...more];
}

/**
 * A 4.x socket on `/admin` signing in with `auth`, not yet connected, listening from the start
 * to what the server sends on connect: `sock.first(event)` resolves with its first arguments.
 */
function adminClient(server, auth = { username: USER, password: PASSWORD }) {
  const sock = createNsClient(4, server, '/admin', { auth });
  const seen = new Map();
  for (const event of ['session', 'config', 'all_sockets', 'server_stats']) {
    seen.set(event, new Promise((res) => sock.once(event, (...args) => res(args))));
  }
  sock.first = (event) => within(seen.get(event), 5000, `${event} on /admin`);
  return sock;
}

/** A connected admin socket (see adminClient). */
async function connectAdmin(server, auth) {
  const sock = adminClient(server, auth);
  await within(new Promise((res, rej) => {
    sock.once('connect', res);
    sock.once('connect_error', rej);
  }), 5000, 'admin connection');
  return sock;
}

/** Every arguments list `sock` receives with `event` from now on (the admin events have several). */
function collectArgs(sock, event) {
  const got = [];
  sock.on(event, (...args) => got.push(args));
  return got;
}

/** The arguments of the first `event` on `sock` for which `pred(...args)` holds. */
function onceArgs(sock, event, pred, ms = 3000) {
  return within(new Promise((res) => {
    const h = (...args) => {
      if (!pred(...args)) return;
      sock.off(event, h);
      res(args);
    };
    sock.on(event, h);
  }), ms, `${event} on /admin`);
}

/** The connect error of a 4.x socket on `ns`. */
function connectError(server, ns, auth) {
  const sock = createNsClient(4, server, ns, { auth });
  return within(new Promise((res, rej) => {
    sock.once('connect', () => rej(new Error(`${ns} connected`)));
    sock.once('connect_error', (e) => { closeClient(sock); res(e); });
  }), 5000, `connect error on ${ns}`);
}

describe('the /admin namespace', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer({ args: await adminArgs() }); });
  after(async () => { await server?.stop(); });
  afterEach(closeAll);

  test('a wrong password, user or session is refused with "invalid credentials"', async () => {
    for (const auth of [
      { username: USER, password: 'wrong' },
      { username: 'someone', password: PASSWORD },
      { sessionId: 'made-up' },
      undefined,
    ]) {
      const e = await connectError(server, '/admin', auth);
      assert.equal(e.message, 'invalid credentials', JSON.stringify(auth));
    }
  });

  test('signed in: session, config, all_sockets and server_stats counting the clients', async () => {
    const client = await connect(4, server);
    const admin = await connectAdmin(server);
    const [session] = await admin.first('session');
    assert.match(session, /^[0-9a-f]{32}$/);
    const [config] = await admin.first('config');
    assert.deepEqual([...config.supportedFeatures].sort(), [
      'AGGREGATED_EVENTS', 'ALL_EVENTS', 'DISCONNECT', 'JOIN', 'LEAVE', 'MDISCONNECT', 'MJOIN', 'MLEAVE',
    ]);
    const [sockets] = await admin.first('all_sockets');
    const mine = sockets.find((s) => s.id === client.id);
    assert.ok(mine, `${client.id} in all_sockets`);
    assert.equal(mine.nsp, '/');
    assert.ok(mine.rooms.includes(client.id));
    assert.ok(['polling', 'websocket'].includes(mine.transport));
    assert.equal(mine.clientId, client.id.slice(0, 12));
    assert.equal(mine.handshake.address, '127.0.0.1');
    assert.match(mine.handshake.time, ISO_MS);
    assert.equal(typeof mine.handshake.issued, 'number');
    assert.ok(sockets.some((s) => s.id === admin.id && s.nsp === '/admin'), 'the admin socket itself');

    const [stats] = await admin.first('server_stats');
    assert.equal(typeof stats.serverId, 'string');
    assert.equal(typeof stats.hostname, 'string');
    assert.equal(typeof stats.pid, 'number');
    assert.equal(typeof stats.uptime, 'number');
    assert.equal(stats.clientsCount, 2, JSON.stringify(stats));
    assert.ok(stats.pollingClientsCount <= 2);
    const names = stats.namespaces.map((n) => n.name).sort();
    assert.deepEqual(names, ['/', '/admin', '/counsellor', '/tincan']);
    assert.equal(stats.namespaces.find((n) => n.name === '/').socketsCount, 1);
    // And again every 2 seconds, with the counts of what happened.
    const [next] = await onceArgs(admin, 'server_stats', (s) => Array.isArray(s.aggregatedEvents), 5000);
    assert.equal(next.clientsCount, 2);

    // A session opens the next connection without the password.
    const again = await connectAdmin(server, { sessionId: session });
    await again.first('config');
  });

  test('a client connecting, joining a room, sending and leaving is told as it happens', async () => {
    const admin = await connectAdmin(server);
    await admin.first('all_sockets');
    const connected = collectArgs(admin, 'socket_connected');
    const joined = collectArgs(admin, 'room_joined');
    const received = collectArgs(admin, 'event_received');
    const sent = collectArgs(admin, 'event_sent');
    const client = await connect(4, server);
    await waitUntil(() => connected.some(([s]) => s.id === client.id), 3000, 'socket_connected');
    const [socket, at] = connected.find(([s]) => s.id === client.id);
    assert.equal(socket.nsp, '/');
    assert.match(at, ISO_MS);

    const room = await createRoom(client);
    await waitUntil(() => joined.some(([nsp, r, id]) => nsp === '/' && r === room.roomId && id === client.id),
      3000, 'room_joined');
    await waitUntil(() => received.some(([nsp, id, args]) => nsp === '/' && id === client.id
      && args[0] === 'create_room'), 3000, 'event_received');
    await waitUntil(() => sent.some(([nsp, id, args]) => nsp === '/' && id === client.id
      && args[0] === 'create_room' && args[1]?.roomId === room.roomId), 3000, 'event_sent');

    const id = client.id;
    const gone = onceArgs(admin, 'socket_disconnected', (_nsp, sid) => sid === id);
    closeClient(client);
    const [nsp, who, reason, when] = await gone;
    assert.equal(nsp, '/');
    assert.equal(who, id);
    assert.equal(typeof reason, 'string');
    assert.match(when, ISO_MS);
  });

  test('operations: join puts a socket in a room, _disconnect disconnects it', async () => {
    const admin = await connectAdmin(server);
    await admin.first('config');
    const client = await connect(4, server);
    const joined = onceArgs(admin, 'room_joined', (nsp, room, id) => room === 'chosen' && id === client.id);
    admin.emit('join', '/', 'chosen', client.id);
    await joined;
    const gone = waitDisconnected(client);
    admin.emit('_disconnect', '/', false, 'chosen');
    await gone;
  });
});

describe('read-only, production, and no admin', { timeout: 60000 }, () => {
  const started = [];
  /** A server of this test, stopped after the last one. */
  const serve = async (opts) => {
    const server = await startServer(opts);
    started.push(server);
    return server;
  };
  after(async () => { await Promise.all(started.map((server) => server.stop())); });
  afterEach(closeAll);

  test('read-only: no operations offered, and those sent are ignored', async () => {
    const server = await serve({ args: await adminArgs('--admin-readonly') });
    const client = await connect(4, server);
    const admin = await connectAdmin(server);
    const [config] = await admin.first('config');
    assert.deepEqual([...config.supportedFeatures].sort(), ['AGGREGATED_EVENTS', 'ALL_EVENTS']);
    admin.emit('_disconnect', '/', false, client.id);
    await expectNone(client, 'disconnect', 700);
    assert.ok(client.connected);
  });

  test('production: the figures only', async () => {
    const server = await serve({ args: await adminArgs('--admin-mode', 'production') });
    const admin = adminClient(server);
    const [config] = await admin.first('config');
    assert.ok(!config.supportedFeatures.includes('ALL_EVENTS'));
    const [stats] = await admin.first('server_stats');
    assert.equal(stats.clientsCount, 1);
    await expectNone(admin, 'all_sockets', 300);
    await connect(4, server);
    await expectNone(admin, 'socket_connected', 500);
  });

  test('without --admin-user and --admin-password-hash there is no /admin', async () => {
    const server = await serve();
    const e = await connectError(server, '/admin', { username: USER, password: PASSWORD });
    assert.match(e.message, /namespace/i);
  });
});

/** Serves the Admin UI's built files on a free port; resolves with { url, close }. */
function serveUi() {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png',
    '.svg': 'image/svg+xml', '.map': 'application/json' };
  const http = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(UI_DIST, path.endsWith('/') ? `${path}index.html` : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((res) => http.listen(0, '127.0.0.1', () => {
    res({ url: `http://127.0.0.1:${http.address().port}`, close: () => http.close() });
  }));
}

describe('the Admin UI in a browser', { timeout: 120000 }, () => {
  let ui;
  let server;
  let browser;
  before(async () => {
    if (!existsSync(CHROMIUM)) return;
    ui = await serveUi();
    server = await startServer({ args: await adminArgs() });
  });
  after(async () => {
    await browser?.close();
    ui?.close();
    await server?.stop();
  });
  afterEach(closeAll);

  test('signs in with the modal and lists the connected sockets', async (t) => {
    if (!existsSync(CHROMIUM)) {
      // CI installs Chromium (.ci/run): there, its absence is a failure.
      assert.notEqual(process.env.CI, 'true', `${CHROMIUM} is missing`);
      t.skip(`${CHROMIUM} is missing`);
      return;
    }
    const { default: puppeteer } = await import('puppeteer-core');
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    const client = await connect(4, server);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    // Fonts and icons come from CDNs: not reachable, not needed.
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (req.url().startsWith(ui.url) || req.url().startsWith(server.url)) req.continue();
      else req.abort();
    });
    await page.goto(`${ui.url}/`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('form input[type="password"]', { timeout: 15000 });
    const inputs = await page.$$('form input:not([type="checkbox"])');
    // Server URL, username, password, in the modal's order.
    await inputs[0].click({ clickCount: 3 });
    await inputs[0].type(server.url);
    await inputs[1].type(USER);
    await inputs[2].type(PASSWORD);
    await page.click('form button[type="submit"]');
    await page.waitForFunction(() => !document.querySelector('form input[type="password"]')
      || document.querySelector('form input[type="password"]').offsetParent === null, { timeout: 15000 });
    await page.goto(`${ui.url}/#/sockets/`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction((id) => document.body.innerText.includes(id), { timeout: 15000 }, client.id);
    const dir = await mkdtemp(join(tmpdir(), 'bubble-admin-ui-'));
    const shot = join(dir, 'sockets.png');
    await page.screenshot({ path: shot });
    t.diagnostic(`screenshot: ${shot}`);
    console.log(`# Admin UI screenshot: ${shot}`);
  });
});
