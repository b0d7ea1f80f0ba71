/**
 * The waiting list with two ticket-service workers (and two event-service workers) over PostgreSQL
 * (DESIGN.md "Waiting list", issue #15 "exact under crashes and replicas"): both processes run the
 * processor over the same line at once, kept apart only by the conditional updates, so an entry is
 * offered at most once and every freed seat becomes exactly one offer. SQLite runs one process per
 * file, so this runs on PostgreSQL only.
 */
import t from 'tap';
import { Agent } from 'undici';
import type { components } from '../openapi/generated/ticket-service.js';
import { testStores } from './helpers/postgres.js';
import { eventually, startSystem } from './helpers/system.js';
import { createEvent, getEvent, holdsOf, logsOf, raw, reserve, sleep, ticketBody, ticketsOf } from './helpers/system-api.js';
import { startReceiver } from './helpers/webhook-receiver.js';

type Entry = components['schemas']['WaitlistEntry'];

if (!(await testStores()).includes('postgres')) {
  t.pass('PostgreSQL is not reachable here: the waiting-list replica test is skipped (see the line above)');
} else {
  t.test('30 cancellations spread over 2 ticket-service workers racing 90 public purchases, 30 waiting: each freed seat is one offer, each entry offered once, none to the public, the audit exact', async (t) => {
    const system = await startSystem(t, {
      store: 'postgres',
      // Settle 60: keyless purchases in flight in one worker are not another worker's orphans.
      env: { EVENT_SERVICE_TIMEOUT_SECONDS: '30', RECONCILE_SETTLE_SECONDS: '60', SWEEP_INTERVAL_SECONDS: '0.1' },
      // The processor's replicas are ticket-service's; one event-service process (a pool of connections) is enough and starts sooner.
      ticketEnv: { WORKERS: '2' },
    });
    const receiver = await startReceiver(t);
    const hook = await system.tickets.call('createWebhook', { body: { url: receiver.url, events: ['waitlist.offered'] } });
    if (!hook.ok) throw new Error('could not subscribe');
    const seats = 30;
    const event = await createEvent(system, { total_tickets: seats });
    const sold = await Promise.all(Array.from({ length: seats }, () => reserve(system, event.id)));
    const waiting: Entry[] = [];
    for (let i = 0; i < seats; i += 1) {
      const joined = await system.tickets.call('joinWaitlist', { body: { event_id: event.id, customer_name: `Waiting ${i}`, customer_email: `waiting${i}@example.com`, quantity: 1 } });
      if (!joined.ok) throw new Error(`joining answered ${joined.status}`);
      waiting.push(joined.body);
    }
    t.equal((await getEvent(system, event.id)).waitlist_reserved_tickets, seats, 'the gate is the demand');

    // One connection per request, so the primary hands cancellations (and the offers they start) to both workers.
    const agent = new Agent({ connections: 60, pipelining: 0 });
    t.teardown(() => agent.close());
    const call = (path: string, method: 'PUT' | 'POST', body: unknown) => raw(`${system.ticket.url}${path}`, { method, body, headers: { connection: 'close' }, dispatcher: agent, timeoutMs: 60_000 });
    const started = Date.now();
    const [cancels, purchases] = await Promise.all([
      Promise.all(sold.map((ticket) => call(`/tickets/${ticket.id}/status`, 'PUT', { status: 'CANCELLED' }))),
      Promise.all(Array.from({ length: seats * 3 }, () => call('/tickets', 'POST', ticketBody(event.id, 1, { customer_email: 'public@example.com' })))),
    ]);
    t.same(cancels.filter((answer) => answer.status !== 200).map((answer) => answer.status), [], 'every cancellation answers 200');
    t.same(purchases.filter((answer) => answer.status !== 409).map((answer) => answer.status), [], 'every public purchase gets 409');

    const offeredToAll = async () => {
      const list = await system.tickets.call('listWaitlist', { query: { event_id: event.id, status: 'OFFERED', limit: 100 } });
      return list.ok && list.body.length === seats;
    };
    t.ok(await eventually(offeredToAll, 20_000), `all ${seats} entries are OFFERED`);
    t.comment(`${seats} cancellations racing ${seats * 3} public purchases, then ${seats} offers over 2 workers: ${Date.now() - started} ms`);

    const { tickets } = await ticketsOf(system, event.id);
    const offers = tickets.filter((ticket) => ticket.status === 'RESERVED');
    t.equal(offers.length, seats, 'every freed seat became one offer ticket');
    t.same(offers.map((ticket) => ticket.customer_email).sort(), waiting.map((entry) => entry.customer_email).sort(), 'one for each entry');
    t.equal(tickets.filter((ticket) => ticket.customer_email === 'public@example.com').length, 0, 'the public got no seat');
    const held = await holdsOf(system, event.id, 'HELD');
    t.same(new Set(held.map((hold) => hold.hold_id)), new Set(offers.map((ticket) => ticket.reference)), 'each offer has its hold, and no other hold is HELD');
    const current = await getEvent(system, event.id);
    t.same([current.available_tickets, current.waitlist_reserved_tickets], [0, 0], 'no seat is free and none is waited for');

    t.ok(await eventually(async () => receiver.deliveries.length >= seats, 10_000), `${seats} waitlist.offered deliveries arrive`);
    // Both dispatchers poll every 0.1 s: a second offer of any entry would have been delivered by now.
    await sleep(500);
    const perEntry = new Map<unknown, number>();
    for (const delivery of receiver.deliveries) perEntry.set(delivery.message.data.id, (perEntry.get(delivery.message.data.id) ?? 0) + 1);
    t.same(
      waiting.map((entry) => perEntry.get(entry.id) ?? 0),
      waiting.map(() => 1),
      'each entry got exactly one waitlist.offered',
    );
    t.equal(receiver.deliveries.length, seats, 'and there were no others');

    const offeringPids = new Set([...logsOf(system, 'ticket-service').matchAll(/"pid":(\d+)[^\n]*"msg":"offered seats to the waiting list"/g)].map((match) => match[1]));
    t.comment(`offers were made by ${offeringPids.size} ticket-service worker(s)`);
    t.same(await system.audit(), [], 'the audit is exact');
  });
}
