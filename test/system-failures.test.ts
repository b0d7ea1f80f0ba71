import t from 'tap';
import { Agent } from 'undici';
import { eventually, startSystem } from './helpers/system.js';
import { asProblem, asTicket, createEvent, getEvent, holdsOf, raw, reserve, sleep, ticketBody, ticketsOf, whileFrozen } from './helpers/system-api.js';

const TIMEOUT_SECONDS = 1;

// One system with a short event-service timeout for everything but the crash test; tests use their own events.
const system = await startSystem(t, { env: { EVENT_SERVICE_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS) } });

t.test('with event-service stopped a purchase answers 503 problem+json within the timeout, and once it is back and the reconciler ran nothing is left held', async (t) => {
  const event = await createEvent(system, { total_tickets: 20 });
  const other = await createEvent(system, { total_tickets: 20 });
  const kept = await reserve(system, other.id, 2);

  await system.stop('event-service');
  const started = performance.now();
  const answer = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 3) });
  const elapsedMs = performance.now() - started;
  t.equal(answer.status, 503, 'the purchase answers 503');
  t.match(answer.contentType, /^application\/problem\+json/, 'as problem+json');
  t.equal(asProblem(answer.json).type, 'urn:eventsync:problem:unavailable');
  t.match(asProblem(answer.json).detail, /^event-service is unreachable;/, 'the detail says event-service is unreachable (refused), not slow');
  t.ok(elapsedMs < (TIMEOUT_SECONDS + 2) * 1000, `within the client timeout plus 2 s (took ${elapsedMs.toFixed(0)} ms)`);

  const read = await system.tickets.call('getTicket', { path: { id: kept.id } });
  t.equal(read.status, 200, 'an existing ticket can still be read while event-service is down, never a 5xx');
  t.equal(read.ok && read.body.status, 'RESERVED');

  await system.restart('event-service');
  const settled = await eventually(async () => {
    const current = await getEvent(system, event.id);
    return current.held_tickets === 0 && current.available_tickets === 20 && (await system.audit()).length === 0;
  }, 15_000);
  t.ok(settled, 'after the restart the event has nothing held and all seats available');
  const current = await getEvent(system, event.id);
  t.equal(current.held_tickets, 0, 'held_tickets is 0');
  t.same(await holdsOf(system, event.id, 'HELD'), [], 'no HELD hold exists for the event');
  t.equal((await ticketsOf(system, event.id)).total, 0, 'no ticket is visible for the failed purchase');
  t.equal((await getEvent(system, other.id)).held_tickets, 2, 'the reservation made before the outage is still held');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});

t.test('with event-service hung a purchase answers 503 within the timeout, and the hold that arrives late is released or refused', async (t) => {
  const event = await createEvent(system, { total_tickets: 20 });
  const started = performance.now();
  const answer = await whileFrozen(system, 'event-service', () => raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 4) }));
  const elapsedMs = performance.now() - started;
  t.equal(answer.status, 503, 'the purchase answers 503');
  t.match(answer.contentType, /^application\/problem\+json/, 'as problem+json');
  t.match(asProblem(answer.json).detail, /^event-service did not answer in time;/, 'the detail says event-service was too slow');
  t.ok(elapsedMs < (TIMEOUT_SECONDS + 2) * 1000, `within the client timeout plus 2 s (took ${elapsedMs.toFixed(0)} ms)`);

  // The create event-service had queued while hung runs once it is back. ticket-service sent a release
  // for the hold at once (through its outbox): if that comes first it leaves a tombstone that refuses
  // the late create, otherwise it (or the reconciler) releases the late hold. Nothing stays held.
  // (Half a second lets event-service work through what queued up while it was stopped.)
  await sleep(500);
  const settled = await eventually(async () => {
    const holds = await holdsOf(system, event.id);
    return holds.every((hold) => hold.state === 'RELEASED') && (await getEvent(system, event.id)).held_tickets === 0;
  }, 15_000);
  t.ok(settled, 'no hold of the abandoned purchase stays HELD');
  const current = await getEvent(system, event.id);
  t.equal(current.available_tickets, 20, 'its seats came back');
  t.equal(current.held_tickets, 0, 'nothing is held');
  t.equal((await ticketsOf(system, event.id)).total, 0, 'no ticket is visible for the abandoned purchase');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});

t.test('ticket-service killed with SIGKILL during ~100 purchases: after restart and reconciliation no seat is oversold or leaked', async (t) => {
  const crashing = await startSystem(t);
  const event = await createEvent(crashing, { total_tickets: 60 });
  const agent = new Agent({ connections: 150 });
  t.teardown(() => agent.close());

  const answered: number[] = [];
  const inFlight = Promise.allSettled(
    Array.from({ length: 100 }, (_, i) =>
      raw(`${crashing.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1, { customer_email: `crash${i}@example.com` }), dispatcher: agent, timeoutMs: 20_000 }).then((answer) => {
        if (answer.status === 201) answered.push(asTicket(answer.json).id);
        return answer;
      }),
    ),
  );
  // Kill once the service is visibly mid-way (the first answers are out), ~50 ms at the earliest.
  await sleep(50);
  for (let waited = 0; answered.length < 3 && waited < 5_000; waited += 10) await sleep(10);
  await crashing.stop('ticket-service', 'SIGKILL');
  const outcomes = await inFlight;
  t.comment(`${answered.length} purchases were answered 201 before the kill, ${outcomes.filter((o) => o.status === 'rejected').length} failed`);

  await crashing.restart('ticket-service');
  const clean = await eventually(async () => (await crashing.audit()).length === 0 && (await holdsOf(crashing, event.id, 'HELD')).length === (await ticketsOf(crashing, event.id)).tickets.filter((x) => x.status === 'RESERVED').length, 15_000);
  t.ok(clean, 'the reconciler settles the system within 15 s');
  t.same(await crashing.audit(), [], 'the invariant holds across both services');

  const current = await getEvent(crashing, event.id);
  t.equal(current.available_tickets + current.held_tickets + current.sold_tickets, current.total_tickets, 'available + held + sold = total');
  const { tickets } = await ticketsOf(crashing, event.id);
  const live = tickets.filter((x) => x.status === 'RESERVED' || x.status === 'CONFIRMED');
  const seats = live.reduce((sum, x) => sum + x.quantity, 0);
  t.ok(seats <= current.total_tickets, `no seat is oversold (${seats} of ${current.total_tickets} taken by tickets)`);
  t.equal(seats, current.held_tickets + current.sold_tickets, 'the live tickets account for every held or sold seat');
  const listedIds = new Set(tickets.map((x) => x.id));
  t.ok(
    answered.every((id) => listedIds.has(id)),
    'every reservation answered 201 before the crash survived it',
  );
  t.comment(`${(await holdsOf(crashing, event.id, 'RELEASED,EXPIRED')).length} holds of interrupted purchases were released by the reconciler`);
  const holds = await holdsOf(crashing, event.id, 'HELD,COMMITTED');
  t.same(holds.map((h) => h.hold_id).sort(), live.map((x) => x.reference).sort(), 'the live holds are exactly those of the live tickets');
});
