/**
 * `eventsync` exit codes, each provoked for real: 0 success (and --help, --version), 1 refused by
 * the API, 2 usage error, 3 a service unreachable.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../openapi/spec.js';
import { cliFor, closedPortUrl, describeRun, eventOnService, runCli, seedEvent, seedTicket } from './helpers/cli.js';
import { startSystem, type TestSystem } from './helpers/system.js';

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

t.test('--help and --version exit 0 on the root command and on a subcommand', async (t) => {
  const [rootHelp, rootVersion, buyHelp, buyVersion, listHelp] = await Promise.all([
    runCli(['--help']),
    runCli(['--version']),
    runCli(['tickets', 'buy', '--help']),
    runCli(['tickets', 'buy', '--version']),
    runCli(['events', 'list', '--help']),
  ]);
  t.equal(rootHelp.code, 0, describeRun(rootHelp));
  t.match(rootHelp.stdout, /Usage: eventsync/);
  t.match(rootHelp.stdout, /Exit codes: 0 success, 1 .*, 2 usage error, 3 /, 'the root help explains the exit codes');
  t.match(rootHelp.stdout, /Examples:\n\s+eventsync /);
  t.equal(rootVersion.code, 0, describeRun(rootVersion));
  t.equal(rootVersion.stdout.trim(), version, 'prints the package version');
  t.equal(buyHelp.code, 0, describeRun(buyHelp));
  t.match(buyHelp.stdout, /Usage: eventsync tickets buy/);
  t.match(buyHelp.stdout, /--idempotency-key <key>/);
  t.match(buyHelp.stdout, /Example:\n\s+eventsync tickets buy --event 1 --name "John Doe" --email john@example.com --quantity 2/, 'shows an example');
  t.equal(buyVersion.code, 0, describeRun(buyVersion));
  t.equal(buyVersion.stdout.trim(), version);
  t.equal(listHelp.code, 0, describeRun(listHelp));
  t.match(listHelp.stdout, /Examples?:\n\s+eventsync events list /);
});

t.test('usage errors exit 2 and say what is wrong: a bad flag value, an unknown option, a missing required option, a bad choice', async (t) => {
  const [badLimit, unknown, missing, badChoice, unknownCommand] = await Promise.all([
    runCli(['events', 'list', '--limit', 'abc']),
    runCli(['events', 'list', '--bogus']),
    runCli(['tickets', 'buy', '--event', '1']),
    runCli(['events', 'list', '--sort', 'price']),
    runCli(['evnets', 'list']),
  ]);
  t.equal(badLimit.code, 2, describeRun(badLimit));
  t.match(badLimit.stderr, /--limit/);
  t.match(badLimit.stderr, /abc/);
  t.equal(unknown.code, 2, describeRun(unknown));
  t.match(unknown.stderr, /unknown option '--bogus'/);
  t.equal(missing.code, 2, describeRun(missing));
  t.match(missing.stderr, /--name/);
  t.equal(badChoice.code, 2, describeRun(badChoice));
  t.match(badChoice.stderr, /event_date/, 'lists the allowed choices');
  t.equal(unknownCommand.code, 2, describeRun(unknownCommand));
  t.match(unknownCommand.stderr, /unknown command 'evnets'/);
  for (const result of [badLimit, unknown, missing, badChoice, unknownCommand]) t.equal(result.stdout, '', 'nothing on stdout');
});

t.test('usage errors found after parsing (a bad id argument, a bad service URL) exit 2 and say what is wrong on stderr', async (t) => {
  const [badId, badUrl] = await Promise.all([runCli(['venues', 'get', 'abc']), runCli(['--event-url', 'ftp://example.com', 'events', 'list'])]);
  t.equal(badId.code, 2, describeRun(badId));
  t.match(badId.stderr, /id must be a whole number/, 'says the id is wrong');
  t.equal(badUrl.code, 2, describeRun(badUrl));
  t.match(badUrl.stderr, /eventUrl|event-url/, 'says the URL is wrong');
});

t.test('a date without a time, or no date at all, is a usage error: exit 2 and one line showing the form expected, before any call', async (t) => {
  // The service URLs point nowhere: a usage error must not need them.
  const nowhere = await closedPortUrl();
  const urls = ['--event-url', nowhere, '--ticket-url', nowhere];
  const [dateOnly, garbled, impossible, salesStart, from] = await Promise.all([
    runCli([...urls, 'events', 'create', '--name', 'Jazz Night', '--date', '2027-03-20', '--tickets', '10']),
    runCli([...urls, 'events', 'create', '--name', 'Jazz Night', '--date', 'next friday', '--tickets', '10']),
    runCli([...urls, 'events', 'update', '1', '--date', '2027-02-30T19:30:00']),
    runCli([...urls, 'events', 'update', '1', '--sales-start', '2027-03-01']),
    runCli([...urls, 'events', 'list', '--from', '2026-01-01']),
  ]);
  for (const result of [dateOnly, garbled, impossible, salesStart, from]) {
    t.equal(result.code, 2, describeRun(result));
    t.equal(result.stdout, '', 'nothing on stdout');
    t.equal(result.stderr.trimEnd().split('\n').length, 1, `one line: ${result.stderr}`);
    t.match(result.stderr.trimEnd(), /^error: .*T19:30:00\+01:00, or .*T19:30:00 for UTC\.$/, 'shows the form expected');
  }
  t.match(dateOnly.stderr, "--date needs a time as well as a date: for example 2027-03-20T19:30:00+01:00, or 2027-03-20T19:30:00 for UTC.", 'a date alone is refused, with the date completed as an example');
  t.match(garbled.stderr, '--date must be an RFC 3339 date-time');
  t.match(impossible.stderr, '--date must be an RFC 3339 date-time', 'February 30th is not a date');
  t.match(salesStart.stderr, '--sales-start needs a time as well as a date');
  t.match(from.stderr, '--from needs a time as well as a date');
});

t.test('a --limit above 1000, the most a page holds, is a usage error (exit 2) for every list', async (t) => {
  const nowhere = await closedPortUrl();
  const urls = ['--event-url', nowhere, '--ticket-url', nowhere];
  const results = await Promise.all([
    runCli([...urls, 'events', 'list', '--limit', '1001']),
    runCli([...urls, 'tickets', 'list', '--limit', '5000']),
    runCli([...urls, 'venues', 'list', '--limit', '1001']),
  ]);
  for (const result of results) {
    t.equal(result.code, 2, describeRun(result));
    t.match(result.stderr, /^error: option '--limit <n>' argument '\d+' is invalid\. --limit must be a whole number from 1 to 1000$/m);
    t.equal(result.stderr.trimEnd().split('\n').length, 1, 'one line');
  }
});

t.test('every error starts with "error: ": a usage error, one found inside a command, an unreachable service', async (t) => {
  const nowhere = await closedPortUrl();
  const results = await Promise.all([runCli(['events', 'list', '--bogus']), runCli(['venues', 'get', 'abc']), runCli(['--event-url', nowhere, 'events', 'list'])]);
  for (const result of results) t.match(result.stderr, /^error: \S/, describeRun(result));
});

t.test('a service that is not running gives exit 3 and says which one and how to start it', async (t) => {
  const nowhere = await closedPortUrl();
  const [events, tickets] = await Promise.all([
    runCli(['--event-url', nowhere, 'events', 'list']),
    runCli(['--ticket-url', nowhere, 'tickets', 'get', '1']),
  ]);
  t.equal(events.code, 3, describeRun(events));
  t.match(events.stderr, /event-service is unreachable: connection refused/);
  t.match(events.stderr, /eventsync up/, 'says how to start the services');
  t.equal(events.stdout, '');
  t.equal(tickets.code, 3, describeRun(tickets));
  t.match(tickets.stderr, /ticket-service is unreachable/);
});

t.test('the API refusing a request exits 1', async (t) => {
  const system: TestSystem = await startSystem(t);
  const cli = cliFor(system);

  t.test('buying the last seat a second time exits 1 with the sold-out problem on stderr, and nothing is bought', async (t) => {
    const event = await seedEvent(system, { name: 'One Seat', total_tickets: 1 });
    await seedTicket(system, event.id, 1);
    const refused = await cli('tickets', 'buy', '--event', String(event.id), '--name', 'Late Comer', '--email', 'late@example.com', '--quantity', '1');
    t.equal(refused.code, 1, describeRun(refused));
    t.equal(refused.stdout, '');
    // The same refusal straight from the API, to compare the problem's words.
    const direct = await system.tickets.call('createTicket', { body: { event_id: event.id, customer_name: 'Late Comer', customer_email: 'late@example.com', quantity: 1 } });
    t.equal(direct.status, 409);
    if (!direct.ok) {
      t.equal(direct.problem.type, 'urn:eventsync:problem:sold-out');
      t.match(refused.stderr, direct.problem.title, 'the problem title');
      t.match(refused.stderr, direct.problem.detail ?? '', 'the problem detail');
    }
    t.match(refused.stderr, /HTTP 409/);
    t.notMatch(refused.stderr, /idempotency-key/, 'a refusal is final: no retry command is offered');
    t.match(await eventOnService(system, event.id), { available_tickets: 0, held_tickets: 1 }, 'the one seat stays with the first buyer');
    const tickets = await system.tickets.call('listTickets', { query: { event_id: event.id } });
    t.ok(tickets.ok && tickets.body.length === 1, 'no second ticket exists');
  });

  t.test('a refused purchase counts seats in words that agree: "1 seat left; 2 were asked for", "0 seats left; 1 was asked for"', async (t) => {
    const event = await seedEvent(system, { name: 'Last Seat', total_tickets: 1 });
    const buy = (quantity: number) => cli('tickets', 'buy', '--event', String(event.id), '--name', 'Ada Lovelace', '--email', 'ada@example.com', '--quantity', String(quantity));
    const tooMany = await buy(2);
    t.equal(tooMany.code, 1, describeRun(tooMany));
    t.match(tooMany.stderr, `Event ${event.id} has 1 seat left; 2 were asked for.`);
    t.equal((await buy(1)).code, 0, 'the last seat is bought');
    const soldOut = await buy(1);
    t.equal(soldOut.code, 1, describeRun(soldOut));
    t.match(soldOut.stderr, `Event ${event.id} has 0 seats left; 1 was asked for.`);
  });

  t.test('an illegal status change exits 1 and lists the allowed transitions', async (t) => {
    const event = await seedEvent(system, { name: 'Transitions', total_tickets: 5 });
    const ticket = await seedTicket(system, event.id, 1, 'CANCELLED');
    const refused = await cli('tickets', 'confirm', String(ticket.id));
    t.equal(refused.code, 1, describeRun(refused));
    t.match(refused.stderr, /HTTP 409/);
    t.match(refused.stderr, /allowed transitions: none/);
  });

  t.test('a missing event exits 1 with 404', async (t) => {
    const missing = await cli('events', 'get', '424242');
    t.equal(missing.code, 1, describeRun(missing));
    t.match(missing.stderr, /HTTP 404/);
  });
});
