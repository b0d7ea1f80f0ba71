/**
 * event-service on PostgreSQL when its database goes away at run time (DESIGN.md, Store and
 * scale-out): GET /ready says so with a 503, requests meanwhile get 503 problem+json `unavailable`
 * (never a 500), writes whose connections are ended mid-transaction are 503 and leave no trace, and
 * the service works again as soon as the database does, without a restart of its own.
 */
import { createServer, type Server, type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import t, { type Test } from 'tap';
import { serviceAuth, startEventApp, type TestEventApp } from './helpers/event-app.js';
import { assertProblem, holdRequest, postEvent, requestHold, sleep } from './helpers/event-api.js';
import { createTestDatabase, terminateBackends, testStores, TEST_DATABASE_URL } from './helpers/postgres.js';
import { eventually } from './helpers/system.js';
import type { components } from '../openapi/generated/event-service.js';

type SeatLedger = components['schemas']['SeatLedger'];

/** A TCP pass-through to the PostgreSQL server that the test can take down (connections refused, open ones cut) and bring back on the same port. */
interface DatabaseLink {
  url: string;
  down(): Promise<void>;
  up(): Promise<void>;
}

async function databaseLink(t: Test, databaseUrl: string): Promise<DatabaseLink> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  const listen = (server: Server, port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const newServer = () =>
    createServer((client) => {
      const server = connect(Number(target.port || 5432), target.hostname);
      for (const socket of [client, server]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(server).pipe(client);
    });
  let server = newServer();
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;
  const down = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.teardown(async () => {
    if (server.listening) await down();
  });
  const url = new URL(databaseUrl);
  url.port = String(port);
  return {
    url: url.toString(),
    down,
    up: async () => {
      server = newServer();
      await listen(server, port);
    },
  };
}

/** `app.inject` without the helper's rule that a 5xx fails the test: these answers are expected to be 503 (checked by assertProblem). */
const raw = (app: TestEventApp, options: Parameters<TestEventApp['inject']>[0]): Promise<LightMyRequestResponse> => app.app.inject(options);

async function ledger(app: TestEventApp, eventId: number): Promise<SeatLedger | undefined> {
  return (await app.inject({ method: 'GET', url: `/seat-ledgers?event_id=${eventId}`, headers: serviceAuth })).json<SeatLedger[]>()[0];
}

/** Waits until `count` of the service's statements are waiting for a row lock in `databaseUrl`. */
async function waitForLockWaiters(admin: pg.Client, databaseUrl: string, count: number): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  for (;;) {
    const result = await admin.query<{ waiting: number }>("SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [name]);
    if ((result.rows[0]?.waiting ?? 0) >= count) return;
    await sleep(10);
  }
}

const stores = await testStores();

t.test('with PostgreSQL gone, GET /ready and every request are 503 unavailable, never 500; once it is back the service answers again without a restart', { skip: !stores.includes('postgres') && 'needs PostgreSQL' }, async (t) => {
  const database = await createTestDatabase(t, 'outage');
  const link = await databaseLink(t, database);
  const app = await startEventApp(t, { EVENT_DATABASE_URL: link.url }, { store: 'postgres' });
  const event = await postEvent(app, { total_tickets: 10 });
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'ready while the database answers');

  await link.down();
  const ready = assertProblem(t, await raw(app, { method: 'GET', url: '/ready' }), 503, 'unavailable');
  t.match(ready.detail, /database/);
  assertProblem(t, await raw(app, { method: 'GET', url: `/events/${event.id}` }), 503, 'unavailable');
  assertProblem(t, await raw(app, { method: 'GET', url: '/events?q=conference' }), 503, 'unavailable');
  const refused = holdRequest(event.id, 2);
  assertProblem(t, await raw(app, { method: 'POST', url: '/holds', headers: serviceAuth, payload: { ...refused } }), 503, 'unavailable');

  await link.up();
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'ready again once the database is back');
  t.equal((await requestHold(app, refused)).statusCode, 201, 'the hold refused during the outage is taken now');
  t.match(await ledger(app, event.id), { available_tickets: 8, held_tickets: 2, sums: { held: 2 } }, 'and counted once');
});

t.test('holds whose connections are ended mid-transaction (pg_terminate_backend) are 503 and take nothing; the next holds succeed without a restart', { skip: !stores.includes('postgres') && 'needs PostgreSQL' }, async (t) => {
  const app = await startEventApp(t, {}, { store: 'postgres' });
  const databaseUrl = app.databaseUrl ?? '';
  const event = await postEvent(app, { total_tickets: 50 });
  const settled = holdRequest(event.id, 5);
  t.equal((await requestHold(app, settled)).statusCode, 201);

  // Another session holds the event row, so each hold below stops inside its transaction, waiting for it.
  const blocker = new pg.Client({ connectionString: databaseUrl });
  blocker.on('error', () => undefined);
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('SELECT id FROM events WHERE id = $1 FOR UPDATE', [event.id]);
  const blockerPid = Number((await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
  // On the server's own database: terminateBackends ends every session of the service's.
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  t.teardown(() => admin.end());

  const inFlight = Array.from({ length: 10 }, () => holdRequest(event.id, 2));
  const answers = Promise.all(inFlight.map((body) => raw(app, { method: 'POST', url: '/holds', headers: serviceAuth, payload: { ...body } })));
  await waitForLockWaiters(admin, databaseUrl, inFlight.length);
  // The service's sessions first: were the blocking one ended with them, a hold (one statement) could take the lock and commit before its own session ends.
  t.ok((await terminateBackends(databaseUrl, [blockerPid])) >= inFlight.length, 'the service connections were ended');
  for (const answer of await answers) assertProblem(t, answer, 503, 'unavailable');
  await blocker.end();
  // The pool learns of its ended idle connections asynchronously: the service is ready again within moments, without a restart.
  t.ok(await eventually(async () => (await raw(app, { method: 'GET', url: '/ready' })).statusCode === 200, 5_000), 'ready without a restart');
  t.same(await ledger(app, event.id), { event_id: event.id, total_tickets: 50, available_tickets: 45, held_tickets: 5, sold_tickets: 0, manual_reserved_tickets: 0, waitlist_reserved_tickets: 0, waitlist_sequence: 0, sums: { held: 5, committed: 0, manual: 0 } }, 'only the settled hold is counted');
  for (const body of inFlight) t.equal((await app.inject({ method: 'GET', url: `/holds/${body.hold_id}`, headers: serviceAuth })).statusCode, 404, `hold ${body.hold_id} was not written`);

  // A client retries a 503; a connection the pool has not yet learnt was ended may cost one more.
  for (const body of inFlight) t.ok(await eventually(async () => (await raw(app, { method: 'POST', url: '/holds', headers: serviceAuth, payload: { ...body } })).statusCode === 201, 5_000), 'a retry of a 503 hold is taken');
  t.match(await ledger(app, event.id), { available_tickets: 25, held_tickets: 25, sums: { held: 25 } }, 'each retried hold counted once');
});
