/**
 * An event linked to a venue is created or grown against the venue as it is when the event is
 * written: a venue deleted or shrunk at the same moment either wins cleanly (the create or update is
 * refused) or loses cleanly (409), never a 500 and never an event with more tickets than its venue holds.
 */
import type { FastifyRequest } from 'fastify';
import t from 'tap';
import { startEventApp, type TestEventApp } from './helpers/event-app.js';
import { eventBody, postEvent, postVenue, type ApiEvent, type ApiVenue, type Problem } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

const PAIRS = 100;

async function venues(app: TestEventApp, capacity: number): Promise<ApiVenue[]> {
  const made: ApiVenue[] = [];
  for (let i = 0; i < PAIRS; i += 1) made.push(await postVenue(app, { name: `Hall ${i}`, capacity }));
  return made;
}

type Release = () => void;

/** Which side of a pair a request is, and the venue the pair is about; undefined for other requests. */
type PairSide = (request: FastifyRequest) => { side: 'event' | 'venue'; venueId: number } | undefined;

/**
 * Holds the two requests of each pair just before their handlers until both have arrived, then lets
 * them go in the same turn of the event loop, the second 0 to 19 microtasks after the first (which
 * one goes first alternates): the moments a busy server sees when both arrive together, made to
 * happen every time instead of now and then.
 */
function pairUp(app: TestEventApp, sideOf: PairSide): void {
  const waiting = new Map<number, { event?: Release; venue?: Release }>();
  app.app.addHook('preHandler', async (request) => {
    const found = sideOf(request);
    if (!found) return;
    const { side, venueId } = found;
    await new Promise<void>((release) => {
      const pair = waiting.get(venueId) ?? {};
      pair[side] = release;
      waiting.set(venueId, pair);
      if (!pair.event || !pair.venue) return;
      waiting.delete(venueId);
      const [first, second] = venueId % 2 === 0 ? [pair.venue, pair.event] : [pair.event, pair.venue];
      first();
      void (async () => {
        for (let i = 0; i < venueId % 20; i += 1) await Promise.resolve();
        second();
      })();
    });
  });
}

/** Pairs an event create (POST /events at a venue) with a change of that venue (`venueMethod` /venues/:id). */
const createAgainst =
  (venueMethod: 'DELETE' | 'PUT'): PairSide =>
  (request) => {
    if (request.method === 'POST' && request.routeOptions.url === '/events') return { side: 'event', venueId: (request.body as { venue_id: number }).venue_id };
    if (request.method === venueMethod && request.routeOptions.url === '/venues/:id') return { side: 'venue', venueId: (request.params as { id: number }).id };
    return undefined;
  };

async function allEvents(app: TestEventApp): Promise<ApiEvent[]> {
  const response = await app.inject({ method: 'GET', url: '/events?limit=1000' });
  return response.json<ApiEvent[]>();
}

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('100 concurrent pairs of creating an event at a venue and deleting that venue: one of the two wins each pair, never a 500', async (t) => {
      const app = await startEventApp(t, {}, { store });
      pairUp(app, createAgainst('DELETE'));
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
      const app = await startEventApp(t, {}, { store });
      pairUp(app, createAgainst('PUT'));
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

    t.test('100 concurrent pairs of raising an event at a venue of 100 to 90 tickets and shrinking that venue to 50: never an event above its venue capacity', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const venueOf = new Map<number, number>();
      pairUp(app, (request) => {
        const id = (request.params as { id?: number }).id;
        if (request.method !== 'PUT' || id === undefined) return undefined;
        if (request.routeOptions.url === '/events/:id') return { side: 'event', venueId: venueOf.get(id) ?? 0 };
        if (request.routeOptions.url === '/venues/:id') return { side: 'venue', venueId: id };
        return undefined;
      });
      for (const venue of await venues(app, 100)) venueOf.set((await postEvent(app, { name: `Show at ${venue.name}`, venue_id: venue.id, total_tickets: 10 })).id, venue.id);
      const outcomes = await Promise.all(
        [...venueOf].map(async ([eventId, venueId]) => {
          const [raised, shrunk] = await Promise.all([
            app.inject({ method: 'PUT', url: `/events/${eventId}`, payload: { total_tickets: 90 } }),
            app.inject({ method: 'PUT', url: `/venues/${venueId}`, payload: { capacity: 50 } }),
          ]);
          return { eventId, venueId, raised, shrunk };
        }),
      );
      const raisesWon = outcomes.filter(({ raised }) => raised.statusCode === 200).length;
      t.ok(raisesWon > 0 && raisesWon < PAIRS, `each side won some pairs (raises won ${raisesWon})`);
      const events = new Map((await allEvents(app)).map((event) => [event.id, event]));
      for (const { eventId, venueId, raised, shrunk } of outcomes) {
        const venue = (await app.inject({ method: 'GET', url: `/venues/${venueId}` })).json<ApiVenue>();
        const event = events.get(eventId);
        if (raised.statusCode === 200) {
          t.equal(shrunk.statusCode, 409, `venue ${venueId}: the event was raised, so the shrink is 409`);
          t.equal(venue.capacity, 100, 'and the capacity stays 100');
        } else {
          t.equal(raised.statusCode, 409, `venue ${venueId}: the venue shrank first, so the raise is 409`);
          t.equal(raised.json<Problem>().type, 'urn:eventsync:problem:capacity-exceeded');
          t.equal(shrunk.statusCode, 200, 'and the shrink is 200');
        }
        t.ok((event?.total_tickets ?? Infinity) <= venue.capacity, `event ${eventId} has ${event?.total_tickets} tickets at venue ${venueId} of capacity ${venue.capacity}`);
      }
    });
  });
}
