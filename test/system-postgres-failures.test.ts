/**
 * ticket-service on PostgreSQL when its database fails it (issue #12, "Bad input and failure"): a
 * TICKET_DATABASE_URL it cannot use stops it at start-up with one message naming the variable; while
 * the database is gone it is not ready and answers 503; connections ended under a purchase burst
 * cost 503s on the purchases in flight, never a 500 or a wrong seat count, and it recovers without a
 * restart. Connections are lost by ending this test's own backends (pg_terminate_backend) or through
 * a proxy in front of the server, never by touching the shared server.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Agent } from 'undici';
import { repoRoot } from '../openapi/spec.js';
import { SERVICE_TOKEN, tempDir } from './helpers/event-app.js';
import { startPostgresProxy, TEST_DATABASE_URL, testStores, type PostgresProxy } from './helpers/postgres.js';
import { eventually, startSystem, type TestSystem } from './helpers/system.js';
import { asProblem, asTicket, createEvent, getEvent, getHold, raw, reserve, ticketBody, uuid, type RawAnswer } from './helpers/system-api.js';

/** ticket-service started on its own with this TICKET_DATABASE_URL; how it ended. */
function startTicketService(databaseUrl: string, dir: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'ticket-service', 'server.js')], {
    env: { PATH: process.env.PATH ?? '', SERVICE_TOKEN, TICKET_SERVICE_PORT: '0', TICKET_DB_PATH: join(dir, 'ticket_data.db'), LOG_LEVEL: 'silent', TICKET_DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stderr });
    }),
  );
}

const server = new URL(TEST_DATABASE_URL);
const stores = await testStores();

const unusable: Array<[string, string, RegExp]> = [
  ['a malformed TICKET_DATABASE_URL', 'postgres//127.0.0.1/tickets', /TICKET_DATABASE_URL is not a URL/],
  ['a TICKET_DATABASE_URL that is not postgres://', 'mysql://127.0.0.1/tickets', /TICKET_DATABASE_URL = mysql:\/\/127\.0\.0\.1\/tickets: expected a postgres:\/\/ URL/],
  ['an unreachable TICKET_DATABASE_URL', 'postgres://postgres@127.0.0.1:1/tickets', /TICKET_DATABASE_URL = postgres:\/\/postgres@127\.0\.0\.1:1\/tickets: cannot use the database/],
];
if (stores.includes('postgres')) {
  unusable.push([
    'a TICKET_DATABASE_URL whose credentials the server refuses',
    `postgres://no_such_role:s3cret-word@${server.host}/postgres`,
    /TICKET_DATABASE_URL = postgres:\/\/no_such_role:\*\*\*@.*: cannot use the database: role "no_such_role" does not exist/,
  ]);
}
for (const [what, url, message] of unusable) {
  t.test(`${what} stops ticket-service at start-up with exit 1 and one message naming the variable`, async (t) => {
    const { code, stderr } = await startTicketService(url, tempDir(t));
    t.equal(code, 1, 'it exits 1');
    t.match(stderr, message, 'the message names the variable and says what is wrong');
    t.equal(stderr.match(/ticket-service:/g)?.length, 1, `one message (${stderr.trim()})`);
    t.notMatch(stderr, /\n\s+at /, 'without a stack trace');
    t.notMatch(stderr, /s3cret-word/, 'and without the password');
  });
}

/** ticket-service on PostgreSQL through a proxy, which the tests use to take its database away. */
async function systemThroughProxy(t: Test, env: Record<string, string> = {}): Promise<{ system: TestSystem; proxy: PostgresProxy }> {
  const proxy = await startPostgresProxy(t);
  const system = await startSystem(t, {
    store: 'postgres',
    env,
    databaseUrlFor: (service, url) => (service === 'ticket-service' ? proxy.through(url) : url),
  });
  return { system, proxy };
}

const isUnavailable = (answer: RawAnswer): boolean =>
  answer.status === 503 && answer.contentType.startsWith('application/problem+json') && asProblem(answer.json).type === 'urn:eventsync:problem:unavailable';

const purchase = (system: TestSystem, eventId: number, options: { key?: string; agent?: Agent } = {}) =>
  raw(`${system.ticket.url}/tickets`, {
    method: 'POST',
    body: ticketBody(eventId, 1),
    headers: options.key ? { 'idempotency-key': options.key } : {},
    ...(options.agent ? { dispatcher: options.agent } : {}),
  });

