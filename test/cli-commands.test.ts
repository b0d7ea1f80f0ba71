/**
 * `eventsync venues …` and `eventsync events …` happy paths, run as real processes against both
 * services; every test checks what event-service holds afterwards, not only what was printed.
 */
import t from 'tap';
import type { components as EventComponents } from '../openapi/generated/event-service.js';
import { cliFor, describeRun, eventOnService, seedEvent, seedTicket, succeedsWithJson, type Event } from './helpers/cli.js';
import { startSystem, type TestSystem } from './helpers/system.js';

type Venue = EventComponents['schemas']['Venue'];

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

t.test('the venues and events commands against both services', async (t) => {
  const system: TestSystem = await startSystem(t);
  const cli = cliFor(system);
  const cliJson = <T>(...args: string[]): Promise<T> => succeedsWithJson<T>(cli('--json', ...args));

  async function venueOnService(id: number): Promise<{ status: number; venue?: Venue }> {
    const result = await system.events.call('getVenue', { path: { id } });
    return result.ok ? { status: result.status, venue: result.body } : { status: result.status };
  }

  const eventStatus = async (id: number): Promise<number> => (await system.events.call('getEvent', { path: { id } })).status;

  t.test('venues create, list, get, update and delete change the venues event-service holds', async (t) => {
    const created = await cli('venues', 'create', '--name', 'Convention Center', '--capacity', '500', '--city', 'Springfield', '--address', '1 Main St', '--description', 'Big hall');
    t.equal(created.code, 0, describeRun(created));
    const id = Number(/created venue (\d+)/.exec(created.stdout)?.[1]);
    t.ok(id >= 1, 'prints the new venue id');
    t.match(created.stdout, /capacity\s+500/);
    const stored = await venueOnService(id);
    t.match(stored.venue, { name: 'Convention Center', capacity: 500, city: 'Springfield', address: '1 Main St', description: 'Big hall' }, 'event-service has the venue');

    const listed = await cliJson<Venue[]>('venues', 'list');
    t.same(
      listed.find((v) => v.id === id),
      stored.venue,
      'venues list --json shows the stored venue',
    );
    const table = await cli('venues', 'list');
    t.equal(table.code, 0);
    t.match(table.stdout, /Convention Center\s*│\s*Springfield\s*│\s*500/, 'the table shows name, city and capacity');

    const shown = await cli('venues', 'get', String(id));
    t.equal(shown.code, 0);
    t.match(shown.stdout, /name\s+Convention Center/);
    t.match(shown.stdout, /city\s+Springfield/);

    const updated = await cliJson<Venue>('venues', 'update', String(id), '--capacity', '600', '--city', 'Shelbyville');
    t.match(updated, { id, capacity: 600, city: 'Shelbyville', name: 'Convention Center' });
    t.match((await venueOnService(id)).venue, { capacity: 600, city: 'Shelbyville', name: 'Convention Center', address: '1 Main St' }, 'the update changed only the given fields');
    t.same(await cliJson<Venue>('venues', 'get', String(id)), (await venueOnService(id)).venue, 'venues get --json is the stored venue');

    const deleted = await cli('venues', 'delete', String(id));
    t.equal(deleted.code, 0, describeRun(deleted));
    t.match(deleted.stdout, `deleted venue ${id}`);
    t.equal((await venueOnService(id)).status, 404, 'the venue is gone');
  });

  t.test('venues delete is refused with exit 1 while an event links to the venue, and the venue stays', async (t) => {
    const venue = await system.events.call('createVenue', { body: { name: 'Linked Hall', capacity: 50, address: '', city: '', description: '' } });
    if (!venue.ok) throw new Error(`POST /venues answered ${venue.status}`);
    await seedEvent(system, { name: 'Linked Show', venue_id: venue.body.id });
    const refused = await cli('venues', 'delete', String(venue.body.id));
    t.equal(refused.code, 1, describeRun(refused));
    t.match(refused.stderr, /HTTP 409/);
    t.equal(refused.stdout, '', 'nothing on stdout');
    t.equal((await venueOnService(venue.body.id)).status, 200);
  });

  t.test('events create, get, list, update and delete change the events event-service holds', async (t) => {
    const venue = await system.events.call('createVenue', { body: { name: 'Jazz Cellar', capacity: 300, address: '', city: '', description: '' } });
    if (!venue.ok) throw new Error(`POST /venues answered ${venue.status}`);
    const created = await cli(
      'events', 'create',
      '--name', 'Jazz Night',
      '--date', '2027-03-20T19:30:00+01:00',
      '--venue-id', String(venue.body.id),
      '--tickets', '150',
      '--ticket-price', '4500',
      '--currency', 'EUR',
      '--description', 'Late set',
      '--timezone', 'Europe/Paris',
    );
    t.equal(created.code, 0, describeRun(created));
    const id = Number(/created event (\d+)/.exec(created.stdout)?.[1]);
    t.ok(id >= 1, 'prints the new event id');
    t.match(created.stdout, /€45\.00/, 'shows the price in major units');
    const stored = await eventOnService(system, id);
    t.match(stored, {
      name: 'Jazz Night',
      description: 'Late set',
      event_date: '2027-03-20T18:30:00Z',
      venue: 'Jazz Cellar',
      venue_id: venue.body.id,
      total_tickets: 150,
      available_tickets: 150,
      ticket_price: 4500,
      currency: 'EUR',
      timezone: 'Europe/Paris',
    }, 'event-service has the event, its date in UTC and the venue name taken from the venue');

    t.same(await cliJson<Event>('events', 'get', String(id)), stored, 'events get --json is the stored event');
    const shown = await cli('events', 'get', String(id));
    t.equal(shown.code, 0);
    t.match(shown.stdout, /seats\s+150 available of 150/);
    t.ok((await cliJson<Event[]>('events', 'list')).some((e) => e.id === id), 'events list --json includes it');

    const updated = await cliJson<Event>('events', 'update', String(id), '--tickets', '200', '--ticket-price', '5000');
    t.match(updated, { id, total_tickets: 200, available_tickets: 200, ticket_price: 5000 });
    t.match(await eventOnService(system, id), { name: 'Jazz Night', total_tickets: 200, available_tickets: 200, ticket_price: 5000, currency: 'EUR' }, 'the update is stored and other fields keep their value');

    const deleted = await cli('events', 'delete', String(id));
    t.equal(deleted.code, 0, describeRun(deleted));
    t.match(deleted.stdout, `deleted event ${id}`);
    t.equal(await eventStatus(id), 404, 'the event is gone');
  });

  t.test('events update --tickets moves available_tickets by the same amount when seats are taken', async (t) => {
    const event = await seedEvent(system, { name: 'Resized Show', total_tickets: 10 });
    await seedTicket(system, event.id, 3);
    const updated = await cliJson<Event>('events', 'update', String(event.id), '--tickets', '12');
    t.match(updated, { total_tickets: 12, available_tickets: 9 });
    t.match(await eventOnService(system, event.id), { total_tickets: 12, available_tickets: 9, held_tickets: 3 });
    const refused = await cli('events', 'update', String(event.id), '--tickets', '2');
    t.equal(refused.code, 1, `shrinking below the taken seats is refused: ${describeRun(refused)}`);
    t.match(refused.stderr, /HTTP 409/);
    t.match(await eventOnService(system, event.id), { total_tickets: 12, available_tickets: 9 }, 'and nothing changed');
  });
});
