/**
 * GET /seat-ledgers: per event, the seat counters beside the sums of its hold and adjustment rows,
 * read together, so DESIGN.md's invariant can be checked from outside with no settle window.
 */
import t from 'tap';
import { ADMIN_TOKEN, adminAuth, serviceAuth, startEventApp } from './helpers/event-app.js';
import { assertProblem, createHold, followNext, holdAction, linkTarget, postEvent } from './helpers/event-api.js';
import type { components } from '../openapi/generated/event-service.js';
import { seatLedgerProblems } from '../platform/audit.js';
import { testStores } from './helpers/postgres.js';

type SeatLedger = components['schemas']['SeatLedger'];

t.test('the audit names each counter that differs from the sum of its rows', async (t) => {
  const consistent: SeatLedger = { event_id: 4, total_tickets: 20, available_tickets: 12, held_tickets: 2, sold_tickets: 3, manual_reserved_tickets: 3, waitlist_reserved_tickets: 0, waitlist_sequence: 0, sums: { held: 2, committed: 3, manual: 3 } };
  t.same(seatLedgerProblems(consistent), []);
  t.same(seatLedgerProblems({ ...consistent, held_tickets: 3, available_tickets: 11 }), [
    'event 4: available_tickets 11 ≠ total 20 − HELD holds 2 − COMMITTED holds 3 − manual adjustments 3 = 12',
    'event 4: held_tickets is 3 but its HELD holds add up to 2',
  ]);
  t.same(seatLedgerProblems({ ...consistent, sums: { held: 2, committed: 3, manual: 4 } }), [
    'event 4: available_tickets 12 ≠ total 20 − HELD holds 2 − COMMITTED holds 3 − manual adjustments 4 = 11',
    'event 4: manual_reserved_tickets is 3 but its manual adjustments add up to 4',
  ]);
  t.same(seatLedgerProblems({ ...consistent, sold_tickets: 4 }), ['event 4: sold_tickets is 4 but its COMMITTED holds add up to 3']);
  t.same(seatLedgerProblems({ ...consistent, total_tickets: 7, available_tickets: -1 }), ['event 4: available_tickets is negative (-1)'], 'seats given out that do not exist');
});

t.test('seat ledgers need the service or the admin token when ADMIN_TOKEN is set: none or a wrong one is 401', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  assertProblem(t, await app.inject({ method: 'GET', url: '/seat-ledgers' }), 401, 'unauthorized');
  assertProblem(t, await app.inject({ method: 'GET', url: '/seat-ledgers', headers: { authorization: 'Bearer not-the-right-token-123456' } }), 401, 'unauthorized');
  t.equal((await app.inject({ method: 'GET', url: '/seat-ledgers', headers: serviceAuth })).statusCode, 200, 'the service token may read them');
  t.equal((await app.inject({ method: 'GET', url: '/seat-ledgers', headers: adminAuth })).statusCode, 200, 'and the admin token');
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('a seat ledger shows the counters beside the seats of HELD and COMMITTED holds and the sum of manual adjustments; released holds count for nothing', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const busy = await postEvent(app, { total_tickets: 20 });
      const quiet = await postEvent(app, { total_tickets: 7 });
      await createHold(app, busy.id, 2);
      const sold = await createHold(app, busy.id, 3);
      t.equal((await holdAction(app, sold.hold_id, 'commit')).statusCode, 200);
      const released = await createHold(app, busy.id, 4);
      t.equal((await holdAction(app, released.hold_id, 'release')).statusCode, 200);
      for (const [operation, ticket_count] of [['reserve', 5], ['release', 2]] as const) {
        const adjusted = await app.inject({ method: 'PUT', url: `/events/${busy.id}/tickets`, headers: serviceAuth, payload: { operation, ticket_count } });
        t.equal(adjusted.statusCode, 200);
      }

      const response = await app.inject({ method: 'GET', url: '/seat-ledgers', headers: serviceAuth });
      t.equal(response.statusCode, 200);
      t.equal(response.headers['x-total-count'], '2');
      const ledgers = response.json<SeatLedger[]>();
      t.same(ledgers, [
        { event_id: busy.id, total_tickets: 20, available_tickets: 12, held_tickets: 2, sold_tickets: 3, manual_reserved_tickets: 3, waitlist_reserved_tickets: 0, waitlist_sequence: 0, sums: { held: 2, committed: 3, manual: 3 } },
        { event_id: quiet.id, total_tickets: 7, available_tickets: 7, held_tickets: 0, sold_tickets: 0, manual_reserved_tickets: 0, waitlist_reserved_tickets: 0, waitlist_sequence: 0, sums: { held: 0, committed: 0, manual: 0 } },
      ]);
      t.same(ledgers.flatMap(seatLedgerProblems), [], 'and the audit finds them consistent');

      const one = await app.inject({ method: 'GET', url: `/seat-ledgers?event_id=${quiet.id}`, headers: serviceAuth });
      t.same(one.json<SeatLedger[]>().map((l) => l.event_id), [quiet.id], 'event_id picks one event');
      t.equal(one.headers['x-total-count'], '1');
    });

    t.test('seat ledgers page by event id with Link and X-Total-Count: 5 events at limit=2 are visited exactly once', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const ids: number[] = [];
      for (let i = 0; i < 5; i += 1) ids.push((await postEvent(app, { total_tickets: 10 + i })).id);
      const first = await app.inject({ method: 'GET', url: '/seat-ledgers?limit=2', headers: serviceAuth });
      t.equal(first.headers['x-total-count'], '5');
      const next = linkTarget(first, 'next');
      t.ok(next, 'the first page links to the next');
      t.equal(linkTarget(first, 'prev'), undefined);
      const second = await app.inject({ method: 'GET', url: String(next), headers: serviceAuth });
      const back = linkTarget(second, 'prev');
      t.ok(back, 'the second page links back');
      t.same((await app.inject({ method: 'GET', url: String(back), headers: serviceAuth })).json<SeatLedger[]>(), first.json<SeatLedger[]>(), 'and back leads to the first page');
      const all = await followNext<SeatLedger>(app, '/seat-ledgers?limit=2', serviceAuth);
      t.equal(all.pages, 3);
      t.same(all.items.map((l) => l.event_id), ids, 'every event once, in id order');
      assertProblem(t, await app.inject({ method: 'GET', url: '/seat-ledgers?cursor=bm90LWEtY3Vyc29y', headers: serviceAuth }), 400, 'validation');
    });
  });
}
