import t from 'tap';
import { testStores } from './helpers/postgres.js';
import { eventually, startSystem, type TestSystem } from './helpers/system.js';
import { asProblem, asTicket, createEvent, getEvent, holdsOf, raw, reserve, sleep, ticketBody, ticketsOf, uuid, whileFrozen } from './helpers/system-api.js';

const purchase = (target: TestSystem, body: unknown, key: string) => raw(`${target.ticket.url}/tickets`, { method: 'POST', body, headers: { 'idempotency-key': key } });

for (const store of await testStores()) {
  t.test(`an Idempotency-Key on ${store}`, async (t) => {
    // A long event-service timeout keeps a failed attempt's PENDING ticket from being abandoned (after 2 × timeout + 1 s)
    // while event-service restarts, however slow the machine: the retry must complete that same attempt.
    const system = await startSystem(t, { store, env: { EVENT_SERVICE_TIMEOUT_SECONDS: '15' } });
    const buy = (body: unknown, key: string) => purchase(system, body, key);

    t.test('the same Idempotency-Key and body twice returns the same ticket, replayed, and holds the seats once', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const key = uuid();
      const first = await buy(ticketBody(event.id, 3), key);
      t.equal(first.status, 201, 'the first request reserves');
      t.equal(first.headers['idempotent-replayed'], undefined, 'the first answer is not a replay');
      const second = await buy(ticketBody(event.id, 3), key);
      t.equal(second.status, 201, 'the second answers 201 too');
      t.equal(second.headers['idempotent-replayed'], 'true', 'with Idempotent-Replayed: true');
      t.equal(asTicket(second.json).id, asTicket(first.json).id, 'the same ticket id');
      t.equal(asTicket(second.json).reference, asTicket(first.json).reference, 'the same reference');
      t.same(second.json, first.json, 'the stored answer verbatim');
      t.equal(second.headers.location, first.headers.location, 'the same Location');

      const reordered = await buy({ quantity: 3, customer_email: 'ada@example.com', customer_name: 'Ada Lovelace', event_id: event.id }, key);
      t.equal(reordered.status, 201, 'the same body with its fields in another order is the same body');
      t.equal(reordered.headers['idempotent-replayed'], 'true');
      t.equal(asTicket(reordered.json).id, asTicket(first.json).id);

      const current = await getEvent(system, event.id);
      t.equal(current.available_tickets, 7, 'available dropped by the quantity once');
      t.equal(current.held_tickets, 3, 'three seats are held');
      const listed = await ticketsOf(system, event.id);
      t.equal(listed.total, 1, 'one ticket is listed');
      t.equal((await holdsOf(system, event.id)).length, 1, 'one hold exists');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('the same Idempotency-Key with another body is 422 idempotency-key-reused and changes nothing', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const key = uuid();
      const first = await buy(ticketBody(event.id, 2), key);
      t.equal(first.status, 201);
      for (const body of [ticketBody(event.id, 3), ticketBody(event.id, 2, { customer_name: 'Grace Hopper' })]) {
        const reused = await buy(body, key);
        t.equal(reused.status, 422, 'another body with the same key is 422');
        t.match(reused.contentType, /^application\/problem\+json/);
        t.equal(asProblem(reused.json).type, 'urn:eventsync:problem:idempotency-key-reused');
      }
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets], [8, 2], 'only the first purchase holds seats');
      t.equal((await ticketsOf(system, event.id)).total, 1, 'one ticket exists');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('a 409 sold-out answer is replayed verbatim for the same key and body, even after seats became available', async (t) => {
      const event = await createEvent(system, { total_tickets: 1 });
      const key = uuid();
      const first = await buy(ticketBody(event.id, 2), key);
      t.equal(first.status, 409, 'two seats of one are sold out');
      t.equal(asProblem(first.json).type, 'urn:eventsync:problem:sold-out');

      const more = await system.events.call('updateEvent', { path: { id: event.id }, body: { total_tickets: 10 } });
      t.equal(more.ok && more.body.available_tickets, 10, 'the event now has ten seats');
      const replay = await buy(ticketBody(event.id, 2), key);
      t.equal(replay.status, 409, 'the retry with the same key gets the stored 409');
      t.equal(replay.headers['idempotent-replayed'], 'true', 'with Idempotent-Replayed: true');
      t.match(replay.contentType, /^application\/problem\+json/);
      t.same(replay.json, first.json, 'the stored problem verbatim');
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets], [10, 0], 'the replay held nothing');
      t.same(await holdsOf(system, event.id), [], 'no hold exists');

      const fresh = await buy(ticketBody(event.id, 2), uuid());
      t.equal(fresh.status, 201, 'a new key buys the seats');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('concurrent duplicates with one Idempotency-Key reserve once', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const key = uuid();
      const answers = await Promise.all(Array.from({ length: 10 }, () => buy(ticketBody(event.id, 2), key)));
      const created = answers.filter((a) => a.status === 201);
      t.ok(created.length >= 1, 'at least one answers 201');
      t.same(
        answers.filter((a) => a.status !== 201).map((a) => [a.status, asProblem(a.json).type]),
        answers.filter((a) => a.status !== 201).map(() => [409, 'urn:eventsync:problem:idempotency-in-flight']),
        'the others are 409 idempotency-in-flight',
      );
      t.equal(new Set(created.map((a) => asTicket(a.json).id)).size, 1, 'every 201 is the same ticket');
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets], [8, 2], 'the seats are held once');
      t.equal((await holdsOf(system, event.id)).length, 1, 'one hold exists');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('a retry with the same key after a 503 (event-service stopped, then restarted) completes the first attempt: one ticket, one hold', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const before = await reserve(system, event.id, 1);
      const key = uuid();
      await system.stop('event-service');
      const failed = await buy(ticketBody(event.id, 2), key);
      t.equal(failed.status, 503, 'the first attempt answers 503');
      t.equal(asProblem(failed.json).type, 'urn:eventsync:problem:unavailable');
      t.equal(failed.headers['idempotent-replayed'], undefined, 'a 503 is not a replay');
      const again = await buy(ticketBody(event.id, 2), key);
      t.equal(again.status, 503, 'a retry while event-service is still down answers 503 again, not a stored answer');
      t.equal(again.headers['idempotent-replayed'], undefined);
      await system.restart('event-service');

      const retried = await buy(ticketBody(event.id, 2), key);
      t.equal(retried.status, 201, 'the retry after the restart reserves');
      const ticket = asTicket(retried.json);
      t.equal(ticket.id, before.id + 1, 'it completes the ticket the first attempt wrote (no second ticket was written)');
      const holds = await holdsOf(system, event.id);
      t.equal(holds.filter((h) => h.hold_id !== before.reference).length, 1, 'exactly one hold exists for the key');
      t.equal(holds.find((h) => h.hold_id !== before.reference)?.hold_id, ticket.reference, 'and it is the ticket\'s reference');
      const replay = await buy(ticketBody(event.id, 2), key);
      t.equal(replay.headers['idempotent-replayed'], 'true', 'from now on the 201 is replayed');
      t.equal(asTicket(replay.json).reference, ticket.reference);
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets], [7, 3], 'the seats are held once');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });
  });
}

