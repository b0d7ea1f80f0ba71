/** `eventsync events …` */
import { Command, Option } from 'commander';
import type { components } from '../../openapi/generated/event-service.js';
import { nextCursor } from '../../openapi/client.js';
import { MAX_PAGE, cliContext, expectOk, parseDateTimeOption, parseInteger } from '../context.js';
import { availabilityBar, count, money, printJson, printRecord, printTable } from '../output.js';

type Event = components['schemas']['Event'];
type EventCreate = components['schemas']['EventCreate'];

function printEvents(events: Event[]): void {
  printTable(
    ['id', 'name', 'date (UTC)', 'venue', 'price', 'available', 'taken'],
    events.map((e) => [e.id, e.name, e.event_date.replace('T', ' ').replace(/:00Z$|Z$/, ''), e.venue, money(e.ticket_price, e.currency), `${e.available_tickets}/${e.total_tickets}`, availabilityBar(e.held_tickets + e.sold_tickets, e.total_tickets)]),
  );
}

function printEvent(e: Event): void {
  printRecord([
    ['id', e.id],
    ['name', e.name],
    ['description', e.description],
    ['date', `${e.event_date} (${e.timezone})`],
    ['venue', e.venue_id === null ? e.venue : `${e.venue} (venue ${e.venue_id})`],
    ['price', money(e.ticket_price, e.currency)],
    ['seats', `${e.available_tickets} available of ${e.total_tickets} (${e.held_tickets} reserved, ${e.sold_tickets} sold, ${e.manual_reserved_tickets} set aside)`],
    ['taken', availabilityBar(e.held_tickets + e.sold_tickets, e.total_tickets)],
    ['sales', e.sales_start || e.sales_end ? `${e.sales_start ?? 'now'} → ${e.sales_end ?? 'the event'}` : 'open'],
  ]);
}

interface EventFields {
  name?: string;
  description?: string;
  date?: string;
  venue?: string;
  venueId?: number;
  tickets?: number;
  ticketPrice?: number;
  currency?: string;
  timezone?: string;
  imageUrl?: string;
  salesStart?: string;
  salesEnd?: string;
}

function eventBody(fields: EventFields): Partial<EventCreate> {
  const body: Partial<EventCreate> = {};
  if (fields.name !== undefined) body.name = fields.name;
  if (fields.description !== undefined) body.description = fields.description;
  if (fields.date !== undefined) body.event_date = fields.date;
  if (fields.venue !== undefined) body.venue = fields.venue;
  if (fields.venueId !== undefined) body.venue_id = fields.venueId;
  if (fields.tickets !== undefined) body.total_tickets = fields.tickets;
  if (fields.ticketPrice !== undefined) body.ticket_price = fields.ticketPrice;
  if (fields.currency !== undefined) body.currency = fields.currency;
  if (fields.timezone !== undefined) body.timezone = fields.timezone;
  if (fields.imageUrl !== undefined) body.image_url = fields.imageUrl;
  if (fields.salesStart !== undefined) body.sales_start = fields.salesStart;
  if (fields.salesEnd !== undefined) body.sales_end = fields.salesEnd;
  return body;
}

function withEventFields(command: Command, required: boolean): Command {
  const name = new Option('--name <name>', 'event name');
  const date = new Option('--date <date-time>', 'RFC 3339 date-time with a time, e.g. 2027-03-20T19:30:00+01:00; no offset means UTC').argParser(parseDateTimeOption('--date'));
  const tickets = new Option('--tickets <n>', 'total tickets').argParser(parseInteger('--tickets', required ? 1 : 0));
  if (required) {
    name.makeOptionMandatory();
    date.makeOptionMandatory();
    tickets.makeOptionMandatory();
  }
  return command
    .addOption(name)
    .addOption(date)
    .addOption(tickets)
    .option('--description <text>', 'description')
    .option('--venue <name>', 'venue name (free text)')
    .option('--venue-id <id>', 'link to a venue (its capacity limits the tickets)', parseInteger('--venue-id', 1))
    .option('--ticket-price <minor-units>', 'price per ticket in minor units (4500 = 45.00)', parseInteger('--ticket-price'))
    .option('--currency <code>', 'ISO 4217 currency code')
    .option('--timezone <zone>', 'IANA time zone for display')
    .option('--image-url <url>', 'image URL')
    .option('--sales-start <date-time>', 'sales open at (RFC 3339 date-time)', parseDateTimeOption('--sales-start'))
    .option('--sales-end <date-time>', 'sales close at (RFC 3339 date-time)', parseDateTimeOption('--sales-end'));
}

