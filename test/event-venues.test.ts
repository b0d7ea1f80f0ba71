import t from 'tap';
import { ADMIN_TOKEN, adminAuth, assertSeatInvariant, serviceAuth, startEventApp } from './helpers/event-app.js';
import { assertProblem, getEvent, linkTarget, pointers, postEvent, postVenue, type ApiEvent, type ApiVenue } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

t.test('with ADMIN_TOKEN set, venue writes need the admin token (401 without it) and reads stay open', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  const body = { name: 'Locked Hall', capacity: 100 };
  assertProblem(t, await app.inject({ method: 'POST', url: '/venues', payload: body }), 401, 'unauthorized');
  assertProblem(t, await app.inject({ method: 'POST', url: '/venues', headers: { authorization: 'Bearer not-the-admin-token-123' }, payload: body }), 401, 'unauthorized');
  const created = await app.inject({ method: 'POST', url: '/venues', headers: adminAuth, payload: body });
  t.equal(created.statusCode, 201);
  const venue = created.json<ApiVenue>();
  assertProblem(t, await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, payload: { capacity: 1 } }), 401, 'unauthorized');
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/venues/${venue.id}` }), 401, 'unauthorized');
  t.equal((await app.inject({ method: 'GET', url: `/venues/${venue.id}` })).json<ApiVenue>().capacity, 100, 'reads are open and nothing changed');
  t.equal((await app.inject({ method: 'GET', url: '/venues' })).statusCode, 200);
  t.equal((await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, headers: adminAuth, payload: { capacity: 150 } })).statusCode, 200);
  t.equal((await app.inject({ method: 'DELETE', url: `/venues/${venue.id}`, headers: adminAuth })).statusCode, 204);
});

t.test('the service token on a venue write is a 403 that the spec declares', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  assertProblem(t, await app.inject({ method: 'POST', url: '/venues', headers: serviceAuth, payload: { name: 'Hall', capacity: 100 } }), 403, 'forbidden');
  const venue = (await app.inject({ method: 'POST', url: '/venues', headers: adminAuth, payload: { name: 'Hall', capacity: 100 } })).json<ApiVenue>();
  assertProblem(t, await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, headers: serviceAuth, payload: { capacity: 1 } }), 403, 'forbidden');
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/venues/${venue.id}`, headers: serviceAuth }), 403, 'forbidden');
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('a venue is created (201 + Location), read, listed, partially updated and deleted (204, then 404)', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const created = await app.inject({
        method: 'POST',
        url: '/venues',
        payload: { name: 'Convention Center', address: '1 Main St', city: 'Springfield', capacity: 500, description: 'Main hall' },
      });
      t.equal(created.statusCode, 201);
      const venue = created.json<ApiVenue>();
      t.equal(created.headers.location, `/venues/${venue.id}`, 'Location names the new venue');
      t.match(venue, { name: 'Convention Center', address: '1 Main St', city: 'Springfield', capacity: 500, description: 'Main hall' });

      const read = await app.inject({ method: 'GET', url: `/venues/${venue.id}` });
      t.equal(read.statusCode, 200);
      t.same(read.json<ApiVenue>(), venue, 'GET answers what POST answered');

      await postVenue(app, { name: 'Arena', capacity: 10_000 });
      const list = await app.inject({ method: 'GET', url: '/venues' });
      t.equal(list.statusCode, 200);
      t.equal(list.headers['x-total-count'], '2', 'X-Total-Count counts every venue');
      t.same(list.json<ApiVenue[]>().map((v) => v.name), ['Arena', 'Convention Center'], 'venues are listed by name');

      const updated = await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, payload: { capacity: 600 } });
      t.equal(updated.statusCode, 200);
      t.match(updated.json<ApiVenue>(), { id: venue.id, name: 'Convention Center', address: '1 Main St', city: 'Springfield', capacity: 600, description: 'Main hall' }, 'fields not sent keep their value');
      t.same((await app.inject({ method: 'GET', url: `/venues/${venue.id}` })).json<ApiVenue>().capacity, 600, 'the new capacity is stored');

      const deleted = await app.inject({ method: 'DELETE', url: `/venues/${venue.id}` });
      t.equal(deleted.statusCode, 204);
      t.equal(deleted.body, '', 'a 204 has no body');
      assertProblem(t, await app.inject({ method: 'GET', url: `/venues/${venue.id}` }), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, payload: { capacity: 1 } }), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/venues/${venue.id}` }), 404, 'not-found');
    });

    t.test('GET-modify-PUT of a venue ignores its read-only id and timestamps', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const venue = await postVenue(app);
      const edited = { ...venue, id: 999, created_at: '2000-01-01T00:00:00Z', updated_at: '2000-01-01T00:00:00Z', city: 'Shelbyville' };
      const response = await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, payload: edited });
      t.equal(response.statusCode, 200);
      const after = response.json<ApiVenue>();
      t.equal(after.id, venue.id);
      t.equal(after.city, 'Shelbyville');
      t.equal(after.created_at, venue.created_at, 'created_at is not taken from the body');
      assertProblem(t, await app.inject({ method: 'GET', url: '/venues/999' }), 404, 'not-found');
    });

    t.test('the venue list pages with Link and offset', async (t) => {
      const app = await startEventApp(t, {}, { store });
      for (const name of ['A hall', 'B hall', 'C hall']) await postVenue(app, { name });
      const first = await app.inject({ method: 'GET', url: '/venues?limit=2' });
      t.same(first.json<ApiVenue[]>().map((v) => v.name), ['A hall', 'B hall']);
      t.equal(first.headers['x-total-count'], '3');
      const next = linkTarget(first, 'next');
      t.ok(next, 'the first page links to the next');
      const second = await app.inject({ method: 'GET', url: next ?? '/' });
      t.same(second.json<ApiVenue[]>().map((v) => v.name), ['C hall']);
      t.equal(linkTarget(second, 'next'), undefined, 'the last page has no next link');
      t.ok(linkTarget(second, 'prev'), 'the second page links back');
    });

    t.test('an event linked to a venue gets the venue name as its venue by default', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const venue = await postVenue(app, { name: 'Riverside Arena', capacity: 300 });
      const response = await app.inject({
        method: 'POST',
        url: '/events',
        payload: { name: 'Jazz Night', event_date: '2027-03-20T19:30:00Z', venue_id: venue.id, total_tickets: 150 },
      });
      t.equal(response.statusCode, 201);
      const event = response.json<ApiEvent>();
      t.equal(event.venue_id, venue.id);
      t.equal(event.venue, 'Riverside Arena', 'venue defaults to the linked venue name');

      const explicit = await postEvent(app, { venue_id: venue.id, venue: 'Riverside Arena, hall B', total_tickets: 10 });
      t.equal(explicit.venue, 'Riverside Arena, hall B', 'an explicit venue text wins over the default');

      const other = await postVenue(app, { name: 'Old Theatre', capacity: 300 });
      const moved = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { venue_id: other.id } });
      t.equal(moved.statusCode, 200);
      t.equal(moved.json<ApiEvent>().venue, 'Old Theatre', 'linking another venue takes its name');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('total_tickets above the venue capacity is 409 capacity-exceeded on create and on update', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const venue = await postVenue(app, { capacity: 100 });
      const small = await postVenue(app, { name: 'Small room', capacity: 20 });

      assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { name: 'Too big', event_date: '2027-01-01T20:00:00Z', venue_id: venue.id, total_tickets: 101 } }), 409, 'capacity-exceeded');
      const none = await app.inject({ method: 'GET', url: '/events' });
      t.equal(none.headers['x-total-count'], '0', 'the refused create wrote nothing');

      const atCapacity = await postEvent(app, { venue_id: venue.id, total_tickets: 100 });
      t.equal(atCapacity.total_tickets, 100, 'exactly the capacity is allowed');

      const event = await postEvent(app, { venue_id: venue.id, total_tickets: 50 });
      assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { total_tickets: 101 } }), 409, 'capacity-exceeded');
      assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { venue_id: small.id } }), 409, 'capacity-exceeded');
      const after = await getEvent(app, event.id);
      t.match(after, { total_tickets: 50, available_tickets: 50, venue_id: venue.id }, 'the refused updates changed nothing');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('shrinking a venue capacity below a linked event total_tickets is 409 and keeps the capacity', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const venue = await postVenue(app, { capacity: 500 });
      const event = await postEvent(app, { venue_id: venue.id, total_tickets: 300 });
      assertProblem(t, await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, payload: { capacity: 299 } }), 409, 'capacity-exceeded');
      t.equal((await app.inject({ method: 'GET', url: `/venues/${venue.id}` })).json<ApiVenue>().capacity, 500, 'the capacity is unchanged');
      const exact = await app.inject({ method: 'PUT', url: `/venues/${venue.id}`, payload: { capacity: 300 } });
      t.equal(exact.statusCode, 200, 'shrinking to exactly the largest event is allowed');
      t.equal(exact.json<ApiVenue>().capacity, 300);
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a venue that an event links to cannot be deleted (409 in-use) until the event is gone', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const venue = await postVenue(app);
      const event = await postEvent(app, { venue_id: venue.id, total_tickets: 10 });
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/venues/${venue.id}` }), 409, 'in-use');
      t.equal((await app.inject({ method: 'GET', url: `/venues/${venue.id}` })).statusCode, 200, 'the venue is still there');
      t.equal((await app.inject({ method: 'DELETE', url: `/events/${event.id}` })).statusCode, 204);
      t.equal((await app.inject({ method: 'DELETE', url: `/venues/${venue.id}` })).statusCode, 204, 'without linked events the venue can go');
    });

    t.test('a venue_id that does not exist is 400 naming #/venue_id on create and on update', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const created = assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { name: 'Nowhere', event_date: '2027-01-01T20:00:00Z', venue_id: 42, total_tickets: 10 } }), 400, 'validation');
      t.same(pointers(created), ['#/venue_id']);
      t.equal((await app.inject({ method: 'GET', url: '/events' })).headers['x-total-count'], '0', 'nothing was written');

      const event = await postEvent(app, { total_tickets: 10 });
      const updated = assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { venue_id: 42 } }), 400, 'validation');
      t.same(pointers(updated), ['#/venue_id']);
      t.equal((await getEvent(app, event.id)).venue_id, null, 'the event is not linked');
      await assertSeatInvariant(t, app, event.id);
    });
  });
}