// Freezing event-service is about the process, not the store: SQLite only.
t.test('a retry with the same key after a timed-out attempt whose hold arrived late re-drives the same reference: only one hold ever exists', async (t) => {
  // A short timeout so that the first attempt gives up quickly; the retry follows well before abandonment.
  const TIMEOUT_SECONDS = 2;
  const system = await startSystem(t, { env: { EVENT_SERVICE_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS) } });
  const buy = (body: unknown, key: string) => purchase(system, body, key);
  const event = await createEvent(system, { total_tickets: 10 });
  const key = uuid();
  const [first, duplicate] = await whileFrozen(system, 'event-service', async () => {
    const pending = buy(ticketBody(event.id, 4), key);
    await sleep(300);
    // While the first request waits for event-service, a duplicate must not start a second purchase.
    const during = await buy(ticketBody(event.id, 4), key);
    return [await pending, during] as const;
  });
  t.equal(duplicate.status, 409, 'a duplicate while the first is in flight is 409');
  t.equal(asProblem(duplicate.json).type, 'urn:eventsync:problem:idempotency-in-flight');
  t.equal(first.status, 503, 'the first attempt times out with 503');

  const retried = await buy(ticketBody(event.id, 4), key);
  t.equal(retried.status, 201, 'the retry reserves');
  const ticket = asTicket(retried.json);
  const holds = await holdsOf(system, event.id);
  t.equal(holds.length, 1, 'exactly one hold ever existed for the event');
  t.equal(holds[0]?.hold_id, ticket.reference, 'the first attempt\'s hold, now the ticket\'s');
  t.equal(holds[0]?.state, 'HELD');
  t.equal((await ticketsOf(system, event.id)).total, 1, 'one ticket is listed');
  const current = await getEvent(system, event.id);
  t.same([current.available_tickets, current.held_tickets], [6, 4], 'four seats are held, once');
  // Instead of waiting out the abandonment window (2 × timeout + 1 s): the ticket is made older than it,
  // and a hold with no ticket, taken after the ticket's, shows when the reconciler has had a round since.
  const pastAbandonment = new Date(Date.now() - (2 * TIMEOUT_SECONDS + 1) * 1000 - 500).toISOString();
  t.equal(await system.sql('ticket-service', 'UPDATE tickets SET created_at = ? WHERE id = ?', pastAbandonment, ticket.id), 1, 'the ticket is made older than the abandonment window');
  const control = uuid();
  const orphan = await system.events.call('createHold', { body: { hold_id: control, event_id: event.id, quantity: 1, expires_at: new Date(Date.now() + 900_000).toISOString() } });
  t.equal(orphan.status, 201, 'a hold with no ticket behind it is taken after the ticket\'s');
  t.ok(await eventually(async () => (await holdsOf(system, event.id, 'RELEASED')).some((hold) => hold.hold_id === control), 15_000), 'the reconciler has released it: a round ran since');
  t.same((await holdsOf(system, event.id, 'HELD')).map((hold) => hold.hold_id), [ticket.reference], 'the reconciler leaves the completed reservation alone');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});