if (stores.includes('postgres')) {
  t.test('while its database is gone, ticket-service is not ready and answers 503 unavailable; when it is back it serves again without a restart', async (t) => {
    const { system, proxy } = await systemThroughProxy(t);
    const pid = system.ticket.process.pid;
    const event = await createEvent(system, { total_tickets: 10 });
    const before = await reserve(system, event.id, 1);
    t.equal((await raw(`${system.ticket.url}/ready`)).status, 200, 'ready while the database answers');

    proxy.cut();
    const ready = await raw(`${system.ticket.url}/ready`);
    t.ok(isUnavailable(ready), `GET /ready is 503 unavailable (answered ${ready.status})`);
    const key = uuid();
    for (const [what, answer] of [
      ['a purchase', await purchase(system, event.id)],
      ['a purchase with an Idempotency-Key', await purchase(system, event.id, { key })],
      ['reading a ticket', await raw(`${system.ticket.url}/tickets/${before.id}`)],
    ] as const) {
      t.ok(isUnavailable(answer), `${what} is 503 unavailable, never a 500 (answered ${answer.status}: ${JSON.stringify(answer.json)})`);
    }

    proxy.restore();
    t.ok(await eventually(async () => (await raw(`${system.ticket.url}/ready`)).status === 200), 'ready again once the database is back');
    const retried = await purchase(system, event.id, { key });
    t.equal(retried.status, 201, 'the purchase retried with its key reserves');
    t.equal((await purchase(system, event.id)).status, 201, 'so does a new one');
    t.equal(system.ticket.process.pid, pid, 'the same process');
    t.equal(system.ticket.process.exitCode, null, 'still running');
    // The keyless purchase answered 503 took its hold before the write failed: the reconciler releases it.
    t.ok(await eventually(async () => (await system.audit()).length === 0, 15_000), 'the invariant holds across both services once the reconciler has run');
    const current = await getEvent(system, event.id);
    t.same([current.held_tickets, current.available_tickets], [3, 7], 'the three acknowledged reservations hold their seats, nothing else does');
  });

  t.test('ending ticket-service\'s database connections under a purchase burst costs 503s on the purchases in flight, never a 500 or a wrong seat count', async (t) => {
    const { system, proxy } = await systemThroughProxy(t, { EVENT_SERVICE_TIMEOUT_SECONDS: '2' });
    const pid = system.ticket.process.pid;
    const event = await createEvent(system, { total_tickets: 100 });
    const agent = new Agent({ connections: 50, pipelining: 0 });
    t.teardown(() => agent.close());
    // Opens connections in the service's pool, so that the burst's queries run on live backends.
    await Promise.all(Array.from({ length: 10 }, () => raw(`${system.ticket.url}/tickets?event_id=${event.id}`, { dispatcher: agent })));

    proxy.hold();
    const keys = Array.from({ length: 10 }, () => uuid());
    const burst = Promise.all([
      ...keys.map((key) => purchase(system, event.id, { key, agent }).then((answer) => ({ key, answer }))),
      ...keys.map(() => purchase(system, event.id, { agent }).then((answer) => ({ key: undefined, answer }))),
    ]);
    const inFlight = await eventually(async () => proxy.heldQueries() >= 3, 10_000);
    t.ok(inFlight, `purchases are waiting on their queries (${proxy.heldQueries()} held)`);
    const ended = await system.terminateBackends('ticket-service');
    t.ok(ended >= 3, `the service's backends are ended mid-query (${ended})`);
    proxy.pass();
    const answers = await burst;

    t.same(
      answers.filter(({ answer }) => answer.status !== 201 && !isUnavailable(answer)).map(({ answer }) => [answer.status, answer.json]),
      [],
      'every purchase answers 201 or 503 unavailable: never a 500',
    );
    const lost = answers.filter(({ answer }) => answer.status === 503);
    t.ok(lost.length >= 1, `the purchases whose queries were cut answer 503 (${lost.length} of ${answers.length})`);
    const reserved = answers.filter(({ answer }) => answer.status === 201).map(({ answer }) => asTicket(answer.json));

    t.ok(await eventually(async () => (await system.audit()).length === 0, 20_000), 'the invariant holds across both services once the reconciler has run');
    for (const ticket of reserved) {
      const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.equal(read.ok && read.body.status, 'RESERVED', `acknowledged ticket ${ticket.id} is still RESERVED`);
      t.equal((await getHold(system, ticket.reference))?.state, 'HELD', 'and its hold is HELD');
    }
    t.equal((await getEvent(system, event.id)).held_tickets, reserved.length, 'exactly the acknowledged reservations hold seats');

    const retries = await Promise.all(lost.filter(({ key }) => key !== undefined).map(({ key }) => purchase(system, event.id, { key })));
    t.same(retries.map((answer) => answer.status), retries.map(() => 201), 'purchases retried with their key reserve');
    t.equal((await purchase(system, event.id)).status, 201, 'a new purchase reserves');
    t.equal((await raw(`${system.ticket.url}/ready`)).status, 200, 'the service is ready');
    t.equal(system.ticket.process.pid, pid, 'without a restart');
    t.ok(await eventually(async () => (await system.audit()).length === 0, 20_000), 'and the invariant still holds');
  });
}
