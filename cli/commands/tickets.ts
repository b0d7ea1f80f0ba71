/** `eventsync tickets …` */
import { randomUUID } from 'node:crypto';
import { Command, Option } from 'commander';
import type { components } from '../../openapi/generated/ticket-service.js';
import { ServiceUnreachableError, nextCursor } from '../../openapi/client.js';
import { MAX_PAGE, cliContext, expectOk, parseInteger, type CliContext } from '../context.js';
import { ApiRefusal, count, money, paint, printJson, printNote, printRecord, printTable, reportError } from '../output.js';

type Ticket = components['schemas']['Ticket'];

const statusColour = (status: Ticket['status']) => paint(status === 'CONFIRMED' ? 'green' : status === 'CANCELLED' ? 'red' : 'yellow', status);

function printTicket(t: Ticket): void {
  printRecord([
    ['id', t.id],
    ['status', `${statusColour(t.status)}${t.cancellation_reason ? ` (${t.cancellation_reason})` : ''}`],
    ['event', t.event ? `${t.event.name} — ${t.event.event_date}${t.event.venue ? ` at ${t.event.venue}` : ''} (event ${t.event_id})` : `event ${t.event_id}`],
    ['customer', `${t.customer_name} <${t.customer_email}>`],
    ['quantity', t.quantity],
    ['price', `${t.quantity} × ${money(t.unit_price, t.currency)} = ${money(t.total_price, t.currency)}`],
    ['reference', t.reference],
    ['expires', t.expires_at],
    ['payment', t.payment_reference],
  ]);
}

/** The service-URL flags the command was run with, so that the printed retry reaches the same services. */
function urlFlags(command: Command): string {
  const globals = command.optsWithGlobals<{ eventUrl?: string; ticketUrl?: string }>();
  return `${globals.eventUrl ? ` --event-url ${globals.eventUrl}` : ''}${globals.ticketUrl ? ` --ticket-url ${globals.ticketUrl}` : ''}`;
}

const headers = (reference: string | undefined) => (reference ? { 'X-Ticket-Reference': reference } : undefined);

/** After this long without an answer, say what the purchase is waiting for (a hung event-service takes seconds). */
const SLOW_ANSWER_MS = 2000;

/**
 * Buys with one Idempotency-Key, retrying timeouts and 503s with the same key so that a retry never
 * buys twice. Waits and retries are told on stderr, so that stdout stays the answer alone.
 */
