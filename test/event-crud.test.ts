import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ADMIN_TOKEN, adminAuth, assertSeatInvariant, originalEvent, serviceAuth, startEventApp } from './helpers/event-app.js';
import { assertProblem, createHold, getEvent, holdAction, pointers, postEvent, type ApiEvent } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

t.test('price_per_ticket 1.234 in USD is 400: more decimals than the currency has', async (t) => {
  const app = await startEventApp(t);
  const problem = assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, price_per_ticket: 1.234 } }), 400, 'validation');
  t.same(pointers(problem), ['#/price_per_ticket']);
  t.equal((await app.inject({ method: 'GET', url: '/events' })).headers['x-total-count'], '0', 'nothing was written');
});

t.test('a price_per_ticket that converts above the largest ticket_price is 400, never stored', async (t) => {
  const app = await startEventApp(t);
  const response = await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, price_per_ticket: 1_000_000_000, currency: 'BHD' } });
  const problem = assertProblem(t, response, 400, 'validation');
  t.same(pointers(problem), ['#/price_per_ticket']);
});

t.test("an unknown currency 'ABC' is 400 naming #/currency", async (t) => {
  const app = await startEventApp(t);
  const problem = assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, currency: 'ABC' } }), 400, 'validation');
  t.same(pointers(problem), ['#/currency']);
  const event = await postEvent(app);
  const update = assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { currency: 'ABC' } }), 400, 'validation');
  t.same(pointers(update), ['#/currency']);
  t.equal((await getEvent(app, event.id)).currency, 'USD');
});

t.test('an unknown time zone is 400 naming #/timezone, a known one is kept', async (t) => {
  const app = await startEventApp(t);
  const problem = assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, timezone: 'Mars/Olympus_Mons' } }), 400, 'validation');
  t.same(pointers(problem), ['#/timezone']);
  const event = await postEvent(app, { timezone: 'Europe/Paris' });
  t.equal(event.timezone, 'Europe/Paris');
  t.equal((await postEvent(app)).timezone, 'UTC', 'the default time zone is UTC');
});

t.test("an event_date with offset '+02:00' is returned in UTC with Z", async (t) => {
  const app = await startEventApp(t);
  const event = await postEvent(app, { event_date: '2027-03-20T19:30:00+02:00' });
  t.equal(event.event_date, '2027-03-20T17:30:00Z');
  t.equal((await getEvent(app, event.id)).event_date, '2027-03-20T17:30:00Z');
  const updated = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { event_date: '2027-03-21T01:00:00-05:00' } });
  t.equal(updated.json<ApiEvent>().event_date, '2027-03-21T06:00:00Z', 'and on update');
});

t.test('with ADMIN_TOKEN set, event writes need the admin token (401 without it) and reads stay open', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: originalEvent }), 401, 'unauthorized');
  assertProblem(t, await app.inject({ method: 'POST', url: '/events', headers: { authorization: 'Bearer not-the-admin-token-123' }, payload: originalEvent }), 401, 'unauthorized');
  t.same((await app.inject({ method: 'GET', url: '/events' })).json<ApiEvent[]>(), [], 'the refused creates wrote nothing');
  const created = await app.inject({ method: 'POST', url: '/events', headers: adminAuth, payload: originalEvent });
  t.equal(created.statusCode, 201);
  const id = created.json<ApiEvent>().id;
  assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${id}`, payload: { name: 'Hijacked' } }), 401, 'unauthorized');
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/events/${id}` }), 401, 'unauthorized');
  t.equal((await getEvent(app, id)).name, originalEvent.name, 'reads are open and nothing changed');
  t.equal((await app.inject({ method: 'PUT', url: `/events/${id}`, headers: adminAuth, payload: { name: 'Renamed' } })).statusCode, 200);
  t.equal((await app.inject({ method: 'DELETE', url: `/events/${id}`, headers: adminAuth })).statusCode, 204);
});

t.test('the service token on an event write is a 403 that the spec declares', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  assertProblem(t, await app.inject({ method: 'POST', url: '/events', headers: serviceAuth, payload: originalEvent }), 403, 'forbidden');
  const id = (await app.inject({ method: 'POST', url: '/events', headers: adminAuth, payload: originalEvent })).json<ApiEvent>().id;
  assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${id}`, headers: serviceAuth, payload: { name: 'x' } }), 403, 'forbidden');
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/events/${id}`, headers: serviceAuth }), 403, 'forbidden');
});

