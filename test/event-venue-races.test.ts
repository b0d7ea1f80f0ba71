/**
 * An event linked to a venue is created against the venue as it is when the event is written: a
 * venue deleted or shrunk at the same moment either wins cleanly (the create is refused) or loses
 * cleanly (409), never a 500 and never an event with more tickets than its venue holds.
 */
import t from 'tap';
import { startEventApp, type TestEventApp } from './helpers/event-app.js';
import { eventBody, postVenue, type ApiEvent, type ApiVenue, type Problem } from './helpers/event-api.js';

const PAIRS = 100;

async function venues(app: TestEventApp, capacity: number): Promise<ApiVenue[]> {
  const made: ApiVenue[] = [];
  for (let i = 0; i < PAIRS; i += 1) made.push(await postVenue(app, { name: `Hall ${i}`, capacity }));
  return made;
}

type Release = () => void;

/**
 * Holds the two requests of each pair just before their handlers until both have arrived, then lets
 * them go in the same turn of the event loop, the second 0 to 19 microtasks after the first (which
 * one goes first alternates): the moments a busy server sees when both arrive together, made to
 * happen every time instead of now and then.
 */
function pairUp(app: TestEventApp, changeMethod: 'DELETE' | 'PUT'): void {
  const waiting = new Map<number, { create?: Release; change?: Release }>();
  app.app.addHook('preHandler', async (request) => {
    const create = request.method === 'POST' && request.routeOptions.url === '/events';
    const change = request.method === changeMethod && request.routeOptions.url === '/venues/:id';
    if (!create && !change) return;
    const venueId = create ? (request.body as { venue_id: number }).venue_id : (request.params as { id: number }).id;
    await new Promise<void>((release) => {
      const pair = waiting.get(venueId) ?? {};
      if (create) pair.create = release;
      else pair.change = release;
      waiting.set(venueId, pair);
      if (!pair.create || !pair.change) return;
      waiting.delete(venueId);
      const [first, second] = venueId % 2 === 0 ? [pair.change, pair.create] : [pair.create, pair.change];
      first();
      void (async () => {
        for (let i = 0; i < venueId % 20; i += 1) await Promise.resolve();
        second();
      })();
    });
  });
}

async function allEvents(app: TestEventApp): Promise<ApiEvent[]> {
  const response = await app.inject({ method: 'GET', url: '/events?limit=1000' });
  return response.json<ApiEvent[]>();
}

t.test('100 concurrent pairs of creating an event at a venue and deleting that venue: one of the two wins each pair, never a 500', async (t) => {
  const app = await startEventApp(t);
  pairUp(app, 'DELETE');
  const halls = await venues(app, 100);
  const outcomes = await Promise.all(
    halls.map(async (venue) => {
      const [created, deleted] = await Promise.all([
        app.inject({ method: 'POST', url: '/events', payload: eventBody({ name: `Show at ${venue.name}`, venue_id: venue.id, total_tickets: 90 }) }),
        app.inject({ method: 'DELETE', url: `/venues/${venue.id}` }),
      ]);
      return { venue, created, deleted };
    }),
  );
  const events = await allEvents(app);
  let createsWon = 0;
  for (const { venue, created, deleted } of outcomes) {
    if (created.statusCode === 201) {
      createsWon += 1;
      t.equal(deleted.statusCode, 409, `venue ${venue.id}: the event was created, so the delete is 409`);
      t.equal(deleted.json<Problem>().type, 'urn:eventsync:problem:in-use');
      t.equal((await app.inject({ method: 'GET', url: `/venues/${venue.id}` })).statusCode, 200, `venue ${venue.id} is still there`);
    } else {
      t.equal(created.statusCode, 400, `venue ${venue.id}: the venue was deleted first, so the create is 400`);
      t.same(created.json<Problem>().errors?.map((e) => e.pointer), ['#/venue_id'], 'naming #/venue_id');
      t.equal(deleted.statusCode, 204, `venue ${venue.id}: and the delete is 204`);
      t.notOk(events.some((e) => e.venue_id === venue.id), `no event links to the deleted venue ${venue.id}`);
    }
  }
  t.equal(events.length, createsWon, 'exactly the created events exist');
  t.ok(createsWon > 0 && createsWon < PAIRS, `each side won some pairs (creates won ${createsWon})`);
});

t.test('100 concurrent pairs of creating a 90-ticket event at a venue of 100 and shrinking that venue to 50: never an event above its venue capacity', async (t) => {
  const app = await startEventApp(t);
  pairUp(app, 'PUT');
  const halls = await venues(app, 100);
  const outcomes = await Promise.all(
    halls.map(async (venue) => {
      const [created, shrunk] = await Promise.all([
        app.inject({ method: 'POST', url: '/events', payload: eventBody({ name: `Show at ${venue.name}`, venue_id: venue.id, total_tickets: 90 }) }),
        app.inject({ method: 'PUT', url: `/venues/${venue.id}`, payload: { capacity: 50 } }),
      ]);
      return { venue, created, shrunk };
    }),
  );
  const events = await allEvents(app);
  const createsWon = outcomes.filter(({ created }) => created.statusCode === 201).length;
  t.ok(createsWon > 0 && createsWon < PAIRS, `each side won some pairs (creates won ${createsWon})`);
  for (const { venue, created, shrunk } of outcomes) {
    const now = (await app.inject({ method: 'GET', url: `/venues/${venue.id}` })).json<ApiVenue>();
    if (created.statusCode === 201) {
      t.equal(shrunk.statusCode, 409, `venue ${venue.id}: the event was created, so the shrink is 409`);
      t.equal(shrunk.json<Problem>().type, 'urn:eventsync:problem:capacity-exceeded');
      t.equal(now.capacity, 100, 'and the capacity stays 100');
    } else {
      t.equal(created.statusCode, 409, `venue ${venue.id}: the venue shrank first, so the create is 409`);
      t.equal(created.json<Problem>().type, 'urn:eventsync:problem:capacity-exceeded');
      t.equal(shrunk.statusCode, 200, 'and the shrink is 200');
      t.equal(now.capacity, 50);
    }
    for (const event of events.filter((e) => e.venue_id === venue.id)) {
      t.ok(event.total_tickets <= now.capacity, `event ${event.id} has ${event.total_tickets} tickets at venue ${venue.id} of capacity ${now.capacity}`);
    }
  }
});
