/**
 * The per-event half of DESIGN.md's invariant needs no settle window: `eventsync audit` with its
 * default window (30 s) compares every seat counter with the sums of its rows at once. Both services
 * run as real processes; mismatches are made on purpose in the event database while it runs.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { cliFor, describeRun, inAnHour, seedEvent, seedTicket } from './helpers/cli.js';
import { testStores } from './helpers/postgres.js';
import { startSystem } from './helpers/system.js';

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

for (const store of await testStores()) {
  t.test(`eventsync audit at its default settle window (${store})`, async (t) => {
    // The reconciler is kept away from the hold made without a ticket: the audit must be the one to report it.
    const system = await startSystem(t, { store, env: { RECONCILE_SETTLE_SECONDS: '3600' } });
    const cli = cliFor(system);
    const event = await seedEvent(system, { name: 'Ledger Night', total_tickets: 30 });
    await seedTicket(system, event.id, 2);
    await seedTicket(system, event.id, 3, 'CONFIRMED');
    await seedTicket(system, event.id, 1, 'CANCELLED');
    for (const [operation, ticket_count] of [['reserve', 5], ['release', 2]] as const) {
      const adjusted = await system.events.call('adjustEventTickets', { path: { id: event.id }, body: { operation, ticket_count } });
      if (!adjusted.ok) throw new Error(`the ${operation} adjustment answered ${adjusted.status}`);
    }
    const corrupt = async (statement: string) => {
      if ((await system.sql('event-service', statement, event.id)) !== 1) throw new Error(`${statement} changed no row`);
    };

    t.test('reports nothing on a consistent system with holds, tickets and manual adjustments', async (t) => {
      const result = await cli('audit');
      t.equal(result.code, 0, describeRun(result));
      t.match(result.stdout, /✓ consistent: 1 event, 3 tickets/);
    });

    t.test('with no settle window, a hold without a ticket is reported even in the second it was made', async (t) => {
      // Start as a second begins, so that the hold and the audit fall in the same second: the API
      // gives whole seconds, and `…:12Z` must count as before `…:12.345Z`.
      while (Date.now() % 1000 > 100) await new Promise((resolve) => setTimeout(resolve, 5));
      const holdId = randomUUID();
      const hold = await system.events.call('createHold', { body: { hold_id: holdId, event_id: event.id, quantity: 1, expires_at: inAnHour() } });
      t.equal(hold.status, 201, 'a hold made straight on event-service, with no ticket');
      t.teardown(async () => {
        await system.events.call('releaseHold', { path: { hold_id: holdId } });
      });
      t.same(await system.audit(), [`hold ${holdId} (HELD, event ${event.id}, 1 seat) has no ticket`]);
    });

    t.test('reports a held counter that differs from its HELD holds, made a moment ago', async (t) => {
      // Still available = total − held − sold − manual: only the hold rows show it is wrong.
      await corrupt('UPDATE events SET held_tickets = held_tickets + 1, available_tickets = available_tickets - 1 WHERE id = ?');
      t.teardown(() => corrupt('UPDATE events SET held_tickets = held_tickets - 1, available_tickets = available_tickets + 1 WHERE id = ?'));
      const result = await cli('audit');
      t.equal(result.code, 1, describeRun(result));
      t.match(result.stdout, `event ${event.id}: held_tickets is 3 but its HELD holds add up to 2`);
      t.match(result.stdout, `event ${event.id}: available_tickets 21 ≠ total 30 − HELD holds 2 − COMMITTED holds 3 − manual adjustments 3 = 22`);
    });

    t.test('reports a manual adjustment row that no longer adds up to the manual counter', async (t) => {
      const last = '(SELECT max(id) FROM manual_adjustments WHERE event_id = ?)';
      await corrupt(`UPDATE manual_adjustments SET delta = delta + 1 WHERE id = ${last}`);
      t.teardown(() => corrupt(`UPDATE manual_adjustments SET delta = delta - 1 WHERE id = ${last}`));
      const result = await cli('audit');
      t.equal(result.code, 1, describeRun(result));
      t.match(result.stdout, `event ${event.id}: manual_reserved_tickets is 3 but its manual adjustments add up to 4`);
    });
  });
}
