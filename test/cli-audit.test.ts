/**
 * `eventsync audit` checks DESIGN.md's invariant across both services from outside: exit 0 when
 * consistent, exit 1 with each discrepancy printed when not.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { cliFor, describeRun, inAnHour, parseJsonOutput, seedEvent, seedTicket } from './helpers/cli.js';
import { startSystem, type TestSystem } from './helpers/system.js';
import type { AuditReport } from '../platform/audit.js';

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(600_000);

t.test('eventsync audit against both services', async (t) => {
  // A long settle window, so that the reconciler leaves an orphan hold for the audit to find.
  const system: TestSystem = await startSystem(t, { env: { RECONCILE_SETTLE_SECONDS: '3600' } });
  const cli = cliFor(system);

  const event = await seedEvent(system, { name: 'Audited Show', total_tickets: 20 });
  await seedTicket(system, event.id, 2);
  await seedTicket(system, event.id, 3, 'CONFIRMED');
  await seedTicket(system, event.id, 1, 'CANCELLED');
  const cancelledAfterConfirm = await seedTicket(system, event.id, 4, 'CONFIRMED');
  const cancelled = await system.tickets.call('updateTicketStatus', { path: { id: cancelledAfterConfirm.id }, body: { status: 'CANCELLED' } });
  if (!cancelled.ok) throw new Error(`cancel answered ${cancelled.status}`);

  t.test('audit --settle 0 exits 0 on a consistent system after tickets are bought, confirmed and cancelled', async (t) => {
    const result = await cli('audit', '--settle', '0');
    t.equal(result.code, 0, describeRun(result));
    t.match(result.stdout, /^✓ consistent: 1 event, 4 tickets, 2 live holds checked$/m, 'counts in words that agree ("1 event", not "1 events")');
    t.equal(result.stderr, '');
    const json = await cli('--json', 'audit', '--settle', '0');
    t.equal(json.code, 0, describeRun(json));
    t.same(parseJsonOutput<AuditReport>(json), { problems: [], events: 1, tickets: 4, holds: 2 }, '--json gives the report as one document');
  });

  t.test('audit --settle 0 exits 1 and prints the discrepancy when a hold has no ticket behind it; the default settle window leaves a young one alone', async (t) => {
    const holdId = randomUUID();
    const hold = await system.events.call('createHold', { body: { hold_id: holdId, event_id: event.id, quantity: 1, expires_at: inAnHour() } });
    t.equal(hold.status, 201, 'a hold made straight on event-service, with no ticket');

    const result = await cli('audit', '--settle', '0');
    t.equal(result.code, 1, describeRun(result));
    t.match(result.stdout, `hold ${holdId} (HELD, event ${event.id}, 1 seat) has no ticket`, 'names the hold, its state, event and seats');
    t.match(result.stdout, /^1 discrepancy \(1 event, 4 tickets, 3 live holds checked\)$/m, '"1 discrepancy", not "1 discrepancies"');
    const json = await cli('--json', 'audit', '--settle', '0');
    t.equal(json.code, 1, describeRun(json));
    const report = parseJsonOutput<AuditReport>(json);
    t.equal(report.problems.length, 1);
    t.match(report.problems[0], holdId);

    const settled = await cli('audit');
    t.equal(settled.code, 0, `a hold younger than the default 30 s window may be a purchase in flight: ${describeRun(settled)}`);

    const released = await system.events.call('releaseHold', { path: { hold_id: holdId } });
    t.equal(released.status, 200);
    const clean = await cli('audit', '--settle', '0');
    t.equal(clean.code, 0, `consistent again once the hold is released: ${describeRun(clean)}`);
  });
});
