/**
 * `eventsync tickets buy` sends an Idempotency-Key, retries timeouts and 503s with that key, and when
 * it gives up prints the exact command that retries safely: run as real processes against both
 * services, with services stopped and restarted for real.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { components as TicketComponents } from '../openapi/generated/ticket-service.js';
import { cliFor, closedPortUrl, describeRun, eventOnService, parseJsonOutput, runCli, runShell, seedEvent, startScriptedProxy, type CliResult, type ScriptedAnswer, type Ticket } from './helpers/cli.js';
import { eventually, startSystem, type TestSystem } from './helpers/system.js';

// Each CLI run is a fresh node process and services are restarted; on a loaded machine this needs more than tap's default.
t.setTimeout(600_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The `eventsync tickets buy … --idempotency-key …` line that a failed purchase prints on stderr. */
function retryCommand(result: CliResult): string | undefined {
  return /^\s*(eventsync tickets buy .*--idempotency-key \S+.*)$/m.exec(result.stderr)?.[1];
}

/** The ticket id a run that bought prints ("reserved ticket 7: …"). */
const newTicketId = (result: CliResult): number | undefined => Number(/^reserved ticket (\d+):/m.exec(result.stdout)?.[1]) || undefined;

/** The ticket id a run replayed from an earlier purchase with the same key prints, saying nothing more was bought. */
const replayedTicketId = (result: CliResult): number | undefined =>
  Number(/^ticket (\d+) was already reserved by an earlier purchase with the same Idempotency-Key; nothing more was bought\./m.exec(result.stdout)?.[1]) || undefined;

/** What ticket-service answers when the hold call to event-service timed out. */
const holdTimedOut: ScriptedAnswer = {
  status: 503,
  body: { type: 'urn:eventsync:problem:unavailable', title: 'Service unavailable', status: 503, detail: 'event-service did not answer in time; retry with the same Idempotency-Key.' },
};

