/**
 * Replicas on PostgreSQL (DESIGN.md, Store and scale-out): several processes of each service over one
 * database stay exact, because nothing that correctness needs lives in one process.
 */
import t from 'tap';
import { Agent } from 'undici';
import { eventually, startSystem, type TestSystem } from './helpers/system.js';
import { randomUUID } from 'node:crypto';
import { asProblem, asTicket, createEvent, getEvent, holdsOf, logsOf, raw, ticketBody, ticketsOf } from './helpers/system-api.js';
import { testStores } from './helpers/postgres.js';

/** The process ids of the workers that took requests for `method` and a path `path` accepts (their 'incoming request' log lines). */
function servingPids(system: TestSystem, name: 'event-service' | 'ticket-service', method: string, path: (url: string) => boolean): Set<number> {
  const pids = new Set<number>();
  for (const line of logsOf(system, name).split('\n')) {
    if (!line.includes('"incoming request"')) continue;
    const entry = JSON.parse(line) as { pid: number; req?: { method?: string; url?: string } };
    if (entry.req?.method === method && path(entry.req.url ?? '')) pids.add(entry.pid);
  }
  return pids;
}

const isPurchase = (url: string): boolean => url === '/tickets';
/** A hold request, alone or in a batch (openapi/hold-batcher.ts). */
const isHoldCreation = (url: string): boolean => url === '/holds' || url === '/holds/batch';

if (!(await testStores()).includes('postgres')) {
  t.pass('PostgreSQL is not reachable here: the replica tests are skipped (see the line above)');
} else {
  t.test('2,000 concurrent purchases for 500 seats over 2 ticket-service and 2 event-service workers on PostgreSQL: 500 sold, none oversold or leaked, the audit exact', async (t) => {
    const system = await startSystem(t, {
      store: 'postgres',
      env: {
        WORKERS: '2',
        // A busy 2-core machine answers slowly; this test is about exact counts, not 503s.
        EVENT_SERVICE_TIMEOUT_SECONDS: '30',
        // Keyless purchases rely on the settle window across replicas (it must exceed the call budget).
        RECONCILE_SETTLE_SECONDS: '60',
      },
    });
    const event = await createEvent(system, { total_tickets: 500 });
    const agent = new Agent({ connections: 64 });
    t.teardown(() => agent.close());

    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1, { customer_email: `buyer${i}@example.com` }), dispatcher: agent, timeoutMs: 120_000 }),
      ),
    );
    const elapsedMs = performance.now() - started;
    t.comment(`2,000 purchases over 2 + 2 workers took ${elapsedMs.toFixed(0)} ms: ${(2000 / (elapsedMs / 1000)).toFixed(0)} purchases/s`);
    // Counted before any read (the reads and the audit below reach both services too); a log line may trail its answer.
    t.ok(await eventually(async () => servingPids(system, 'ticket-service', 'POST', isPurchase).size === 2, 5000), 'both ticket-service workers took purchases');
    t.ok(await eventually(async () => servingPids(system, 'event-service', 'POST', isHoldCreation).size === 2, 5000), 'both event-service workers took hold requests');

    const statuses = new Map<number, number>();
    for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    t.same(Object.fromEntries(statuses), { 201: 500, 409: 1500 }, '500 purchases answer 201 and 1,500 are sold out, nothing else');
    const current = await getEvent(system, event.id);
    t.same([current.available_tickets, current.held_tickets, current.sold_tickets], [0, 500, 0], 'no seat is oversold or leaked');
    const { tickets } = await ticketsOf(system, event.id);
    t.equal(tickets.filter((ticket) => ticket.status === 'RESERVED').length, 500, '500 tickets are reserved');
    const held = await holdsOf(system, event.id, 'HELD');
    t.same(new Set(held.map((hold) => hold.hold_id)), new Set(tickets.map((ticket) => ticket.reference)), 'each reserved ticket has its own live hold, and no hold is without one');
    t.same(await system.audit(), [], 'the audit is exact');
  });

  t.test('one Idempotency-Key sent to both ticket-service workers at once makes one ticket and one hold', async (t) => {
    const system = await startSystem(t, { store: 'postgres', env: { WORKERS: '2', EVENT_SERVICE_TIMEOUT_SECONDS: '30', RECONCILE_SETTLE_SECONDS: '60' } });
    const event = await createEvent(system, { total_tickets: 10 });
    // One connection per request, so the primary hands them to both workers.
    const agent = new Agent({ connections: 40, pipelining: 0 });
    t.teardown(() => agent.close());
    const key = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 40 }, () =>
        raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 2), headers: { 'idempotency-key': key, connection: 'close' }, dispatcher: agent, timeoutMs: 60_000 }),
      ),
    );
    // Counted before any read (the reads and the audit below reach ticket-service too); a log line may trail its answer.
    t.ok(await eventually(async () => servingPids(system, 'ticket-service', 'POST', isPurchase).size === 2, 5000), 'both ticket-service workers took the purchases');
    const created = answers.filter((answer) => answer.status === 201);
    t.ok(created.length >= 1, `at least one answers 201 (${created.length})`);
    t.same(
      answers.filter((answer) => answer.status !== 201).map((answer) => [answer.status, asProblem(answer.json).type]),
      answers.filter((answer) => answer.status !== 201).map(() => [409, 'urn:eventsync:problem:idempotency-in-flight']),
      'the others are 409 idempotency-in-flight',
    );
    t.equal(new Set(created.map((answer) => asTicket(answer.json).id)).size, 1, 'every 201 is the same ticket');
    t.equal((await ticketsOf(system, event.id)).total, 1, 'one ticket exists');
    t.equal((await holdsOf(system, event.id)).length, 1, 'one hold exists');
    t.same([(await getEvent(system, event.id)).available_tickets], [8], 'its seats are held once');
    t.same(await system.audit(), [], 'the audit is exact');
  });

  t.test("both workers' sweepers and outboxes expire the same reservations together: every release is applied once and the counters are exact", async (t) => {
    const system = await startSystem(t, {
      store: 'postgres',
      env: { WORKERS: '2', RESERVATION_TTL_SECONDS: '2', SWEEP_INTERVAL_SECONDS: '0.1', EVENT_SERVICE_TIMEOUT_SECONDS: '30', RECONCILE_SETTLE_SECONDS: '60' },
    });
    const event = await createEvent(system, { total_tickets: 60 });
    const agent = new Agent({ connections: 16 });
    t.teardown(() => agent.close());
    const bought = await Promise.all(
      Array.from({ length: 60 }, (_, i) => raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1, { customer_email: `late${i}@example.com` }), dispatcher: agent })),
    );
    t.same(new Set(bought.map((answer) => answer.status)), new Set([201]), 'all 60 seats are reserved');
    const settled = await eventually(async () => {
      const current = await getEvent(system, event.id);
      return current.available_tickets === 60 && current.held_tickets === 0;
    }, 30_000);
    t.ok(settled, 'once the reservations expire every seat is back');
    const current = await getEvent(system, event.id);
    t.same([current.available_tickets, current.held_tickets, current.sold_tickets], [60, 0, 0], 'each release counted once: no seat returned twice');
    const { tickets } = await ticketsOf(system, event.id);
    t.same(new Set(tickets.map((ticket) => `${ticket.status}/${ticket.cancellation_reason}`)), new Set(['CANCELLED/expired']), 'every ticket is cancelled as expired');
    t.equal((await holdsOf(system, event.id, 'HELD')).length, 0, 'no hold is left held');
    t.same(await system.audit(), [], 'the audit is exact');
  });
}

