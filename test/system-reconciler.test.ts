import t from 'tap';
import { testStores } from './helpers/postgres.js';
import { eventually, startSystem, type TestSystem } from './helpers/system.js';
import { createEvent, getEvent, getHold, holdsOf, logsOf, raw, reserve, sleep, ticketBody, ticketsOf, uuid, whileFrozen } from './helpers/system-api.js';
import { metricValue, parseMetrics } from '../platform/metrics-text.js';

const SETTLE_SECONDS = 1;
// Short, so that the windows these tests wait out (2 × timeout + 1 s) stay short.
const TIMEOUT_SECONDS = 2;

/** How many times ticket-service's reconciler did `action` since it started, from its /metrics. */
async function reconcilerActions(system: TestSystem, action: string): Promise<number> {
  const answer = await raw(`${system.ticket.url}/metrics`);
  if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}`);
  return metricValue(parseMetrics(String(answer.json)), 'eventsync_reconciler_actions_total', { action });
}

for (const store of await testStores()) {
  t.test(`the reconciler on ${store}`, async (t) => {
    const system = await startSystem(t, { store, env: { RECONCILE_SETTLE_SECONDS: String(SETTLE_SECONDS), EVENT_SERVICE_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS) } });

    t.test('a hold with no ticket behind it is released by the reconciler once older than the settle window, and not before', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const releasedBefore = await reconcilerActions(system, 'released_orphan_hold');
      const holdId = uuid();
      const created = await system.events.call('createHold', {
        body: { hold_id: holdId, event_id: event.id, quantity: 3, expires_at: new Date(Date.now() + 900_000).toISOString() },
      });
      t.equal(created.status, 201, 'the hold is created directly on event-service');
      const fresh = await getHold(system, holdId);
      t.equal(fresh?.state, 'HELD', 'right after creation it is still HELD');
      t.equal((await getEvent(system, event.id)).held_tickets, 3, 'its seats are held');

      const released = await eventually(async () => (await getHold(system, holdId))?.state === 'RELEASED', 10_000);
      t.ok(released, 'the reconciler releases it');
      const hold = await getHold(system, holdId);
      const ageAtRelease = Date.parse(hold?.updated_at ?? '') - Date.parse(hold?.created_at ?? '');
      t.ok(ageAtRelease >= SETTLE_SECONDS * 1000, `not before the settle window (released ${ageAtRelease} ms after creation)`);
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets], [10, 0], 'its seats come back');
      // Counted once the release call returns, a moment after event-service shows the hold released.
      t.ok(await eventually(async () => (await reconcilerActions(system, 'released_orphan_hold')) > releasedBefore), 'the release is counted');
      t.equal((await reconcilerActions(system, 'released_orphan_hold')) - releasedBefore, 1, 'one orphan hold released, in the metrics');
      const again = await system.events.call('createHold', {
        body: { hold_id: holdId, event_id: event.id, quantity: 3, expires_at: new Date(Date.now() + 900_000).toISOString() },
      });
      t.equal(again.status, 409, 'a released hold never comes back');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('a purchase that left its PENDING ticket (event-service down) is abandoned by the reconciler once older than the abandonment window, event-service or not, once', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const abandonedBefore = await reconcilerActions(system, 'abandoned_purchase');
      await system.stop('event-service');
      const failed = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 2), headers: { 'idempotency-key': uuid() } });
      t.equal(failed.status, 503, 'a purchase with a key answers 503 and leaves its PENDING ticket for a retry');
      // Instead of waiting out the abandonment window (2 × timeout + 1 s): the ticket is made older than it.
      const pastAbandonment = new Date(Date.now() - (2 * TIMEOUT_SECONDS + 1) * 1000 - 500).toISOString();
      t.equal(await system.sql('ticket-service', "UPDATE tickets SET created_at = ? WHERE event_id = ? AND status = 'PENDING'", pastAbandonment, event.id), 1, 'the PENDING ticket is made older than the window');
      t.ok(await eventually(async () => (await reconcilerActions(system, 'abandoned_purchase')) > abandonedBefore), 'the reconciler abandons it (its release waits in the outbox)');
      t.equal((await reconcilerActions(system, 'abandoned_purchase')) - abandonedBefore, 1, 'one abandoned purchase, in the metrics');
      await system.restart('event-service');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('the reconciler leaves the holds of RESERVED and CONFIRMED tickets alone', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const reserved = await reserve(system, event.id, 2);
      const confirmed = await reserve(system, event.id, 3);
      t.equal((await system.tickets.call('updateTicketStatus', { path: { id: confirmed.id }, body: { status: 'CONFIRMED' } })).status, 200);
      // Instead of waiting out the windows (2 × timeout + 1 s for a PENDING ticket, the settle window for
      // a hold): the tickets are made older than every window, and a hold with no ticket, taken after
      // theirs, shows when the reconciler has judged holds as old as theirs (it releases that one).
      const pastEveryWindow = new Date(Date.now() - (SETTLE_SECONDS + 2 * TIMEOUT_SECONDS + 1) * 1000 - 500).toISOString();
      t.equal(await system.sql('ticket-service', 'UPDATE tickets SET created_at = ? WHERE id IN (?, ?)', pastEveryWindow, reserved.id, confirmed.id), 2, 'both tickets are made older than every window');
      const control = uuid();
      const orphan = await system.events.call('createHold', { body: { hold_id: control, event_id: event.id, quantity: 1, expires_at: new Date(Date.now() + 900_000).toISOString() } });
      t.equal(orphan.status, 201, 'a hold with no ticket behind it is taken after theirs');
      t.ok(await eventually(async () => (await getHold(system, control))?.state === 'RELEASED', 15_000), 'the reconciler has released it: it has judged holds as old as theirs');
      t.equal((await getHold(system, reserved.reference))?.state, 'HELD', 'the RESERVED ticket keeps its HELD hold');
      t.equal((await getHold(system, confirmed.reference))?.state, 'COMMITTED', 'the CONFIRMED ticket keeps its COMMITTED hold');
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets, current.sold_tickets], [5, 2, 3]);
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('confirms racing the reconciler never lose a sold seat', async (t) => {
      const event = await createEvent(system, { total_tickets: 150 });
      const tickets = [];
      for (let batch = 0; batch < 3; batch += 1) tickets.push(...(await Promise.all(Array.from({ length: 50 }, () => reserve(system, event.id, 1)))));
      // Older than the settle window, so the reconciler lists all these holds on every round while they are confirmed.
      await sleep(SETTLE_SECONDS * 1000 + 200);
      const answers = await Promise.all(tickets.map((ticket) => system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } })));
      t.same(
        answers.filter((a) => a.status !== 200).map((a) => a.status),
        [],
        'every confirm answers 200',
      );
      await sleep(1000);
      const current = await getEvent(system, event.id);
      t.equal(current.sold_tickets, 150, 'all 150 seats are sold');
      t.equal(current.available_tickets, 0, 'none is back on sale');
      const committed = await holdsOf(system, event.id, 'COMMITTED');
      t.equal(committed.length, 150, 'every confirmed ticket has a COMMITTED hold');
      const { tickets: listed } = await ticketsOf(system, event.id);
      t.equal(listed.filter((x) => x.status === 'CONFIRMED').length, 150, 'all 150 tickets are CONFIRMED');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('a confirm that committed the hold but crashed before recording it is completed by the reconciler', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const ticket = await reserve(system, event.id, 2);
      await whileFrozen(system, 'event-service', async () => {
        // The confirm marks the ticket and sends the commit, which waits in event-service's socket; then ticket-service dies.
        const confirm = system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED', payment_reference: 'pay_crash' } }).catch((error: unknown) => error);
        await sleep(500);
        await system.stop('ticket-service', 'SIGKILL');
        await confirm;
      });
      const committed = await eventually(async () => (await getHold(system, ticket.reference))?.state === 'COMMITTED', 5_000);
      t.ok(committed, 'the commit reached event-service after ticket-service died');
      await system.restart('ticket-service');
      const completed = await eventually(async () => {
        const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
        return read.ok && read.body.status === 'CONFIRMED';
      }, 15_000);
      t.ok(completed, 'after the restart the reconciler completes the ticket as CONFIRMED');
      const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.equal(read.ok && read.body.payment_reference, 'pay_crash', 'with the payment reference the confirm carried');
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets, current.sold_tickets], [8, 0, 2], 'its seats are sold');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });
  });
}

// Log levels are the same whatever the store: SQLite only.
t.test('routine polling logs at debug: idle reconciler rounds add no info line to either service\'s log, while an action does', async (t) => {
  const system = await startSystem(t, { env: { SWEEP_INTERVAL_SECONDS: '0.1', RECONCILE_SETTLE_SECONDS: '0' } });
  const event = await createEvent(system, { total_tickets: 10 });
  await reserve(system, event.id, 1);
  const infoLines = (name: 'event-service' | 'ticket-service', from: number) =>
    logsOf(system, name)
      .slice(from)
      .split('\n')
      .filter((line) => line.includes('"level":30'));
  // The purchase's own request lines are written by now.
  await eventually(async () => logsOf(system, 'ticket-service').includes('"statusCode":201'));
  const marks = { event: logsOf(system, 'event-service').length, ticket: logsOf(system, 'ticket-service').length };
  // About twenty rounds, each listing the holds at event-service.
  await sleep(2000);
  t.same(infoLines('event-service', marks.event), [], 'event-service logged nothing at info while polled');
  t.same(infoLines('ticket-service', marks.ticket), [], 'ticket-service logged nothing at info while polling');

  const orphan = uuid();
  const created = await system.events.call('createHold', { body: { hold_id: orphan, event_id: event.id, quantity: 1, expires_at: new Date(Date.now() + 60_000).toISOString() } });
  t.ok(created.ok, 'a hold with no ticket behind it');
  const released = await eventually(async () => logsOf(system, 'ticket-service').includes('released an orphan hold'));
  t.ok(released, 'releasing it is an action, logged at info');
});