t.test('tickets buy and its retries against both services', async (t) => {
  // A hold call to a frozen event-service waits up to 300 s (the most allowed): longer than any freeze below can last.
  const system: TestSystem = await startSystem(t, { env: { EVENT_SERVICE_TIMEOUT_SECONDS: '300' } });
  const cli = cliFor(system);
  const env = { EVENTSYNC_EVENT_URL: system.event.url, EVENTSYNC_TICKET_URL: system.ticket.url };

  const ticketsOf = async (eventId: number): Promise<Ticket[]> => {
    const result = await system.tickets.call('listTickets', { query: { event_id: eventId } });
    if (!result.ok) throw new Error(`GET /tickets answered ${result.status}`);
    return result.body;
  };

  t.test('tickets buy run twice with the same --idempotency-key holds the seats once and prints the same ticket both times', async (t) => {
    const event = await seedEvent(system, { name: 'Idempotent Gig', total_tickets: 10 });
    const key = randomUUID();
    const args = ['--json', 'tickets', 'buy', '--event', String(event.id), '--name', 'Ada Lovelace', '--email', 'ada@example.com', '--quantity', '2', '--idempotency-key', key];
    const first = await cli(...args);
    t.equal(first.code, 0, describeRun(first));
    const second = await cli(...args);
    t.equal(second.code, 0, describeRun(second));
    const a = parseJsonOutput<Ticket>(first);
    const b = parseJsonOutput<Ticket>(second);
    t.equal(b.id, a.id, 'both runs print the same ticket id');
    t.same(b, a, 'the second run prints the first answer, replayed');
    t.match(await eventOnService(system, event.id), { available_tickets: 8, held_tickets: 2 }, 'the seats are held once');
    t.same((await ticketsOf(event.id)).map((x) => x.id), [a.id], 'one ticket exists');

    const forPeople = await cli(...args.slice(1));
    t.equal(forPeople.code, 0, describeRun(forPeople));
    t.equal(replayedTicketId(forPeople), a.id, `for people, a third run says the ticket was bought earlier with this key and nothing more was bought: ${forPeople.stdout}`);
    t.notMatch(forPeople.stdout, /^reserved ticket/m, 'and does not print it as a new purchase');

    const otherBody = await cli('tickets', 'buy', '--event', String(event.id), '--name', 'Ada Lovelace', '--email', 'ada@example.com', '--quantity', '3', '--idempotency-key', key);
    t.equal(otherBody.code, 1, `the same key for another purchase is refused: ${describeRun(otherBody)}`);
    t.match(otherBody.stderr, /HTTP 422/);
    t.equal((await eventOnService(system, event.id)).available_tickets, 8, 'and buys nothing');
  });

  t.test('tickets buy against a stopped ticket-service gives up after --retries attempts with exit 3, printing the key and the command that retries; that command buys exactly once when the service is back', async (t) => {
    const event = await seedEvent(system, { name: 'Retry Gig', total_tickets: 10 });
    await system.stop('ticket-service');
    let failed: CliResult;
    try {
      failed = await runCli(['tickets', 'buy', '--event', String(event.id), '--name', "Grace O'Hopper", '--email', 'grace@example.com', '--quantity', '2', '--retries', '2'], { env });
    } finally {
      await system.restart('ticket-service');
    }
    t.equal(failed.code, 3, describeRun(failed));
    t.equal(failed.stdout, '');
    t.match(failed.stderr, /after 2 attempts/, 'says it tried twice');
    t.match(failed.stderr, /ticket-service is unreachable/);
    t.match(failed.stderr, /^attempt 1 of 2 did not go through \(ticket-service is unreachable: connection refused\); trying again in 0\.5 s with the same Idempotency-Key$/m, 'says on stderr which attempt failed, why, and when the next one comes');
    t.match(failed.stderr, /^error: ticket-service is unreachable/m, 'the error is printed as every error is');
    const command = retryCommand(failed);
    t.ok(command, `prints a command to retry with: ${failed.stderr}`);
    if (!command) return;
    const key = /--idempotency-key (\S+)/.exec(command)?.[1] ?? '';
    t.match(key, UUID, 'the key is a new UUID');
    t.match(failed.stderr.replace(command, ''), /safe to retry with the same key/);
    t.equal((await eventOnService(system, event.id)).available_tickets, 10, 'nothing was held while ticket-service was down');

    const retried = await runShell(command, { env });
    t.equal(retried.code, 0, `the printed command, run as printed, buys: ${describeRun(retried)}`);
    const id = newTicketId(retried);
    t.ok(id, `the first run says it reserved a ticket: ${retried.stdout}`);
    const again = await runShell(command, { env });
    t.equal(again.code, 0, describeRun(again));
    t.equal(replayedTicketId(again), id, `running it again names the same ticket and says it was bought before: ${again.stdout}`);
    const tickets = await ticketsOf(event.id);
    t.equal(tickets.length, 1, 'exactly one ticket');
    t.match(tickets[0], { id, customer_name: "Grace O'Hopper", quantity: 2, status: 'RESERVED' }, 'with the name quoted correctly through the shell');
    t.match(await eventOnService(system, event.id), { available_tickets: 8, held_tickets: 2 }, 'the seats are held once');
  });

  t.test('the retry command printed after --event-url/--ticket-url flags reaches the same services', async (t) => {
    const event = await seedEvent(system, { name: 'Flagged Retry Gig', total_tickets: 10 });
    await system.stop('ticket-service');
    let failed: CliResult;
    try {
      failed = await cli('tickets', 'buy', '--event', String(event.id), '--name', 'Flag User', '--email', 'flag@example.com', '--retries', '1');
    } finally {
      await system.restart('ticket-service');
    }
    t.equal(failed.code, 3, describeRun(failed));
    const command = retryCommand(failed);
    t.ok(command, 'prints a command to retry with');
    if (!command) return;
    t.match(command, `--ticket-url ${system.ticket.url}`, 'the command names the ticket-service it was run against');
    // The variables point nowhere, so only URLs carried in the printed command can reach the services.
    const nowhere = await closedPortUrl();
    const retried = await runShell(command, { env: { EVENTSYNC_EVENT_URL: nowhere, EVENTSYNC_TICKET_URL: nowhere } });
    t.equal(retried.code, 0, `the printed command buys: ${describeRun(retried)}`);
    t.equal((await ticketsOf(event.id)).length, retried.code === 0 ? 1 : 0, 'at most one ticket');
  });

  t.test('a 503 from ticket-service (event-service stopped) is retried with the same key, ends in exit 3 with the retry command, and that command buys once when event-service is back', async (t) => {
    const event = await seedEvent(system, { name: 'Dependency Gig', total_tickets: 10 });
    await system.stop('event-service');
    let failed: CliResult;
    try {
      failed = await runCli(['tickets', 'buy', '--event', String(event.id), '--name', 'Alan Turing', '--email', 'alan@example.com', '--quantity', '3', '--retries', '2'], { env });
    } finally {
      await system.restart('event-service');
    }
    t.equal(failed.code, 3, describeRun(failed));
    t.match(failed.stderr, /HTTP 503/, 'shows the service unavailable problem');
    t.match(failed.stderr, /after 2 attempts/);
    const command = retryCommand(failed);
    t.ok(command, 'prints a command to retry with');
    if (!command) return;
    const retried = await runShell(command, { env });
    t.equal(retried.code, 0, describeRun(retried));
    const again = await runShell(command, { env });
    t.equal(again.code, 0, describeRun(again));
    t.ok(newTicketId(retried), `the first run reserved a ticket: ${retried.stdout}`);
    t.equal(replayedTicketId(again), newTicketId(retried), 'the second names the same ticket, bought before');
    t.equal((await ticketsOf(event.id)).length, 1, 'exactly one ticket');
    t.match(await eventOnService(system, event.id), { available_tickets: 7, held_tickets: 3 }, 'the seats are held once');
    t.ok(await eventually(async () => (await system.audit()).length === 0, 20_000), `the invariant holds: ${(await system.audit()).join('; ')}`);
  });

  t.test('a purchase whose key is still in flight is retried like a 503 and, when it gives up, prints the command that retries', async (t) => {
    const event = await seedEvent(system, { name: 'In Flight Gig', total_tickets: 10 });
    const key = randomUUID();
    const body = { event_id: event.id, customer_name: 'Ada Lovelace', customer_email: 'ada@example.com', quantity: 1 };
    const args = ['tickets', 'buy', '--event', String(event.id), '--name', body.customer_name, '--email', body.customer_email, '--idempotency-key', key];
    // A frozen event-service keeps an earlier attempt with the same key waiting for its hold (15 s).
    const frozen = system.event.process;
    frozen.kill('SIGSTOP');
    let second: CliResult;
    let earlierStatus: number;
    try {
      const earlier = system.tickets.call('createTicket', { body, headers: { 'Idempotency-Key': key } }, { timeoutMs: 330_000 });
      const inFlight = async () => {
        const probe = await system.tickets.call('createTicket', { body, headers: { 'Idempotency-Key': key } });
        return !probe.ok && probe.problem.type === 'urn:eventsync:problem:idempotency-in-flight';
      };
      await new Promise((resolve) => setTimeout(resolve, 500));
      t.ok(await eventually(inFlight, 10_000), 'the earlier attempt holds the key');
      second = await cli(...args, '--retries', '3');
      frozen.kill('SIGCONT');
      earlierStatus = (await earlier).status;
    } finally {
      frozen.kill('SIGCONT');
    }
    t.equal(earlierStatus, 201, 'the earlier attempt buys once event-service thaws');
    t.not(second.code, 0, describeRun(second));
    t.equal(second.code, 3, 'the run that only met an attempt in flight is not told it was refused');
    t.match(second.stderr, `--idempotency-key ${key}`, 'and gets the command to retry');

    const retried = await cli(...args);
    t.equal(retried.code, 0, `retrying with the key buys: ${describeRun(retried)}`);
    t.equal((await ticketsOf(event.id)).length, 1, 'exactly one ticket');
    t.equal((await eventOnService(system, event.id)).available_tickets, 9, 'one seat is held');
    t.ok(await eventually(async () => (await system.audit()).length === 0, 30_000), `the invariant holds: ${(await system.audit()).join('; ')}`);
  });

  t.test('tickets buy says on stderr what it is waiting for and which attempt it is on, and with --json stdout is still only the ticket', async (t) => {
    const event = await seedEvent(system, { name: 'Patient Gig', total_tickets: 10 });
    let sayWaitingSeen = () => {};
    const waitingSeen = new Promise<void>((resolve) => (sayWaitingSeen = resolve));
    // The first call is answered (503) only once the command has said that it is waiting for it.
    const proxy = await startScriptedProxy(t, system.ticket.url, async (n) => {
      if (n > 1) return undefined;
      await waitingSeen;
      return holdTimedOut;
    });
    let stderr = '';
    const result = await runCli(['--json', '--event-url', system.event.url, '--ticket-url', proxy.url, 'tickets', 'buy', '--event', String(event.id), '--name', 'Ada Lovelace', '--email', 'ada@example.com'], {
      onStderr: (text) => {
        stderr += text;
        if (stderr.includes('waiting for')) sayWaitingSeen();
      },
    });
    t.equal(result.code, 0, describeRun(result));
    t.match(parseJsonOutput<Ticket>(result), { event_id: event.id, status: 'RESERVED' }, 'stdout is exactly the ticket, one JSON document');
    t.match(result.stderr, /^waiting for ticket-service to answer \(attempt 1 of 4\)…$/m, 'says what it is waiting for, and the attempt');
    t.match(result.stderr, /^attempt 1 of 4 did not go through \(.+\); trying again in 0\.5 s with the same Idempotency-Key$/m, 'says the attempt did not go through and when the next comes');
    t.equal(proxy.calls(), 2, 'the second attempt bought');
    t.equal((await ticketsOf(event.id)).length, 1, 'one ticket');
  });

  t.test('when the answer to a purchase is lost and the retry gets it replayed, tickets buy without --idempotency-key prints it as its own new purchase', async (t) => {
    const event = await seedEvent(system, { name: 'Lost Answer Gig', total_tickets: 10 });
    // The first call buys, but its answer does not come back.
    const proxy = await startScriptedProxy(t, system.ticket.url, async (n, call) => {
      if (n > 1) return undefined;
      const key = call.headers['idempotency-key'] ?? '';
      const bought = await system.tickets.call('createTicket', { body: JSON.parse(call.body) as TicketComponents['schemas']['TicketCreate'], headers: { 'Idempotency-Key': key } });
      if (!bought.ok) throw new Error(`the purchase behind the lost answer failed: ${bought.status}`);
      return holdTimedOut;
    });
    const result = await runCli(['--event-url', system.event.url, '--ticket-url', proxy.url, 'tickets', 'buy', '--event', String(event.id), '--name', 'Ada Lovelace', '--email', 'ada@example.com']);
    t.equal(result.code, 0, describeRun(result));
    const [ticket] = await ticketsOf(event.id);
    t.equal(newTicketId(result), ticket?.id, 'it says it reserved the ticket (its own first attempt bought it)');
    t.equal((await ticketsOf(event.id)).length, 1, 'one ticket');
  });
});
