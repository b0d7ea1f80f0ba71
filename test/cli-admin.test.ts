/**
 * `eventsync` against services with ADMIN_TOKEN set: the admin token from --admin-token or
 * EVENTSYNC_ADMIN_TOKEN, or a ticket's --reference, is what opens the protected operations.
 */
import t from 'tap';
import { eventServiceClient } from '../openapi/client.js';
import { cliFor, describeRun, eventOnService, parseJsonOutput, runCli, seedEvent, seedTicket, ticketOnService, type Event, type Ticket } from './helpers/cli.js';
import { ADMIN_TOKEN, startSystem, type TestSystem } from './helpers/system.js';

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

t.test('eventsync against services that have an admin token', async (t) => {
  const system: TestSystem = await startSystem(t, { env: { ADMIN_TOKEN }, ticketToken: ADMIN_TOKEN });
  const admin = { events: eventServiceClient({ baseUrl: system.event.url, token: ADMIN_TOKEN }) };
  t.teardown(() => admin.events.close());
  const cli = cliFor(system);
  const asAdmin = (...args: string[]) => cli('--admin-token', ADMIN_TOKEN, ...args);

  t.test('event writes and the ticket list need the admin token, given by --admin-token or EVENTSYNC_ADMIN_TOKEN', async (t) => {
    const create = ['events', 'create', '--name', 'Guarded Gala', '--date', '2027-05-05T19:00:00Z', '--tickets', '10', '--json'];
    const anonymous = await cli(...create);
    t.equal(anonymous.code, 1, describeRun(anonymous));
    t.match(anonymous.stderr, /HTTP 401/);
    const wrong = await cli('--admin-token', 'not-the-token', ...create);
    t.equal(wrong.code, 1, describeRun(wrong));
    t.notMatch(wrong.stderr, /not-the-token/, 'the token given is not echoed');

    const created = await asAdmin(...create);
    t.equal(created.code, 0, describeRun(created));
    const event = parseJsonOutput<Event>(created);
    t.equal((await eventOnService(system, event.id)).name, 'Guarded Gala');
    await seedTicket(system, event.id, 1);

    const listAnonymous = await cli('tickets', 'list');
    t.equal(listAnonymous.code, 1, describeRun(listAnonymous));
    t.match(listAnonymous.stderr, /HTTP 401/);
    const listFromEnv = await runCli(['--event-url', system.event.url, '--ticket-url', system.ticket.url, '--json', 'tickets', 'list', '--event', String(event.id)], { env: { EVENTSYNC_ADMIN_TOKEN: ADMIN_TOKEN } });
    t.equal(listFromEnv.code, 0, describeRun(listFromEnv));
    t.equal(parseJsonOutput<Ticket[]>(listFromEnv).length, 1, 'EVENTSYNC_ADMIN_TOKEN opens the list');
  });

  t.test("tickets get and cancel work without the admin token when given the ticket's --reference; confirming (paid) needs the admin token", async (t) => {
    const event = await seedEvent(admin, { name: 'Reference Gala', total_tickets: 5 });
    const ticket = await seedTicket(system, event.id, 2);
    const refused = await cli('tickets', 'get', String(ticket.id));
    t.equal(refused.code, 1, `neither token nor reference: ${describeRun(refused)}`);
    t.match(refused.stderr, /HTTP 401/);
    const shown = await cli('--json', 'tickets', 'get', String(ticket.id), '--reference', ticket.reference);
    t.equal(shown.code, 0, describeRun(shown));
    t.equal(parseJsonOutput<Ticket>(shown).id, ticket.id);
    const selfPaid = await cli('tickets', 'confirm', String(ticket.id), '--reference', ticket.reference, '--payment-reference', 'pay_ref_1');
    t.equal(selfPaid.code, 1, `a confirm with only the reference is refused: ${describeRun(selfPaid)}`);
    t.match(selfPaid.stderr, /needs the admin token or PAYMENT_TOKEN.*HTTP 403/);
    t.match(await ticketOnService(system, ticket.id), { status: 'RESERVED', payment_reference: null });
    const confirmed = await asAdmin('tickets', 'confirm', String(ticket.id), '--payment-reference', 'pay_ref_1');
    t.equal(confirmed.code, 0, describeRun(confirmed));
    t.match(await ticketOnService(system, ticket.id), { status: 'CONFIRMED', payment_reference: 'pay_ref_1' });
    const other = await seedTicket(system, event.id, 1);
    const cancelled = await cli('tickets', 'cancel', String(other.id), '--reference', other.reference);
    t.equal(cancelled.code, 0, `the reference cancels: ${describeRun(cancelled)}`);
    t.match(await ticketOnService(system, other.id), { status: 'CANCELLED', cancellation_reason: 'customer' });
  });

  t.test('events delete --cancel-tickets with the admin token cancels the tickets with reason event_deleted and deletes the event', async (t) => {
    const event = await seedEvent(admin, { name: 'Doomed Gala', total_tickets: 10 });
    const reserved = await seedTicket(system, event.id, 1);
    const confirmed = await seedTicket(system, event.id, 2, 'CONFIRMED');
    const deleted = await asAdmin('events', 'delete', String(event.id), '--cancel-tickets', '--json');
    t.equal(deleted.code, 0, describeRun(deleted));
    t.same(parseJsonOutput<unknown>(deleted), { deleted: event.id, cancelled_tickets: 2 });
    t.match(await ticketOnService(system, reserved.id), { status: 'CANCELLED', cancellation_reason: 'event_deleted' });
    t.match(await ticketOnService(system, confirmed.id), { status: 'CANCELLED', cancellation_reason: 'event_deleted' });
    t.equal((await system.events.call('getEvent', { path: { id: event.id } })).status, 404);
  });

  t.test('audit reads the holds with the admin token and exits 0; without it, it exits 1 with the refusal on stderr', async (t) => {
    const withToken = await asAdmin('audit', '--settle', '0');
    t.equal(withToken.code, 0, describeRun(withToken));
    t.match(withToken.stdout, /✓ consistent/);
    const without = await cli('audit', '--settle', '0');
    t.not(without.code, 0, describeRun(without));
    t.match(without.stderr, /HTTP 401/, 'says the services refused it');
    t.equal(without.code, 1, 'a 4xx is exit 1, as the README says, not 3 (unreachable or 5xx)');
    t.match(without.stderr, /admin token/, "and passes on the service's explanation");
  });
});