async function buyWithRetries(context: CliContext, body: components['schemas']['TicketCreate'], key: string, attempts: number) {
  let lastError: ApiRefusal | ServiceUnreachableError | undefined;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const slow = setTimeout(() => printNote(`waiting for ticket-service to answer (attempt ${attempt} of ${attempts})…`), SLOW_ANSWER_MS);
    try {
      const result = await context.tickets.call('createTicket', { body, headers: { 'Idempotency-Key': key } });
      // A 5xx, or the same key still in flight from an earlier attempt, is worth another try with the same key.
      const inFlight = !result.ok && result.problem.type === 'urn:eventsync:problem:idempotency-in-flight';
      if (result.ok || (result.status < 500 && !inFlight)) return result;
      lastError = new ApiRefusal(result.status, result.problem);
    } catch (error) {
      if (!(error instanceof ServiceUnreachableError)) throw error;
      lastError = error;
    } finally {
      clearTimeout(slow);
    }
    if (attempt < attempts) {
      const delayMs = 250 * 2 ** attempt;
      const why = lastError instanceof ApiRefusal ? `HTTP ${lastError.status}: ${lastError.problem.detail ?? lastError.problem.title}` : lastError?.message;
      printNote(`attempt ${attempt} of ${attempts} did not go through (${why}); trying again in ${delayMs / 1000} s with the same Idempotency-Key`);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
  throw lastError;
}

export function ticketsCommand(): Command {
  const tickets = new Command('tickets').description('reserve, confirm, cancel and list tickets');

  tickets
    .command('list')
    .description('list tickets (admin token when ADMIN_TOKEN is set)')
    .option('--event <id>', 'only this event', parseInteger('--event', 1))
    .addOption(new Option('--status <status>', 'only this status').choices(['RESERVED', 'CONFIRMED', 'CANCELLED']))
    .option('--limit <n>', `tickets per page (1-${MAX_PAGE})`, parseInteger('--limit', 1, MAX_PAGE), 100)
    .option('--all', 'follow pagination to the last page')
    .addHelpText('after', '\nExample:\n  eventsync tickets list --event 1 --status RESERVED')
    .action(async (options: { event?: number; status?: Ticket['status']; limit: number; all?: boolean }, command: Command) => {
      const context = cliContext(command);
      const found: Ticket[] = [];
      let cursor: string | undefined;
      do {
        const query = { limit: options.limit, ...(options.event ? { event_id: options.event } : {}), ...(options.status ? { status: options.status } : {}), ...(cursor ? { cursor } : {}) };
        const page = expectOk(await context.tickets.call('listTickets', { query }));
        found.push(...page.body);
        cursor = options.all ? nextCursor(page.headers) : undefined;
      } while (cursor);
      if (context.options.json) printJson(found);
      else if (found.length === 0) process.stdout.write('no tickets\n');
      else printTable(['id', 'event', 'customer', 'qty', 'total', 'status'], found.map((t) => [t.id, t.event?.name ?? t.event_id, t.customer_name, t.quantity, money(t.total_price, t.currency), statusColour(t.status)]));
    });

  tickets
    .command('get <id>')
    .description('show one ticket')
    .option('--reference <uuid>', "the ticket's reference (instead of the admin token)")
    .addHelpText('after', '\nExample:\n  eventsync tickets get 1 --reference 3f1c2a9e-8b7d-4c61-9f0a-2b5d7e8c1a44')
    .action(async (id: string, options: { reference?: string }, command: Command) => {
      const context = cliContext(command);
      const ticket = expectOk(await context.tickets.call('getTicket', { path: { id: parseInteger('id', 1)(id) }, ...(options.reference ? { headers: headers(options.reference) } : {}) })).body;
      if (context.options.json) printJson(ticket);
      else printTicket(ticket);
    });

  tickets
    .command('buy')
    .description('reserve tickets (confirm them afterwards); safe to retry with the same --idempotency-key')
    .requiredOption('--event <id>', 'event id', parseInteger('--event', 1))
    .requiredOption('--name <name>', 'customer name')
    .requiredOption('--email <email>', 'customer e-mail')
    .option('--quantity <n>', 'number of tickets', parseInteger('--quantity', 1), 1)
    .option('--idempotency-key <key>', 'key that makes a retried purchase buy once (default: a new UUID)')
    .option('--retries <n>', 'attempts on timeouts and 503', parseInteger('--retries', 1), 4)
    .addHelpText('after', '\nExample:\n  eventsync tickets buy --event 1 --name "John Doe" --email john@example.com --quantity 2')
    .action(async (options: { event: number; name: string; email: string; quantity: number; idempotencyKey?: string; retries: number }, command: Command) => {
      const context = cliContext(command);
      const key = options.idempotencyKey ?? randomUUID();
      const quoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
      const body = { event_id: options.event, customer_name: options.name, customer_email: options.email, quantity: options.quantity };
      let answer: Awaited<ReturnType<typeof buyWithRetries>>;
      try {
        answer = await buyWithRetries(context, body, key, options.retries);
      } catch (error) {
        const unavailable =
          error instanceof ServiceUnreachableError ||
          (error instanceof ApiRefusal && (error.status >= 500 || error.problem.type === 'urn:eventsync:problem:idempotency-in-flight'));
        if (!unavailable) throw error;
        process.exitCode = reportError(error);
        printNote(
          `The purchase did not go through after ${count(options.retries, 'attempt')}. It is safe to retry with the same key; it will never buy twice:\n` +
            `  eventsync tickets buy --event ${options.event} --name ${quoted(options.name)} --email ${quoted(options.email)} --quantity ${options.quantity} --idempotency-key ${key}${urlFlags(command)}`,
        );
        return;
      }
      if (!answer.ok && answer.problem.type === 'urn:eventsync:problem:sold-out') {
        process.exitCode = reportError(new ApiRefusal(answer.status, answer.problem));
        printNote(
          `Sold out. Join the waiting list: freed seats are offered to it in order, before the public:\n` +
            `  eventsync waitlist join --event ${options.event} --name ${quoted(options.name)} --email ${quoted(options.email)} --quantity ${options.quantity}${urlFlags(command)}`,
        );
        return;
      }
      const { body: ticket, headers: answerHeaders } = expectOk(answer);
      // A key of this run's own making is replayed only to a later attempt of this run: that purchase is this one.
      const replayOfEarlierPurchase = options.idempotencyKey !== undefined && answerHeaders['idempotent-replayed'] === 'true';
      if (context.options.json) printJson(ticket);
      else if (replayOfEarlierPurchase) {
        process.stdout.write(`ticket ${ticket.id} was already reserved by an earlier purchase with the same Idempotency-Key; nothing more was bought. The answer it got then:\n`);
        printTicket(ticket);
      } else {
        process.stdout.write(`reserved ticket ${ticket.id}: confirm it before ${ticket.expires_at} with\n  eventsync tickets confirm ${ticket.id} --reference ${ticket.reference}\n`);
        printTicket(ticket);
      }
    });

  const statusChange = (name: 'confirm' | 'cancel', status: 'CONFIRMED' | 'CANCELLED', description: string, example: string) => {
    const sub = tickets
      .command(`${name} <id>`)
      .description(description)
      .option('--reference <uuid>', "the ticket's reference (instead of the admin token)")
      .addHelpText('after', `\nExample:\n  ${example}`);
    if (status === 'CONFIRMED') sub.option('--payment-reference <id>', 'the payment this confirmation is for');
    sub.action(async (id: string, options: { reference?: string; paymentReference?: string }, command: Command) => {
      const context = cliContext(command);
      const body = { status, ...(options.paymentReference ? { payment_reference: options.paymentReference } : {}) };
      const ticket = expectOk(await context.tickets.call('updateTicketStatus', { path: { id: parseInteger('id', 1)(id) }, body, ...(options.reference ? { headers: headers(options.reference) } : {}) })).body;
      if (context.options.json) printJson(ticket);
      else printTicket(ticket);
    });
  };
  statusChange('confirm', 'CONFIRMED', 'confirm a reservation (paid elsewhere)', 'eventsync tickets confirm 1 --payment-reference pay_8f2k1');
  statusChange('cancel', 'CANCELLED', 'cancel a ticket; its seats return', 'eventsync tickets cancel 1');

  tickets
    .command('delete <id>')
    .description('release a ticket\'s seats and remove it (admin token when ADMIN_TOKEN is set)')
    .addHelpText('after', '\nExample:\n  eventsync tickets delete 1')
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const ticketId = parseInteger('id', 1)(id);
      expectOk(await context.tickets.call('deleteTicket', { path: { id: ticketId } }));
      if (context.options.json) printJson({ deleted: ticketId });
      else process.stdout.write(`deleted ticket ${ticketId}\n`);
    });
  return tickets;
}
