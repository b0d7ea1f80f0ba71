/**
 * `eventsync events list`: search, filters, sort, paging with --all, and finding the services
 * through EVENTSYNC_* variables; run as real processes against both services.
 */
import t from 'tap';
import { cliFor, closedPortUrl, describeRun, eventOnService, parseJsonOutput, runCli, seedEvent, seedTicket, succeedsWithJson, type Event, type Ticket } from './helpers/cli.js';
import { startSystem, type TestSystem } from './helpers/system.js';

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

t.test('events list and the service URLs against both services', async (t) => {
  const system: TestSystem = await startSystem(t);
  const cli = cliFor(system);
  const cliJson = <T>(...args: string[]): Promise<T> => succeedsWithJson<T>(cli('--json', ...args));

  t.test('events list filters with --search, --venue, --available, --from/--to and --sort, and --limit caps the page', async (t) => {
    const names = (events: Event[]) => events.map((e) => e.name);
    await seedEvent(system, { name: 'Marimba Morning', venue: 'Blue Room', event_date: '2027-05-01T10:00:00Z' });
    await seedEvent(system, { name: 'Marimba Evening', venue: 'Red Room', event_date: '2027-04-01T20:00:00Z' });
    const soldOut = await seedEvent(system, { name: 'Marimba Sold Out', venue: 'Blue Room', event_date: '2027-06-01T20:00:00Z', total_tickets: 1 });
    await seedTicket(system, soldOut.id, 1);
    await seedEvent(system, { name: 'Zither Recital', venue: 'blue room', event_date: '2027-07-01T20:00:00Z' });

    // Read-only queries: run side by side.
    const [byText, available, byVenue, byName, byDateDesc, byCreated, inRange, limited] = await Promise.all([
      cliJson<Event[]>('events', 'list', '--search', 'marimba'),
      cliJson<Event[]>('events', 'list', '--search', 'marimba', '--available'),
      cliJson<Event[]>('events', 'list', '--venue', 'BLUE ROOM'),
      cliJson<Event[]>('events', 'list', '--search', 'marimba', '--sort', 'name'),
      cliJson<Event[]>('events', 'list', '--search', 'marimba', '--sort', '-event_date'),
      cliJson<Event[]>('events', 'list', '--search', 'marimba', '--sort', '-created_at'),
      cliJson<Event[]>('events', 'list', '--search', 'marimba', '--from', '2027-04-15T00:00:00Z', '--to', '2027-05-15T00:00:00Z'),
      cliJson<Event[]>('events', 'list', '--search', 'marimba', '--limit', '2'),
    ]);
    t.same(names(byText), ['Marimba Evening', 'Marimba Morning', 'Marimba Sold Out'], '--search matches words; the default order is by date');
    t.same(names(available), ['Marimba Evening', 'Marimba Morning'], '--available leaves out the sold-out event');
    t.same(names(byVenue), ['Marimba Morning', 'Marimba Sold Out', 'Zither Recital'], '--venue matches the name whatever its case');
    t.same(names(byName), ['Marimba Evening', 'Marimba Morning', 'Marimba Sold Out'], '--sort name');
    t.same(names(byDateDesc), ['Marimba Sold Out', 'Marimba Morning', 'Marimba Evening'], '--sort -event_date');
    t.same(names(byCreated), ['Marimba Sold Out', 'Marimba Evening', 'Marimba Morning'], '--sort -created_at');
    t.same(names(inRange), ['Marimba Morning'], '--from and --to bound the date');
    t.same(names(limited), ['Marimba Evening', 'Marimba Morning'], '--limit 2 gives the first page only');
  });

  t.test('events list --all follows the Link header to the last page', async (t) => {
    const created: number[] = [];
    for (let i = 1; i <= 5; i += 1) created.push((await seedEvent(system, { name: `Ocarina Gathering ${i}`, event_date: `2027-08-0${i}T20:00:00Z` })).id);
    const [firstPage, all, everything] = await Promise.all([
      cliJson<Event[]>('events', 'list', '--search', 'ocarina', '--limit', '2'),
      cliJson<Event[]>('events', 'list', '--search', 'ocarina', '--limit', '2', '--all'),
      cliJson<Event[]>('events', 'list', '--limit', '2', '--all'),
    ]);
    t.same(firstPage.map((e) => e.id), created.slice(0, 2), 'without --all one page of 2');
    t.same(all.map((e) => e.id), created, 'with --all every matching event, once, in order');
    const listed = await system.events.call('listEvents', { query: { limit: 1000 } });
    if (!listed.ok) throw new Error(`GET /events answered ${listed.status}`);
    t.ok(listed.body.length > 5);
    t.same(everything.map((e) => e.id), listed.body.map((e) => e.id), 'without a filter --all returns what one big page returns');
  });

  t.test('EVENTSYNC_EVENT_URL and EVENTSYNC_TICKET_URL point the CLI at the services instead of flags, and flags win over them', async (t) => {
    const env = { EVENTSYNC_EVENT_URL: system.event.url, EVENTSYNC_TICKET_URL: system.ticket.url };
    const created = await runCli(['--json', 'events', 'create', '--name', 'Env Configured', '--date', '2027-01-01T20:00:00Z', '--tickets', '4'], { env });
    t.equal(created.code, 0, describeRun(created));
    const event = parseJsonOutput<Event>(created);
    t.equal((await eventOnService(system, event.id)).name, 'Env Configured', 'event-service got the event');
    const bought = await runCli(['tickets', 'buy', '--event', String(event.id), '--name', 'Env User', '--email', 'env@example.com', '--json'], { env });
    t.equal(bought.code, 0, describeRun(bought));
    const ticket = parseJsonOutput<Ticket>(bought);
    const stored = await system.tickets.call('getTicket', { path: { id: ticket.id } });
    t.ok(stored.ok && stored.body.status === 'RESERVED', 'ticket-service got the purchase');
    t.equal((await eventOnService(system, event.id)).available_tickets, 3);

    const nowhere = await closedPortUrl();
    const flagged = await runCli(['--event-url', system.event.url, 'events', 'get', String(event.id), '--json'], { env: { EVENTSYNC_EVENT_URL: nowhere } });
    t.equal(flagged.code, 0, `--event-url wins over the variable: ${describeRun(flagged)}`);
    t.equal(parseJsonOutput<Event>(flagged).id, event.id);
  });
});
