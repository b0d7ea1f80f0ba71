import t from 'tap';
import { Agent } from 'undici';
import { testStores } from './helpers/postgres.js';
import { startSystem } from './helpers/system.js';
import { asProblem, asTicket, createEvent, getEvent, holdsOf, raw, ticketBody, ticketsOf } from './helpers/system-api.js';

for (const store of await testStores()) {
  t.test(`200 concurrent purchases of one seat for an event with 50 seats: exactly 50 are reserved, 150 are sold out, nothing is oversold (${store})`, async (t) => {
    // A generous event-service timeout: this test is about exact seat counts, not about a busy machine's 503s.
    const system = await startSystem(t, { store, env: { EVENT_SERVICE_TIMEOUT_SECONDS: '15' } });
    const event = await createEvent(system, { total_tickets: 50 });
    const agent = new Agent({ connections: 250, pipelining: 0 });
    t.teardown(() => agent.close());

    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1, { customer_email: `buyer${i}@example.com` }), dispatcher: agent, timeoutMs: 60_000 }),
      ),
    );
    const elapsedMs = performance.now() - started;
    t.comment(`200 concurrent purchases took ${elapsedMs.toFixed(0)} ms: ${(200 / (elapsedMs / 1000)).toFixed(0)} purchases/s`);

    const created = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status === 409);
    t.equal(created.length, 50, 'exactly 50 purchases answer 201');
    t.equal(refused.length, 150, 'the other 150 answer 409');
    t.same(
      answers.filter((a) => a.status !== 201 && a.status !== 409).map((a) => ({ status: a.status, body: a.json })),
      [],
      'no other answer',
    );
    t.ok(
      created.every((a) => asTicket(a.json).status === 'RESERVED' && asTicket(a.json).quantity === 1),
      'every 201 is a RESERVED ticket for one seat',
    );
    t.equal(new Set(created.map((a) => asTicket(a.json).reference)).size, 50, 'the 50 tickets have distinct references');
    t.equal(new Set(created.map((a) => asTicket(a.json).id)).size, 50, 'and distinct ids');
    t.ok(
      refused.every((a) => a.contentType.startsWith('application/problem+json') && asProblem(a.json).type === 'urn:eventsync:problem:sold-out'),
      'every 409 is a sold-out problem+json',
    );

    const after = await getEvent(system, event.id);
    t.equal(after.available_tickets, 0, 'the event has no seats left');
    t.equal(after.held_tickets, 50, 'all 50 seats are held');
    const listed = await ticketsOf(system, event.id);
    t.equal(listed.total, 50, 'X-Total-Count is 50');
    t.equal(listed.tickets.length, 50, 'the list has 50 tickets');
    t.ok(
      listed.tickets.every((ticket) => ticket.status === 'RESERVED'),
      'all listed tickets are RESERVED',
    );
    t.same(
      listed.tickets.map((ticket) => ticket.reference).sort(),
      created.map((a) => asTicket(a.json).reference).sort(),
      'the listed tickets are the 50 that were answered 201',
    );
    const held = await holdsOf(system, event.id, 'HELD,COMMITTED');
    t.equal(held.length, 50, 'event-service has exactly 50 live holds');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });
}