t.test('with RATE_LIMIT_WRITES_PER_MINUTE=2, the third public write within a minute is 429 rate-limited with Retry-After', async (t) => {
  const app = await startEventApp(t, { RATE_LIMIT_WRITES_PER_MINUTE: '2' });
  t.equal((await app.inject({ method: 'POST', url: '/events', payload: originalEvent })).statusCode, 201);
  t.equal((await app.inject({ method: 'POST', url: '/events', payload: originalEvent })).statusCode, 201);
  const third = await app.inject({ method: 'POST', url: '/events', payload: originalEvent });
  assertProblem(t, third, 429, 'rate-limited');
  t.ok(Number(third.headers['retry-after']) > 0, 'Retry-After says when to retry');
  t.equal((await app.inject({ method: 'GET', url: '/events' })).headers['x-total-count'], '2', 'the limited write was not applied');
  t.equal((await app.inject({ method: 'GET', url: '/events/1' })).statusCode, 200, 'reads are not limited');
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('an event is created, read, listed, updated and deleted', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const created = await app.inject({ method: 'POST', url: '/events', payload: originalEvent });
      t.equal(created.statusCode, 201);
      const event = created.json<ApiEvent>();
      t.equal(created.headers.location, `/events/${event.id}`);
      t.match(event, { name: originalEvent.name, description: originalEvent.description, venue: originalEvent.venue, total_tickets: 200, available_tickets: 200, held_tickets: 0, sold_tickets: 0, manual_reserved_tickets: 0, sold_ratio: 0 });

      const read = await app.inject({ method: 'GET', url: `/events/${event.id}` });
      t.equal(read.statusCode, 200);
      t.same(read.json<ApiEvent>(), event, 'GET answers what POST answered');

      const list = await app.inject({ method: 'GET', url: '/events' });
      t.same(list.json<ApiEvent[]>(), [event], 'the list holds the event');
      t.equal(list.headers['x-total-count'], '1');

      const updated = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { description: 'Bigger this year' } });
      t.equal(updated.statusCode, 200);
      t.match(updated.json<ApiEvent>(), { name: originalEvent.name, description: 'Bigger this year', total_tickets: 200, event_date: '2025-06-15T09:00:00Z' }, 'a partial update keeps the fields not sent');
      t.equal((await getEvent(app, event.id)).description, 'Bigger this year', 'the update is stored');

      const deleted = await app.inject({ method: 'DELETE', url: `/events/${event.id}` });
      t.equal(deleted.statusCode, 204);
      assertProblem(t, await app.inject({ method: 'GET', url: `/events/${event.id}` }), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { name: 'x' } }), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/events/${event.id}` }), 404, 'not-found');
      t.same((await app.inject({ method: 'GET', url: '/events' })).json<ApiEvent[]>(), [], 'the list is empty again');
    });

    t.test('GET-modify-PUT of the whole event changes name and total_tickets and ignores the read-only fields', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const original = await postEvent(app);
      await createHold(app, original.id, 4);
      const fetched = await getEvent(app, original.id);
      const edited: ApiEvent = {
        ...fetched,
        name: 'Tech Conference 2025 (extended)',
        total_tickets: fetched.total_tickets + 50,
        // Read-only fields sent back with other values must be ignored, not applied.
        id: 999,
        available_tickets: 1,
        held_tickets: 77,
        sold_tickets: 55,
        manual_reserved_tickets: 33,
        sold_ratio: 0.99,
        created_at: '2000-01-01T00:00:00Z',
        updated_at: '2000-01-01T00:00:00Z',
      };
      const response = await app.inject({ method: 'PUT', url: `/events/${original.id}`, payload: edited });
      t.equal(response.statusCode, 200, 'the whole object is accepted back');
      const after = response.json<ApiEvent>();
      t.equal(after.id, original.id, 'id is ignored');
      t.equal(after.name, 'Tech Conference 2025 (extended)');
      t.equal(after.total_tickets, 250);
      t.equal(after.available_tickets, 246, 'available moved by +50 from 196, not taken from the body');
      t.equal(after.held_tickets, 4, 'held_tickets is derived, not taken from the body');
      t.equal(after.sold_tickets, 0);
      t.equal(after.manual_reserved_tickets, 0);
      t.equal(after.sold_ratio, 0.016);
      t.equal(after.created_at, original.created_at, 'created_at is not taken from the body');
      t.not(after.updated_at, '2000-01-01T00:00:00Z', 'updated_at is not taken from the body');
      t.same(await getEvent(app, original.id), after, 'GET shows the stored update');
      assertProblem(t, await app.inject({ method: 'GET', url: '/events/999' }), 404, 'not-found');
      await assertSeatInvariant(t, app, original.id);
    });

    t.test('raising total_tickets by 50 raises available_tickets by 50 and lowering it by 30 lowers it by 30', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 200 });
      await createHold(app, event.id, 10);
      const raised = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { total_tickets: 250 } });
      t.equal(raised.statusCode, 200);
      t.match(raised.json<ApiEvent>(), { total_tickets: 250, available_tickets: 240, held_tickets: 10 });
      const lowered = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { total_tickets: 220 } });
      t.equal(lowered.statusCode, 200);
      t.match(lowered.json<ApiEvent>(), { total_tickets: 220, available_tickets: 210, held_tickets: 10 });
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('lowering total_tickets below the seats already held is 409 and changes nothing', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 200 });
      await createHold(app, event.id, 100);
      await createHold(app, event.id, 50);
      const before = await app.inject({ method: 'GET', url: `/events/${event.id}` });
      assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { total_tickets: 149, name: 'Renamed' } }), 409, 'conflict');
      const after = await app.inject({ method: 'GET', url: `/events/${event.id}` });
      t.same(after.json<ApiEvent>(), before.json<ApiEvent>(), 'the event is unchanged, name included');
      t.equal(after.headers.etag, before.headers.etag, 'the version is unchanged');
      await assertSeatInvariant(t, app, event.id);

      const exact = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { total_tickets: 150 } });
      t.equal(exact.statusCode, 200, 'lowering to exactly the held seats is allowed');
      t.match(exact.json<ApiEvent>(), { total_tickets: 150, available_tickets: 0, held_tickets: 150, sold_ratio: 1 });
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a PUT with a stale If-Match is 412 and changes nothing; with the current ETag it succeeds', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const created = await app.inject({ method: 'POST', url: '/events', payload: originalEvent });
      const firstTag = String(created.headers.etag);
      t.match(firstTag, /^(W\/)?"[^"]+"$/, 'POST answers an ETag');
      const read = await app.inject({ method: 'GET', url: '/events/1' });
      t.equal(read.headers.etag, firstTag, 'GET answers the same ETag');

      const other = await app.inject({ method: 'PUT', url: '/events/1', payload: { name: 'Changed by someone else' } });
      t.equal(other.statusCode, 200);
      const currentTag = String(other.headers.etag);
      t.not(currentTag, firstTag, 'an update gives a new ETag');

      assertProblem(t, await app.inject({ method: 'PUT', url: '/events/1', headers: { 'if-match': firstTag }, payload: { name: 'Lost update' } }), 412, 'precondition-failed');
      t.equal((await getEvent(app, 1)).name, 'Changed by someone else', 'the stale update was not applied');

      const fresh = await app.inject({ method: 'PUT', url: '/events/1', headers: { 'if-match': currentTag }, payload: { name: 'Based on the current version' } });
      t.equal(fresh.statusCode, 200);
      t.equal(fresh.json<ApiEvent>().name, 'Based on the current version');
      t.not(fresh.headers.etag, currentTag, 'the answer carries the next ETag');
      t.equal((await app.inject({ method: 'GET', url: '/events/1' })).headers.etag, fresh.headers.etag);

      await createHold(app, 1, 1);
      assertProblem(t, await app.inject({ method: 'PUT', url: '/events/1', headers: { 'if-match': String(fresh.headers.etag) }, payload: { name: 'After a sale' } }), 412, 'precondition-failed');
      await assertSeatInvariant(t, app, 1);
    });

    t.test('ten concurrent PUTs with the same If-Match: exactly one is 200 and the other nine are 412, each total_tickets change applied once', async (t) => {
      const app = await startEventApp(t, {}, { store });
      // The ten PUTs wait before their handlers until all ten have arrived, then go together.
      const waiting: Array<() => void> = [];
      app.app.addHook('preHandler', async (request) => {
        if (request.method !== 'PUT') return;
        await new Promise<void>((release) => {
          waiting.push(release);
          if (waiting.length === 10) for (const go of waiting) go();
        });
      });
      const event = await postEvent(app, { total_tickets: 100 });
      const etag = String((await app.inject({ method: 'GET', url: `/events/${event.id}` })).headers.etag);
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => app.inject({ method: 'PUT', url: `/events/${event.id}`, headers: { 'if-match': etag }, payload: { total_tickets: 101 + i } })),
      );
      const statuses = answers.map((a) => a.statusCode).sort();
      t.same(statuses, [200, ...Array.from({ length: 9 }, () => 412)], 'one 200, nine 412');
      const winner = answers.find((a) => a.statusCode === 200)?.json<ApiEvent>();
      t.match(await getEvent(app, event.id), { total_tickets: winner?.total_tickets, available_tickets: winner?.total_tickets }, 'the event is as the one accepted PUT left it');
    });

    t.test("If-Match '*' or a list that holds the current ETag lets the update through (RFC 9110 13.1.1)", async (t) => {
      const app = await startEventApp(t, {}, { store });
      await postEvent(app);
      const star = await app.inject({ method: 'PUT', url: '/events/1', headers: { 'if-match': '*' }, payload: { name: 'Any version' } });
      t.equal(star.statusCode, 200, "'*' matches any current version of an existing event");
      const current = String((await app.inject({ method: 'GET', url: '/events/1' })).headers.etag);
      const list = await app.inject({ method: 'PUT', url: '/events/1', headers: { 'if-match': `"999", ${current}` }, payload: { name: 'From a list' } });
      t.equal(list.statusCode, 200, 'a list matches when one of its tags is current');
    });

    t.test('an event with a HELD hold cannot be deleted (409) and one with only released holds can (204)', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const first = await createHold(app, event.id, 2);
      const second = await createHold(app, event.id, 3);
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/events/${event.id}` }), 409, 'in-use');
      t.equal((await getEvent(app, event.id)).held_tickets, 5, 'the event and its holds are still there');
      await assertSeatInvariant(t, app, event.id);

      t.equal((await holdAction(app, first.hold_id, 'release')).statusCode, 200);
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/events/${event.id}` }), 409, 'in-use');
      t.equal((await holdAction(app, second.hold_id, 'commit')).statusCode, 200);
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/events/${event.id}` }), 409, 'in-use');
      await assertSeatInvariant(t, app, event.id);
      t.equal((await holdAction(app, second.hold_id, 'release')).statusCode, 200);
      await assertSeatInvariant(t, app, event.id);

      t.equal((await app.inject({ method: 'DELETE', url: `/events/${event.id}` })).statusCode, 204, 'with only released holds the event goes');
      assertProblem(t, await app.inject({ method: 'GET', url: `/events/${event.id}` }), 404, 'not-found');
    });

    t.test('price_per_ticket 45.5 is stored as ticket_price 4550', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { price_per_ticket: 45.5 });
      t.equal(event.ticket_price, 4550);
      t.equal(event.currency, 'USD');
      t.notOk('price_per_ticket' in event, 'the deprecated alias is not echoed');
      const updated = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { price_per_ticket: 12.34 } });
      t.equal(updated.json<ApiEvent>().ticket_price, 1234, 'the alias works on update too');
      const yen = await postEvent(app, { price_per_ticket: 1500, currency: 'JPY' });
      t.equal(yen.ticket_price, 1500, 'JPY has no minor units');
    });

    t.test('ids are never reused after deleting the newest event', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const first = await postEvent(app);
      const second = await postEvent(app);
      t.equal((await app.inject({ method: 'DELETE', url: `/events/${second.id}` })).statusCode, 204);
      const third = await postEvent(app);
      t.ok(third.id > second.id, `the next id (${third.id}) is above the deleted one (${second.id})`);
      t.ok(second.id > first.id);
      assertProblem(t, await app.inject({ method: 'GET', url: `/events/${second.id}` }), 404, 'not-found');
    });

    t.test('the largest price and ids the API allows are stored and looked up, never a 500: ticket_price 100000000000 is kept and id 2^53 − 1 is 404', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { ticket_price: 100_000_000_000, currency: 'JPY' });
      t.equal(event.ticket_price, 100_000_000_000);
      t.equal((await getEvent(app, event.id)).ticket_price, 100_000_000_000, 'and read back as a number');
      const largest = Number.MAX_SAFE_INTEGER;
      assertProblem(t, await app.inject({ method: 'GET', url: `/events/${largest}` }), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'GET', url: `/venues/${largest}` }), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${largest}`, payload: { name: 'Nobody' } }), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, venue_id: largest } }), 400, 'validation');
      const hold = await app.inject({ method: 'POST', url: '/holds', headers: serviceAuth, payload: { hold_id: randomUUID(), event_id: largest, quantity: 1, expires_at: '2030-01-01T00:00:00Z' } });
      assertProblem(t, hold, 404, 'not-found');
      t.same((await app.inject({ method: 'GET', url: `/events?ids=${largest},${event.id}&venue_id=${largest}` })).json(), [], 'filters on the largest ids find nothing');
      const held = await createHold(app, event.id, 2);
      t.equal(held.unit_price, 100_000_000_000, 'a hold keeps that price');
    });
  });
}
