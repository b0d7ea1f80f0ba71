/**
 * `eventsync tickets …` and `eventsync events delete --cancel-tickets`, run as real processes
 * against both services; every test checks both services' state afterwards.
 */
import t from 'tap';
import { cliFor, describeRun, eventOnService, seedEvent, seedTicket, succeedsWithJson, ticketOnService, type Ticket } from './helpers/cli.js';
import { startSystem, type TestSystem } from './helpers/system.js';

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

t.test('the tickets commands against both services', async (t) => {
  const system: TestSystem = await startSystem(t);
  const cli = cliFor(system);
  const cliJson = <T>(...args: string[]): Promise<T> => succeedsWithJson<T>(cli('--json', ...args));

  t.test('tickets buy, get, confirm, cancel and delete move the ticket and the seats on both services', async (t) => {
    const event = await seedEvent(system, { name: 'Ticket Flow', total_tickets: 20, ticket_price: 2500, currency: 'USD' });

    const bought = await cli('tickets', 'buy', '--event', String(event.id), '--name', "Conan O'Brien", '--email', 'conan@example.com', '--quantity', '3');
    t.equal(bought.code, 0, describeRun(bought));
    const id = Number(/reserved ticket (\d+)/.exec(bought.stdout)?.[1]);
    t.ok(id >= 1, 'prints the new ticket id');
    t.match(bought.stdout, /3 × \$25\.00 = \$75\.00/, 'shows the price computed by the service');
    let ticket = await ticketOnService(system, id);
    t.match(ticket, { event_id: event.id, customer_name: "Conan O'Brien", customer_email: 'conan@example.com', quantity: 3, status: 'RESERVED', unit_price: 2500, total_price: 7500 });
    t.match(await eventOnService(system, event.id), { available_tickets: 17, held_tickets: 3, sold_tickets: 0 }, 'the seats are held on event-service');
    t.match(bought.stdout, `eventsync tickets confirm ${id} --reference ${ticket.reference}`, 'says how to confirm');

    t.same(await cliJson<Ticket>('tickets', 'get', String(id)), ticket, 'tickets get --json is the stored ticket');
    const shown = await cli('tickets', 'get', String(id), '--reference', ticket.reference);
    t.equal(shown.code, 0, describeRun(shown));
    t.match(shown.stdout, /status\s+RESERVED/);
    t.match(shown.stdout, /customer\s+Conan O'Brien <conan@example\.com>/);

    const confirmed = await cliJson<Ticket>('tickets', 'confirm', String(id), '--payment-reference', 'pay_8f2k1');
    t.match(confirmed, { id, status: 'CONFIRMED', payment_reference: 'pay_8f2k1' });
    ticket = await ticketOnService(system, id);
    t.match(ticket, { status: 'CONFIRMED', payment_reference: 'pay_8f2k1' });
    t.match(await eventOnService(system, event.id), { available_tickets: 17, held_tickets: 0, sold_tickets: 3 }, 'the hold is committed: the seats count as sold');

    const cancelled = await cli('tickets', 'cancel', String(id));
    t.equal(cancelled.code, 0, describeRun(cancelled));
    t.match(cancelled.stdout, /status\s+CANCELLED \(customer\)/);
    t.match(await ticketOnService(system, id), { status: 'CANCELLED', cancellation_reason: 'customer' });
    t.match(await eventOnService(system, event.id), { available_tickets: 20, held_tickets: 0, sold_tickets: 0 }, 'the seats are back');

    const second = await seedTicket(system, event.id, 2);
    t.equal((await eventOnService(system, event.id)).available_tickets, 18);
    const deleted = await cli('tickets', 'delete', String(second.id));
    t.equal(deleted.code, 0, describeRun(deleted));
    t.match(deleted.stdout, `deleted ticket ${second.id}`);
    t.equal((await system.tickets.call('getTicket', { path: { id: second.id } })).status, 404, 'the ticket is gone');
    t.match(await eventOnService(system, event.id), { available_tickets: 20, held_tickets: 0 }, 'its seats were released');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  t.test('tickets confirm --reference and cancel --reference change the ticket through its reference', async (t) => {
    const event = await seedEvent(system, { name: 'Reference Flow', total_tickets: 5 });
    const ticket = await seedTicket(system, event.id, 1);
    const confirmed = await cliJson<Ticket>('tickets', 'confirm', String(ticket.id), '--reference', ticket.reference);
    t.equal(confirmed.status, 'CONFIRMED');
    t.equal((await ticketOnService(system, ticket.id)).status, 'CONFIRMED');
    const cancelled = await cliJson<Ticket>('tickets', 'cancel', String(ticket.id), '--reference', ticket.reference);
    t.match(cancelled, { status: 'CANCELLED', cancellation_reason: 'customer' });
    t.match(await eventOnService(system, event.id), { available_tickets: 5, sold_tickets: 0 });
  });

  t.test('tickets list filters by --event and --status', async (t) => {
    const first = await seedEvent(system, { name: 'List Filter One', total_tickets: 20 });
    const second = await seedEvent(system, { name: 'List Filter Two', total_tickets: 20 });
    const reserved = await seedTicket(system, first.id, 1);
    const confirmed = await seedTicket(system, first.id, 2, 'CONFIRMED');
    const cancelled = await seedTicket(system, first.id, 1, 'CANCELLED');
    const other = await seedTicket(system, second.id, 1);

    const ids = (tickets: Ticket[]) => tickets.map((x) => x.id).sort((a, b) => a - b);
    t.same(ids(await cliJson<Ticket[]>('tickets', 'list', '--event', String(first.id))), [reserved.id, confirmed.id, cancelled.id], '--event keeps only that event');
    t.same(ids(await cliJson<Ticket[]>('tickets', 'list', '--event', String(second.id))), [other.id]);
    t.same(ids(await cliJson<Ticket[]>('tickets', 'list', '--event', String(first.id), '--status', 'RESERVED')), [reserved.id], '--status RESERVED');
    t.same(ids(await cliJson<Ticket[]>('tickets', 'list', '--event', String(first.id), '--status', 'CONFIRMED')), [confirmed.id], '--status CONFIRMED');
    t.same(ids(await cliJson<Ticket[]>('tickets', 'list', '--event', String(first.id), '--status', 'CANCELLED')), [cancelled.id], '--status CANCELLED');
    const reservedEverywhere = await cliJson<Ticket[]>('tickets', 'list', '--status', 'RESERVED', '--limit', '1', '--all');
    t.ok(reservedEverywhere.every((x) => x.status === 'RESERVED'), 'only RESERVED tickets');
    t.ok([reserved.id, other.id].every((id) => reservedEverywhere.some((x) => x.id === id)), '--limit 1 --all follows the pages to every RESERVED ticket');
    t.equal(new Set(ids(reservedEverywhere)).size, reservedEverywhere.length, 'each once');

    const table = await cli('tickets', 'list', '--event', String(first.id), '--status', 'CONFIRMED');
    t.equal(table.code, 0);
    t.match(table.stdout, /List Filter One\s*│\s*Ada Lovelace\s*│\s*2\s*│\s*\$200\.00\s*│\s*CONFIRMED/, 'the table names the event and shows the total');
    t.notMatch(table.stdout, /RESERVED|CANCELLED/);
  });

  t.test('events delete --cancel-tickets cancels the RESERVED and CONFIRMED tickets with reason event_deleted, then deletes the event', async (t) => {
    const event = await seedEvent(system, { name: 'Cancelled Festival', total_tickets: 30 });
    const reserved = await seedTicket(system, event.id, 2);
    const confirmed = await seedTicket(system, event.id, 3, 'CONFIRMED');
    t.match(await eventOnService(system, event.id), { held_tickets: 2, sold_tickets: 3 });

    const refused = await cli('events', 'delete', String(event.id));
    t.equal(refused.code, 1, `without --cancel-tickets the delete is refused: ${describeRun(refused)}`);
    t.match(refused.stderr, /HTTP 409/);
    t.match(refused.stderr, `cancel its tickets first (eventsync events delete ${event.id} --cancel-tickets)`, 'the hint is the command to run, with the event id');
    t.equal((await system.events.call('getEvent', { path: { id: event.id } })).status, 200, 'and the event stays');

    const deleted = await cli('events', 'delete', String(event.id), '--cancel-tickets');
    t.equal(deleted.code, 0, describeRun(deleted));
    t.match(deleted.stdout, `deleted event ${event.id} (cancelled 2 tickets)`);
    t.match(await ticketOnService(system, reserved.id), { status: 'CANCELLED', cancellation_reason: 'event_deleted' });
    t.match(await ticketOnService(system, confirmed.id), { status: 'CANCELLED', cancellation_reason: 'event_deleted' });
    t.equal((await system.events.call('getEvent', { path: { id: event.id } })).status, 404, 'the event is gone');
    const holds = await system.events.call('listHolds', { query: { event_id: event.id, state: 'HELD,COMMITTED' } });
    t.ok(holds.ok && holds.body.length === 0, 'no live hold is left behind');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  t.test('events delete --cancel-tickets with one ticket says "cancelled 1 ticket"', async (t) => {
    const event = await seedEvent(system, { name: 'Small Gig', total_tickets: 5 });
    await seedTicket(system, event.id, 1);
    const deleted = await cli('events', 'delete', String(event.id), '--cancel-tickets');
    t.equal(deleted.code, 0, describeRun(deleted));
    t.equal(deleted.stdout, `deleted event ${event.id} (cancelled 1 ticket)\n`);
  });
});
