/**
 * What `eventsync` prints: `--json` is exactly one document that conforms to the contract's response
 * schema, and the output for people is a table with an availability bar, coloured only on a
 * terminal and never with NO_COLOR.
 */
import t from 'tap';
import { cliFor, describeRun, hasAnsi, parseJsonOutput, responseValidator, runInTerminal, seedEvent, seedTicket, type Event, type Ticket } from './helpers/cli.js';
import { startSystem, type TestSystem } from './helpers/system.js';

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

t.test('what eventsync prints for scripts and for people', async (t) => {
  const system: TestSystem = await startSystem(t);
  const cli = cliFor(system);
  const urls = ['--event-url', system.event.url, '--ticket-url', system.ticket.url];

  // Events in every state the schema describes: a linked venue, a sales window, held, sold and sold out.
  const venue = await system.events.call('createVenue', { body: { name: 'Grand Hall', capacity: 100, address: '', city: 'Springfield', description: '' } });
  if (!venue.ok) throw new Error(`POST /venues answered ${venue.status}`);
  const halfTaken = await seedEvent(system, { name: 'Half Taken', total_tickets: 10, venue_id: venue.body.id, ticket_price: 4500, currency: 'EUR', event_date: '2027-01-01T20:00:00Z' });
  await seedTicket(system, halfTaken.id, 3);
  const sold = await seedTicket(system, halfTaken.id, 2, 'CONFIRMED');
  const soldOut = await seedEvent(system, { name: 'Sold Out', total_tickets: 2, event_date: '2027-02-01T20:00:00Z', sales_start: '2026-01-01T00:00:00Z', sales_end: '2027-01-31T00:00:00Z', image_url: 'https://example.com/x.png', timezone: 'Europe/Paris' });
  const cancelled = await seedTicket(system, soldOut.id, 1, 'CANCELLED');
  await seedTicket(system, soldOut.id, 2);
  // Run once, read by two tests below.
  const invalidCreate = cli('events', 'create', '--name', 'Bad', '--date', '2027-03-20T19:30:00Z', '--tickets', '5', '--currency', 'euros', '--timezone', 'Mars/Olympus');
  await seedEvent(system, { name: 'Untouched', total_tickets: 10, event_date: '2027-03-01T20:00:00Z', ticket_price: 0 });

  t.test('events list --json prints exactly one JSON document that validates against the listEvents 200 schema', async (t) => {
    const result = await cli('--json', 'events', 'list');
    t.equal(result.code, 0, describeRun(result));
    t.equal(result.stderr, '', 'nothing on stderr');
    const events = parseJsonOutput<Event[]>(result);
    const { validate, errorsText } = responseValidator('event-service', 'listEvents', 200);
    t.ok(validate(events), `conforms to the spec: ${errorsText()}`);
    t.same(events.map((e) => e.name), ['Half Taken', 'Sold Out', 'Untouched'], 'all three events, in date order');
    t.match(events[0], { held_tickets: 3, sold_tickets: 2, available_tickets: 5, sold_ratio: 0.5 }, 'the derived counts are the API\'s');
    const listed = await system.events.call('listEvents', {});
    t.ok(listed.ok && JSON.stringify(listed.body) === JSON.stringify(events), 'exactly the API\'s JSON, nothing added or dropped');
  });

  t.test('tickets get --json prints exactly one JSON document that validates against the getTicket 200 schema', async (t) => {
    const { validate, errorsText } = responseValidator('ticket-service', 'getTicket', 200);
    const confirmed = await cli('tickets', 'get', String(sold.id), '--json');
    t.equal(confirmed.code, 0, describeRun(confirmed));
    t.equal(confirmed.stderr, '');
    const ticket = parseJsonOutput<Ticket>(confirmed);
    t.ok(validate(ticket), `a CONFIRMED ticket conforms to the spec: ${errorsText()}`);
    t.match(ticket, { id: sold.id, status: 'CONFIRMED', event: { name: 'Half Taken' } });
    const result = await cli('tickets', 'get', String(cancelled.id), '--json');
    t.equal(result.code, 0, describeRun(result));
    const parsed = parseJsonOutput<Ticket>(result);
    t.ok(validate(parsed), `a CANCELLED ticket conforms to the spec: ${errorsText()}`);
    t.match(parsed, { status: 'CANCELLED', cancellation_reason: 'customer', expires_at: null });
  });

  t.test('tickets list --json validates against the listTickets 200 schema', async (t) => {
    const result = await cli('--json', 'tickets', 'list');
    t.equal(result.code, 0, describeRun(result));
    const { validate, errorsText } = responseValidator('ticket-service', 'listTickets', 200);
    const tickets = parseJsonOutput<Ticket[]>(result);
    t.ok(validate(tickets), `conforms to the spec: ${errorsText()}`);
    t.ok(tickets.length >= 3);
  });

  t.test('events list for people shows a table with an availability bar of █ and ░ and the share taken, without ANSI codes under NO_COLOR', async (t) => {
    const result = await cli('events', 'list');
    t.equal(result.code, 0, describeRun(result));
    t.notOk(hasAnsi(result.stdout), 'no escape codes');
    t.match(result.stdout, /│ id\s*│ name\s*│ date \(UTC\)\s*│ venue\s*│ price\s*│ available\s*│ taken\s*│/, 'a header row; the bar counts reserved and sold seats, so it is labelled "taken"');
    t.notMatch(result.stdout, /│ sold\s*│/, 'not "sold"');
    t.match(result.stdout, /Half Taken\s*│ 2027-01-01 20:00\s*│ Grand Hall\s*│ €45\.00\s*│ 5\/10\s*│ ██████░░░░░░ 50%/, '3 held + 2 sold of 10: half the bar, 50%');
    t.match(result.stdout, /Sold Out\s*│.*│ 0\/2\s*│ ████████████ 100%/, 'a sold-out event has a full bar');
    t.match(result.stdout, /Untouched\s*│.*│ 10\/10\s*│ ░░░░░░░░░░░░ 0%/, 'an untouched event has an empty bar');
  });

  t.test('on a terminal the table is coloured, and NO_COLOR turns the colour off there too', async (t) => {
    const coloured = await runInTerminal([...urls, 'events', 'list'], { noColor: false });
    t.equal(coloured.code, 0, describeRun(coloured));
    t.ok(hasAnsi(coloured.stdout), 'colour on a terminal without NO_COLOR');
    t.match(coloured.stdout, /██████/);
    const plain = await runInTerminal([...urls, 'events', 'list'], { env: { NO_COLOR: '1' } });
    t.equal(plain.code, 0, describeRun(plain));
    t.notOk(hasAnsi(plain.stdout), 'no escape codes with NO_COLOR, even on a terminal');
    t.match(plain.stdout, /██████░░░░░░ 50%/, 'the bar is still there');
    const dumb = await runInTerminal([...urls, 'events', 'list'], { noColor: false, env: { TERM: 'dumb' } });
    t.notOk(hasAnsi(dumb.stdout), 'nor with TERM=dumb');
  });

  t.test('errors go to stderr with the problem, and stdout stays empty even with --json', async (t) => {
    const result = await cli('--json', 'events', 'get', '999999');
    t.equal(result.code, 1, describeRun(result));
    t.equal(result.stdout, '', 'nothing on stdout for a script to mistake for data');
    t.match(result.stderr, /HTTP 404/);
    const invalid = await invalidCreate;
    t.equal(invalid.code, 1, describeRun(invalid));
    t.match(invalid.stderr, /HTTP 400/);
    t.match(invalid.stderr, /#\/currency: /, 'each invalid field on its own line');
    t.match(invalid.stderr, /#\/timezone: /);
  });

  t.test('invalid-field messages keep the capitals of what they quote (ISO 4217, IANA)', async (t) => {
    const invalid = await invalidCreate;
    t.match(invalid.stderr, /#\/currency: must be ISO 4217/, 'the currency message');
    t.match(invalid.stderr, /#\/timezone: must be an IANA time zone/, 'the time zone message');
  });

  t.test('one invalid field is said once: the detail names it, no list repeats it', async (t) => {
    const invalid = await cli('events', 'create', '--name', 'Bad', '--date', '2027-03-20T19:30:00Z', '--tickets', '5', '--currency', 'euros');
    t.equal(invalid.code, 1, describeRun(invalid));
    t.match(invalid.stderr, /^error: Invalid request: #\/currency must be ISO 4217.* \(HTTP 400\)$/m);
    t.equal(invalid.stderr.trimEnd().split('\n').length, 1, `one line: ${invalid.stderr}`);
  });

  t.test('events get shows the share taken (reserved + sold) labelled "taken", and an empty field as —', async (t) => {
    const result = await cli('events', 'get', String(halfTaken.id));
    t.equal(result.code, 0, describeRun(result));
    t.match(result.stdout, /^taken\s+██████░░░░░░ 50%$/m, '3 reserved + 2 sold of 10');
    t.notMatch(result.stdout, /^sold\s/m, 'no line labelled "sold" for the bar');
    t.match(result.stdout, /^description\s+—$/m, 'an empty description shows as —');
  });

  t.test('a ticket of an event without a venue says nothing of a venue ("at  (event 3)" was printed)', async (t) => {
    const noVenue = await seedEvent(system, { name: 'Nowhere Gig', total_tickets: 5 });
    const ticket = await seedTicket(system, noVenue.id, 1);
    const result = await cli('tickets', 'get', String(ticket.id));
    t.equal(result.code, 0, describeRun(result));
    t.match(result.stdout, new RegExp(`^event\\s+Nowhere Gig — 2027-03-20T19:30:00Z \\(event ${noVenue.id}\\)$`, 'm'));
    t.notMatch(result.stdout, / at /);
  });
});
