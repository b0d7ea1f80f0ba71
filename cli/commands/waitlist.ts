/** `eventsync waitlist …`: join a sold-out event's waiting list, read or leave an entry, list, offer. */
import { Command, Option } from 'commander';
import type { components } from '../../openapi/generated/ticket-service.js';
import { nextCursor } from '../../openapi/client.js';
import { MAX_PAGE, cliContext, expectOk, parseInteger } from '../context.js';
import { paint, printJson, printRecord, printTable } from '../output.js';

type Entry = components['schemas']['WaitlistEntry'];
const STATUSES: Entry['status'][] = ['WAITING', 'OFFERED', 'CONFIRMED', 'DECLINED', 'EXPIRED', 'LEFT', 'CLOSED'];

const statusColour = (status: Entry['status']) => paint(status === 'CONFIRMED' || status === 'OFFERED' ? 'green' : status === 'WAITING' ? 'yellow' : 'red', status);

function printEntry(e: Entry): void {
  printRecord([
    ['id', e.id],
    ['status', statusColour(e.status)],
    ['event', e.event_id],
    ['customer', `${e.customer_name} <${e.customer_email}>`],
    ['quantity', e.quantity],
    ['position', e.position],
    ['reference', e.reference],
    ['offer', e.offer ? `ticket ${e.offer.ticket_id} (reference ${e.offer.reference}), until ${e.offer.expires_at ?? '-'}` : null],
  ]);
}

const withReference = (reference: string | undefined) => (reference ? { headers: { 'X-Ticket-Reference': reference } } : {});

export function waitlistCommand(): Command {
  const waitlist = new Command('waitlist').description("a sold-out event's waiting list: freed seats are offered to it in order, before the public");

  waitlist
    .command('join')
    .description('join the waiting list of a sold-out event (keep the reference it prints)')
    .requiredOption('--event <id>', 'event id', parseInteger('--event', 1))
    .requiredOption('--name <name>', 'customer name')
    .requiredOption('--email <email>', 'customer e-mail')
    .option('--quantity <n>', 'number of tickets', parseInteger('--quantity', 1), 1)
    .addHelpText('after', '\nExample:\n  eventsync waitlist join --event 1 --name "Ann Lee" --email ann@example.com --quantity 2')
    .action(async (options: { event: number; name: string; email: string; quantity: number }, command: Command) => {
      const context = cliContext(command);
      const body = { event_id: options.event, customer_name: options.name, customer_email: options.email, quantity: options.quantity };
      const entry = expectOk(await context.tickets.call('joinWaitlist', { body })).body;
      if (context.options.json) printJson(entry);
      else {
        process.stdout.write(`waiting as number ${entry.position ?? '?'} for event ${entry.event_id}; see your entry with\n  eventsync waitlist get ${entry.id} --reference ${entry.reference}\n`);
        printEntry(entry);
      }
    });

  waitlist
    .command('get <id>')
    .description('show one entry (with its offer, once made)')
    .option('--reference <uuid>', "the entry's reference (instead of the admin token)")
    .addHelpText('after', '\nExample:\n  eventsync waitlist get 1 --reference 6d1e0c7a-2f4b-4b8e-9a51-3c2d1e0f9a87')
    .action(async (id: string, options: { reference?: string }, command: Command) => {
      const context = cliContext(command);
      const entry = expectOk(await context.tickets.call('getWaitlistEntry', { path: { entry_id: parseInteger('id', 1)(id) }, ...withReference(options.reference) })).body;
      if (context.options.json) printJson(entry);
      else printEntry(entry);
    });

  waitlist
    .command('leave <id>')
    .description('leave the waiting list (an offer not yet confirmed is cancelled)')
    .option('--reference <uuid>', "the entry's reference (instead of the admin token)")
    .addHelpText('after', '\nExample:\n  eventsync waitlist leave 1 --reference 6d1e0c7a-2f4b-4b8e-9a51-3c2d1e0f9a87')
    .action(async (id: string, options: { reference?: string }, command: Command) => {
      const context = cliContext(command);
      const entry = expectOk(await context.tickets.call('leaveWaitlist', { path: { entry_id: parseInteger('id', 1)(id) }, ...withReference(options.reference) })).body;
      if (context.options.json) printJson(entry);
      else printEntry(entry);
    });

  waitlist
    .command('list')
    .description('list entries in line order (admin token when ADMIN_TOKEN is set)')
    .option('--event <id>', 'only this event', parseInteger('--event', 1))
    .addOption(new Option('--status <status>', 'only this status').choices(STATUSES))
    .option('--limit <n>', `entries per page (1-${MAX_PAGE})`, parseInteger('--limit', 1, MAX_PAGE), 100)
    .option('--all', 'follow pagination to the last page')
    .addHelpText('after', '\nExample:\n  eventsync waitlist list --event 1 --status WAITING')
    .action(async (options: { event?: number; status?: Entry['status']; limit: number; all?: boolean }, command: Command) => {
      const context = cliContext(command);
      const found: Entry[] = [];
      let cursor: string | undefined;
      do {
        const query = { limit: options.limit, ...(options.event ? { event_id: options.event } : {}), ...(options.status ? { status: options.status } : {}), ...(cursor ? { cursor } : {}) };
        const page = expectOk(await context.tickets.call('listWaitlist', { query }));
        found.push(...page.body);
        cursor = options.all ? nextCursor(page.headers) : undefined;
      } while (cursor);
      if (context.options.json) printJson(found);
      else if (found.length === 0) process.stdout.write('no entries\n');
      else printTable(['id', 'event', 'customer', 'qty', 'position', 'status'], found.map((e) => [e.id, e.event_id, e.customer_name, e.quantity, e.position ?? '', statusColour(e.status)]));
    });

  waitlist
    .command('offer <id>')
    .description('offer the seats to this entry now, out of order, if they are free (admin)')
    .addHelpText('after', '\nExample:\n  eventsync waitlist offer 3')
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const entry = expectOk(await context.tickets.call('offerWaitlistEntry', { path: { entry_id: parseInteger('id', 1)(id) } })).body;
      if (context.options.json) printJson(entry);
      else printEntry(entry);
    });

  return waitlist;
}
