// The Bubble hot path on Node.js: socket.io 4 (Engine.IO 3 and 4 clients) and better-sqlite3,
// a reference for `bubble-bench compare`. It implements create_room, join_room, add_message and
// list_rooms with the payload shapes of the Bubble protocol (spec/bubble.md) and the same
// storage choices as the Rust server: SQLite in WAL mode with synchronous=NORMAL, one
// transaction per message that moves the room's lastActive and inserts the row, the 100 newest
// messages per room read through an index. Nothing else of the protocol is here.
//
//   node server.js [--port 0] [--database reference.db]
//
// Prints `listening on 127.0.0.1:PORT` once bound.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { Server } = require('socket.io');
const Database = require('better-sqlite3');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const db = new Database(arg('database', 'reference.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('foreign_keys = ON');
db.exec(`
  CREATE TABLE IF NOT EXISTS people (token_hash TEXT PRIMARY KEY, bubble_id TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, room_type TEXT NOT NULL,
    user_limit INTEGER NOT NULL, categories TEXT NOT NULL, is_open INTEGER NOT NULL,
    created_by TEXT NOT NULL, created_by_bubble_id TEXT NOT NULL, last_active INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS room_members (
    room_id TEXT NOT NULL REFERENCES rooms(id), bubble_id TEXT NOT NULL, joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, bubble_id));
  CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, room_id TEXT NOT NULL REFERENCES rooms(id),
    user_id TEXT NOT NULL, bubble_id TEXT NOT NULL, message_type TEXT NOT NULL,
    content TEXT NOT NULL, target_user TEXT, target_user_bubble_id TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS messages_room_created ON messages (room_id, created_at, id);
`);

const q = {
  person: db.prepare('SELECT bubble_id FROM people WHERE token_hash = ?'),
  addPerson: db.prepare('INSERT OR IGNORE INTO people (token_hash, bubble_id) VALUES (?, ?)'),
  room: db.prepare('SELECT * FROM rooms WHERE id = ?'),
  addRoom: db.prepare(`INSERT INTO rooms VALUES (@id, @name, @description, @room_type, @user_limit,
    @categories, 1, @created_by, @created_by_bubble_id, @now, @now, @now)`),
  addMember: db.prepare(
    'INSERT OR IGNORE INTO room_members (room_id, bubble_id, joined_at) VALUES (?, ?, ?)'),
  stamp: db.prepare(`UPDATE rooms SET
    last_active = CASE WHEN last_active + 1 > @now THEN last_active + 1 ELSE @now END,
    updated_at = @now WHERE id = @id RETURNING *`),
  addMessage: db.prepare(`INSERT INTO messages (room_id, user_id, bubble_id, message_type, content,
    created_at, updated_at) VALUES (?, ?, ?, 'MESSAGE', ?, ?, ?) RETURNING *`),
  recent: db.prepare(`SELECT * FROM messages WHERE room_id = ?
    ORDER BY created_at DESC, id DESC LIMIT 100`),
  listable: db.prepare(`SELECT * FROM rooms WHERE is_open = 1 AND room_type != 'PRIVATE'
    AND (last_active >= ? OR room_type = 'HOT')`),
};

const createRoom = db.transaction((row, bubbleId) => {
  q.addRoom.run(row);
  q.addMember.run(row.id, bubbleId, row.now);
});
const storeMessage = db.transaction((roomId, userId, bubbleId, content) => {
  const room = q.stamp.get({ now: Date.now(), id: roomId });
  if (!room) return null;
  const message = q.addMessage.get(roomId, userId, bubbleId, content, room.last_active,
    room.last_active);
  return { room, message };
});

const iso = (ms) => new Date(ms).toISOString();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LIST_WINDOW_MS = 3 * 24 * 60 * 60 * 1000;

// Presence: room id -> Map(socket id -> bubbleId).
const presence = new Map();
const here = (roomId) => presence.get(roomId) || new Map();
function numUsers(roomId) {
  return new Set(here(roomId).values()).size;
}

function roomView(r) {
  return {
    roomId: r.id, roomName: r.name, roomDescription: r.description, roomType: r.room_type,
    userLimit: r.user_limit, categories: JSON.parse(r.categories), numUsers: numUsers(r.id),
    lastActive: iso(r.last_active), createdBy: r.created_by,
    createdByBubbleId: r.created_by_bubble_id, isOpen: r.is_open === 1,
    createdAt: iso(r.created_at), updatedAt: iso(r.updated_at),
  };
}
function messageView(m) {
  return {
    id: m.id, userId: m.user_id, bubbleId: m.bubble_id, messageType: m.message_type,
    content: m.content, roomRoomId: m.room_id, targetUser: m.target_user,
    targetUserBubbleId: m.target_user_bubble_id, createdAt: iso(m.created_at),
    updatedAt: iso(m.updated_at),
  };
}
function roomDetail(r) {
  return {
    ...roomView(r),
    messages: q.recent.all(r.id).map(messageView),
    participants: [...here(r.id).keys()],
  };
}

const server = http.createServer();
const io = new Server(server, {
  allowEIO3: true,
  maxHttpBufferSize: 2 * 1024 * 1024,
  cors: { origin: true, credentials: true },
});

io.on('connection', (socket) => {
  let bubbleId;
  const token = socket.handshake.query.bubble;
  if (typeof token === 'string' && UUID.test(token)) {
    const hash = crypto.createHash('sha256').update(token.toLowerCase()).digest('hex');
    q.addPerson.run(hash, crypto.randomUUID());
    bubbleId = q.person.get(hash).bubble_id;
  } else {
    bubbleId = crypto.randomUUID();
  }
  const mine = new Set();
  const fail = (ack, code, message) => {
    const error = { code, message };
    socket.emit('bubble_error', error);
    if (typeof ack === 'function') ack({ error });
  };
  const reply = (ack, event, payload) => {
    socket.emit(event, payload);
    if (typeof ack === 'function') ack(payload);
  };
  const body = (p) => (p && typeof p === 'object' && !Array.isArray(p) ? p : {});
  const enter = (roomId) => {
    if (!presence.has(roomId)) presence.set(roomId, new Map());
    presence.get(roomId).set(socket.id, bubbleId);
    mine.add(roomId);
    socket.join(roomId);
  };
  const roomOf = (p, ack) => {
    const roomId = p.roomId;
    if (roomId === undefined || roomId === null || roomId === '') {
      return fail(ack, 'no_room_id', 'roomId is missing');
    }
    if (typeof roomId !== 'string' || !UUID.test(roomId)) {
      return fail(ack, 'invalid_room_id', 'roomId is not a UUID');
    }
    const room = q.room.get(roomId.toLowerCase());
    if (!room) return fail(ack, 'room_id_not_found', 'no such room');
    return room;
  };

  socket.emit('my_id', bubbleId);

  socket.on('create_room', (payload, ack) => {
    const p = body(payload);
    if (!p.roomName) return fail(ack, 'no_room_name', 'roomName is missing');
    if (typeof p.roomName !== 'string' || p.roomName.length > 200) {
      return fail(ack, 'invalid_room_name', 'roomName is not valid');
    }
    let userLimit = 21;
    if (p.userLimit !== undefined && p.userLimit !== null && p.userLimit !== '') {
      userLimit = Number.parseInt(p.userLimit, 10);
      if (!(userLimit >= 2 && userLimit <= 100)) {
        return fail(ack, 'invalid_user_limit', 'userLimit must be 2 to 100');
      }
    }
    const row = {
      id: crypto.randomUUID(), name: p.roomName, description: p.roomDescription || '',
      room_type: 'PUBLIC', user_limit: userLimit, categories: JSON.stringify(p.categories || []),
      created_by: socket.id, created_by_bubble_id: bubbleId, now: Date.now(),
    };
    createRoom(row, bubbleId);
    enter(row.id);
    reply(ack, 'create_room', { ...roomView(q.room.get(row.id)), messages: [],
      participants: [...here(row.id).keys()] });
  });

  socket.on('join_room', (payload, ack) => {
    const room = roomOf(body(payload), ack);
    if (!room) return;
    if (!room.is_open) return fail(ack, 'room_closed', 'the room is closed');
    if (!mine.has(room.id)) {
      if (room.room_type === 'PRIVATE' || numUsers(room.id) >= room.user_limit) {
        return fail(ack, 'room_full', 'the room is full');
      }
      q.addMember.run(room.id, bubbleId, Date.now());
      enter(room.id);
      socket.to(room.id).emit('join_room',
        { roomId: room.id, userId: socket.id, bubbleId, user: socket.id });
    }
    reply(ack, 'join_room', { ...roomDetail(room), userId: socket.id, bubbleId });
  });

  socket.on('add_message', (payload, ack) => {
    const p = body(payload);
    const room = roomOf(p, ack);
    if (!room) return;
    if (p.message === undefined || p.message === null || p.message === '') {
      return fail(ack, 'no_message', 'message is missing');
    }
    if (typeof p.message !== 'string' || p.message.length > 3000) {
      return fail(ack, 'invalid_message', 'message is not valid');
    }
    if (!mine.has(room.id)) return fail(ack, 'user_not_in_room', 'not in that room');
    const stored = storeMessage(room.id, socket.id, bubbleId, p.message);
    if (!stored) return fail(ack, 'room_id_not_found', 'no such room');
    const out = {
      ...messageView(stored.message), roomId: room.id, roomName: stored.room.name,
      user: socket.id, sentByMe: false, message: p.message,
    };
    socket.to(room.id).emit('add_message', out);
    reply(ack, 'add_message', { ...out, sentByMe: true });
  });

  socket.on('list_rooms', (_payload, ack) => {
    const rooms = q.listable.all(Date.now() - LIST_WINDOW_MS);
    const listed = new Set(rooms.map((r) => r.id));
    for (const id of mine) {
      const r = q.room.get(id);
      if (r && !listed.has(id) && r.is_open && r.room_type !== 'PRIVATE') rooms.push(r);
    }
    rooms.sort((a, b) => ((a.room_type !== 'HOT') - (b.room_type !== 'HOT'))
      || (a.last_active - b.last_active));
    reply(ack, 'list_rooms', rooms.map(roomDetail));
  });

  socket.on('disconnect', () => {
    for (const roomId of mine) {
      const people = presence.get(roomId);
      if (!people) continue;
      people.delete(socket.id);
      if (![...people.values()].includes(bubbleId)) {
        socket.to(roomId).emit('exit_room',
          { roomId, userId: socket.id, bubbleId, user: socket.id });
      }
      if (people.size === 0) presence.delete(roomId);
    }
  });
});

server.listen(Number(arg('port', process.env.PORT || 0)), '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    io.close();
    db.close();
    process.exit(0);
  });
}