export function eventsCommand(): Command {
  const events = new Command('events').description('create, search, update and delete events');

  events
    .command('list')
    .description('search and list events, with an availability bar')
    .option('--search <text>', 'free text over name, description and venue')
    .option('--venue <name>', 'venue name (case-insensitive)')
    .option('--from <date-time>', 'events on or after (RFC 3339 date-time)', parseDateTimeOption('--from'))
    .option('--to <date-time>', 'events on or before (RFC 3339 date-time)', parseDateTimeOption('--to'))
    .option('--available', 'only events with seats left')
    .addOption(new Option('--sort <order>', 'sort order').choices(['event_date', '-event_date', 'name', '-created_at']))
    .option('--limit <n>', `events per page (1-${MAX_PAGE})`, parseInteger('--limit', 1, MAX_PAGE), 100)
    .option('--all', 'follow pagination to the last page')
    .addHelpText('after', '\nExamples:\n  eventsync events list --search jazz --available\n  eventsync events list --from 2026-01-01T00:00:00Z --sort -event_date --all --json')
    .action(async (options: { search?: string; venue?: string; from?: string; to?: string; available?: boolean; sort?: 'name'; limit: number; all?: boolean }, command: Command) => {
      const context = cliContext(command);
      const found: Event[] = [];
      let cursor: string | undefined;
      do {
        const query = {
          limit: options.limit,
          ...(options.search ? { q: options.search } : {}),
          ...(options.venue ? { venue: options.venue } : {}),
          ...(options.from ? { from: options.from } : {}),
          ...(options.to ? { to: options.to } : {}),
          ...(options.available ? { available: true } : {}),
          ...(options.sort ? { sort: options.sort } : {}),
          ...(cursor ? { cursor } : {}),
        };
        const page = expectOk(await context.events.call('listEvents', { query }));
        found.push(...page.body);
        cursor = options.all ? nextCursor(page.headers) : undefined;
      } while (cursor);
      if (context.options.json) printJson(found);
      else if (found.length === 0) process.stdout.write('no events\n');
      else printEvents(found);
    });

  events
    .command('get <id>')
    .description('show one event with its availability')
    .addHelpText('after', '\nExample:\n  eventsync events get 1')
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const event = expectOk(await context.events.call('getEvent', { path: { id: parseInteger('id', 1)(id) } })).body;
      if (context.options.json) printJson(event);
      else printEvent(event);
    });

  withEventFields(events.command('create').description('create an event'), true)
    .addHelpText('after', '\nExample:\n  eventsync events create --name "Jazz Night" --date 2027-03-20T19:30:00+01:00 --venue-id 1 --tickets 150 --ticket-price 4500 --currency EUR')
    .action(async (options: EventFields, command: Command) => {
      const context = cliContext(command);
      const event = expectOk(await context.events.call('createEvent', { body: eventBody(options) as EventCreate })).body;
      if (context.options.json) printJson(event);
      else {
        process.stdout.write(`created event ${event.id}\n`);
        printEvent(event);
      }
    });

  withEventFields(events.command('update <id>').description('change some fields of an event'), false)
    .addHelpText('after', '\nExample:\n  eventsync events update 1 --tickets 250 --ticket-price 5000')
    .action(async (id: string, options: EventFields, command: Command) => {
      const context = cliContext(command);
      const event = expectOk(await context.events.call('updateEvent', { path: { id: parseInteger('id', 1)(id) }, body: eventBody(options) })).body;
      if (context.options.json) printJson(event);
      else printEvent(event);
    });

  events
    .command('delete <id>')
    .description('delete an event (refused while it has reserved or sold seats)')
    .option('--cancel-tickets', 'first cancel its tickets through ticket-service (reason event_deleted)')
    .addHelpText('after', '\nExample:\n  eventsync events delete 1 --cancel-tickets')
    .action(async (id: string, options: { cancelTickets?: boolean }, command: Command) => {
      const context = cliContext(command);
      const eventId = parseInteger('id', 1)(id);
      let cancelled = 0;
      if (options.cancelTickets) {
        // The waiting list is closed first (its gate to 0), so these cancellations never make offers.
        expectOk(await context.tickets.call('closeWaitlist', { query: { event_id: eventId } }));
        for (const status of ['RESERVED', 'CONFIRMED'] as const) {
          for (;;) {
            const page = expectOk(await context.tickets.call('listTickets', { query: { event_id: eventId, status, limit: 1000 } }));
            if (page.body.length === 0) break;
            for (const ticket of page.body) {
              expectOk(await context.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CANCELLED', cancellation_reason: 'event_deleted' } }));
              cancelled += 1;
            }
          }
        }
      }
      expectOk(await context.events.call('deleteEvent', { path: { id: eventId } }));
      if (context.options.json) printJson({ deleted: eventId, cancelled_tickets: cancelled });
      else process.stdout.write(`deleted event ${eventId}${options.cancelTickets ? ` (cancelled ${count(cancelled, 'ticket')})` : ''}\n`);
    });
  return events;
}
