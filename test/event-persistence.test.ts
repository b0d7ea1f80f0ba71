import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import t from 'tap';
import { assertSeatInvariant, originalEvent, serviceAuth, startEventApp, tempDir } from './helpers/event-app.js';
import { createKysely, migrateToLatest, openSqlite } from '../platform/store/sqlite/store.js';
import { eventMigrations } from '../event-service/store/migrations/index.js';
import { loadSpec } from '../openapi/spec.js';
import { createHold, getEvent, getHold, holdAction, postEvent, type ApiEvent } from './helpers/event-api.js';

interface MigrationRow {
  name: string;
  timestamp: string;
}

/** The migrations recorded in a database file (kysely's bookkeeping table). */
function recordedMigrations(path: string): MigrationRow[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT name, timestamp FROM kysely_migration ORDER BY name').all() as MigrationRow[];
  } finally {
    db.close();
  }
}

t.test('the migrations bring an empty file to the latest schema, and applying them again does nothing', async (t) => {
  const dir = tempDir(t);
  const path = `${dir}/fresh/event_data.db`;
  const database = openSqlite({ path, synchronous: 'FULL' });
  const db = createKysely<unknown>(database);
  t.teardown(() => db.destroy());
  t.same(await migrateToLatest(db, eventMigrations('sqlite')), Object.keys(eventMigrations('sqlite')), 'every migration runs on an empty file (its folder is created)');
  t.same(await migrateToLatest(db, eventMigrations('sqlite')), [], 'none runs a second time');
  const tables = (database.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name);
  for (const table of ['venues', 'events', 'holds', 'manual_adjustments', 'events_fts']) t.ok(tables.includes(table), `table ${table} exists`);
});

t.test('a second start over the same file applies no migration and keeps the event, its holds and its availability', async (t) => {
  const dir = tempDir(t);
  const first = await startEventApp(t, {}, { dir });
  const path = first.config.EVENT_DB_PATH;
  t.ok(existsSync(path), 'the first start created the database file');
  const migrationsAfterFirst = recordedMigrations(path);
  t.same(migrationsAfterFirst.map((m) => m.name), Object.keys(eventMigrations('sqlite')), 'the first start applied every migration');

  const event = await postEvent(first, { ...originalEvent, total_tickets: 50 });
  const held = await createHold(first, event.id, 3);
  const sold = await createHold(first, event.id, 4);
  t.equal((await holdAction(first, sold.hold_id, 'commit')).statusCode, 200);
  const released = await createHold(first, event.id, 5);
  t.equal((await holdAction(first, released.hold_id, 'release')).statusCode, 200);
  const adjusted = await first.inject({ method: 'PUT', url: `/events/${event.id}/tickets`, headers: serviceAuth, payload: { operation: 'reserve', ticket_count: 2 } });
  t.equal(adjusted.statusCode, 200);
  const before = await getEvent(first, event.id);
  t.match(before, { total_tickets: 50, available_tickets: 41, held_tickets: 3, sold_tickets: 4, manual_reserved_tickets: 2 });
  await first.app.close();

  const second = await startEventApp(t, {}, { dir });
  t.same(recordedMigrations(path), migrationsAfterFirst, 'the second start applied no migration');
  t.same(await getEvent(second, event.id), before, 'the event and its availability survived');
  t.equal((await getHold(second, held.hold_id)).state, 'HELD');
  t.equal((await getHold(second, sold.hold_id)).state, 'COMMITTED');
  t.equal((await getHold(second, released.hold_id)).state, 'RELEASED');
  const list = await second.inject({ method: 'GET', url: '/events' });
  t.same(list.json<ApiEvent[]>().map((e) => e.id), [event.id]);

  const next = await postEvent(second);
  t.ok(next.id > event.id, 'ids continue after the stored ones');
  t.equal((await holdAction(second, held.hold_id, 'commit')).statusCode, 200, 'a hold from before the restart can be committed');
  t.equal((await second.inject({ method: 'POST', url: '/holds', headers: serviceAuth, payload: { hold_id: released.hold_id, event_id: event.id, quantity: 5, expires_at: '2030-01-01T00:00:00Z' } })).statusCode, 409, 'a released hold stays released');
  t.equal((await second.inject({ method: 'POST', url: '/holds', headers: serviceAuth, payload: { hold_id: randomUUID(), event_id: event.id, quantity: 41, expires_at: '2030-01-01T00:00:00Z' } })).statusCode, 201, 'the seats left are still for sale');
  await assertSeatInvariant(t, second, event.id);
});

t.test('GET /health and GET /ready answer 200', async (t) => {
  const app = await startEventApp(t);
  const health = await app.inject({ method: 'GET', url: '/health' });
  t.equal(health.statusCode, 200);
  t.match(health.json<{ status: string; service: string }>(), { status: 'ok', service: 'event-service' });
  const ready = await app.inject({ method: 'GET', url: '/ready' });
  t.equal(ready.statusCode, 200);
  t.match(ready.json<{ status: string; checks: Record<string, string> }>(), { status: 'ok', checks: { database: 'ok' } });
});

t.test('GET / redirects to /docs, and /docs answers the Swagger UI page', async (t) => {
  const app = await startEventApp(t);
  const root = await app.inject({ method: 'GET', url: '/' });
  t.ok([301, 302, 303, 307, 308].includes(root.statusCode), `a redirect (${root.statusCode})`);
  t.equal(root.headers.location, '/docs');
  const docs = await app.inject({ method: 'GET', url: '/docs' });
  t.equal(docs.statusCode, 200);
  t.match(String(docs.headers['content-type']), /^text\/html/);
  t.match(docs.body, /<html/i);
  t.match(docs.body, /swagger/i);
});

t.test('GET /openapi.json is the spec with servers filled in from the configuration', async (t) => {
  const app = await startEventApp(t, { EVENT_SERVICE_PORT: '5999', HOST: '127.0.0.1' });
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(response.statusCode, 200);
  t.match(String(response.headers['content-type']), /^application\/json/);
  const served = response.json<{ openapi: string; info: { title: string }; paths: Record<string, unknown>; servers: Array<{ url: string }> }>();
  const written = loadSpec('event-service');
  t.equal(served.openapi, written.openapi);
  t.same(served.info, written.info);
  t.same(served.paths, written.paths, 'the paths are the contract as written');
  t.same(served.servers.map((s) => s.url), ['http://127.0.0.1:5999'], 'servers name this service as configured');
});

t.test('every response carries an x-request-id, and an incoming x-request-id is echoed back', async (t) => {
  const app = await startEventApp(t);
  const answers = [
    await app.inject({ method: 'GET', url: '/health' }),
    await app.inject({ method: 'GET', url: '/events' }),
    await app.inject({ method: 'GET', url: '/events/99' }),
    await app.inject({ method: 'POST', url: '/events', payload: { name: 'x' } }),
  ];
  for (const answer of answers) t.match(String(answer.headers['x-request-id']), /^[\w-]{8,}$/, `a ${answer.statusCode} answer carries an id`);
  t.equal(new Set(answers.map((a) => a.headers['x-request-id'])).size, answers.length, 'each request gets its own id');
  const incoming = 'req-from-ticket-service-0001';
  const echoed = await app.inject({ method: 'GET', url: '/events', headers: { 'x-request-id': incoming } });
  t.equal(echoed.headers['x-request-id'], incoming, 'the incoming id is echoed');
  const failed = await app.inject({ method: 'GET', url: '/events/abc', headers: { 'x-request-id': incoming } });
  t.equal(failed.headers['x-request-id'], incoming, 'also on an error');
});
