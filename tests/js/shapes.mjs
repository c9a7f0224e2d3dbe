// Shapes of the Bubble protocol (spec: "Shapes") and assertions over them.
import assert from 'node:assert/strict';
import { ISO_MS, UUID_V4 } from './harness.mjs';

export const CATEGORIES = ['Rant', 'Funny', 'Nostalgia', 'Relationship', 'Advice', 'School'];

export const ROOM_KEYS = [
  'roomId', 'roomName', 'roomDescription', 'roomType', 'userLimit', 'categories', 'numUsers',
  'lastActive', 'createdBy', 'createdByBubbleId', 'isOpen', 'createdAt', 'updatedAt',
];

export const MESSAGE_KEYS = [
  'id', 'userId', 'bubbleId', 'messageType', 'content', 'roomRoomId', 'targetUser',
  'targetUserBubbleId', 'createdAt', 'updatedAt',
];

/** add_message as emitted to the room: the Message plus these (`roomId` is named by the seed). */
export const ADD_MESSAGE_KEYS = [...MESSAGE_KEYS, 'roomId', 'roomName', 'sentByMe', 'user', 'message'];
/** add_reaction as emitted to the room (`roomId` is named by the seed). */
export const ADD_REACTION_KEYS = [...MESSAGE_KEYS, 'roomId', 'roomName', 'user', 'reaction', 'sentByMe'];
/** join_room / exit_room / typing / stop_typing as others get them. */
export const PRESENCE_KEYS = ['roomId', 'userId', 'bubbleId', 'user'];

export function assertKeys(obj, keys, what) {
  assert.ok(obj && typeof obj === 'object' && !Array.isArray(obj), `${what}: expected an object, got ${JSON.stringify(obj)}`);
  assert.deepEqual(Object.keys(obj).sort(), [...keys].sort(), `${what}: exact payload keys`);
}

export function assertHasKeys(obj, keys, what) {
  assert.ok(obj && typeof obj === 'object' && !Array.isArray(obj), `${what}: expected an object, got ${JSON.stringify(obj)}`);
  const missing = keys.filter((k) => !(k in obj));
  assert.deepEqual(missing, [], `${what}: missing keys`);
}

export function assertIso(value, what) {
  assert.match(String(value), ISO_MS, `${what} must be ISO-8601 UTC with milliseconds`);
  assert.equal(typeof value, 'string', `${what} must be a string`);
  assert.ok(!Number.isNaN(Date.parse(value)), `${what} must be a valid date`);
}

/** Checks every Room key and its type, then the `expected` values. */
export function assertRoom(room, expected = {}, what = 'room') {
  assertHasKeys(room, ROOM_KEYS, what);
  assert.match(room.roomId, UUID_V4, `${what}.roomId must be a lowercase UUID v4`);
  assert.equal(typeof room.roomName, 'string', `${what}.roomName`);
  assert.equal(typeof room.roomDescription, 'string', `${what}.roomDescription`);
  assert.ok(['PUBLIC', 'PRIVATE', 'HOT'].includes(room.roomType), `${what}.roomType ${room.roomType}`);
  assert.ok(Number.isInteger(room.userLimit) && room.userLimit >= 2 && room.userLimit <= 100,
    `${what}.userLimit must be an integer in 2..100, got ${JSON.stringify(room.userLimit)}`);
  assert.ok(Array.isArray(room.categories) && room.categories.every((c) => CATEGORIES.includes(c)),
    `${what}.categories ${JSON.stringify(room.categories)}`);
  assert.ok(Number.isInteger(room.numUsers) && room.numUsers >= 0, `${what}.numUsers ${room.numUsers}`);
  assertIso(room.lastActive, `${what}.lastActive`);
  assert.equal(typeof room.createdBy, 'string', `${what}.createdBy`);
  assert.equal(typeof room.createdByBubbleId, 'string', `${what}.createdByBubbleId`);
  assert.equal(typeof room.isOpen, 'boolean', `${what}.isOpen`);
  assertIso(room.createdAt, `${what}.createdAt`);
  assertIso(room.updatedAt, `${what}.updatedAt`);
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(room[k], v, `${what}.${k}`);
  }
}

/** Checks every Message key and its type, then the `expected` values. */
export function assertMessage(msg, expected = {}, what = 'message') {
  assertHasKeys(msg, MESSAGE_KEYS, what);
  assert.ok(typeof msg.id === 'number' || (typeof msg.id === 'string' && msg.id.length > 0), `${what}.id ${msg.id}`);
  assert.equal(typeof msg.userId, 'string', `${what}.userId`);
  assert.equal(typeof msg.bubbleId, 'string', `${what}.bubbleId`);
  assert.ok(['MESSAGE', 'REACTION'].includes(msg.messageType), `${what}.messageType ${msg.messageType}`);
  assert.equal(typeof msg.content, 'string', `${what}.content`);
  assert.match(msg.roomRoomId, UUID_V4, `${what}.roomRoomId`);
  assert.ok(msg.targetUser === null || typeof msg.targetUser === 'string', `${what}.targetUser`);
  assert.ok(msg.targetUserBubbleId === null || typeof msg.targetUserBubbleId === 'string', `${what}.targetUserBubbleId`);
  assertIso(msg.createdAt, `${what}.createdAt`);
  assertIso(msg.updatedAt, `${what}.updatedAt`);
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(msg[k], v, `${what}.${k}`);
  }
}

/** Asserts messages are newest first with strictly decreasing createdAt and distinct ids. */
export function assertNewestFirst(messages, what = 'messages') {
  assert.ok(Array.isArray(messages), `${what} must be an array`);
  for (let i = 1; i < messages.length; i++) {
    assert.ok(messages[i - 1].createdAt > messages[i].createdAt,
      `${what}[${i - 1}].createdAt ${messages[i - 1].createdAt} must be later than [${i}] ${messages[i].createdAt}`);
  }
  assert.equal(new Set(messages.map((m) => String(m.id))).size, messages.length, `${what}: ids must be unique`);
}

/** Deterministic UUIDs of a given version (1..8, or 0 for the nil-like form). */
export function uuidOfVersion(version, variant = '8') {
  return `3f2504e0-4f89-${version}1d3-${variant}a0c-0305e82c3301`;
}
