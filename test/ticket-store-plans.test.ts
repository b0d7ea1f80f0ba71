/**
 * The queries ticket-service runs over and over in the background (the sweeper, the reconciler, the
 * release outbox, the waiting list's offers and the webhook dispatcher) reach their rows through an
 * index on SQLite: none reads a whole table that grows with sales, or every row in one state of it,
 * or sorts it, each time it runs (test/helpers/sqlite-plans.ts).
 * (SQLite uses a partial index only where the query states the index's condition itself, not
 * through a bound value: a `fanned_out = ?` scanned every outbox row.)
 */
import t from 'tap';
import { planProblems, recordedStore } from './helpers/sqlite-plans.js';
import { ticketMigrations } from '../ticket-service/store/migrations/index.js';
import type { TicketDatabase } from '../ticket-service/store/schema.js';
import * as tickets from '../ticket-service/store/tickets.js';
import * as waitlist from '../ticket-service/store/waitlist.js';
import * as webhooks from '../ticket-service/store/webhooks.js';

/** Tables that grow with sales; a small table (subscriptions, gates) may be read whole. */
const GROWING = ['tickets', 'idempotency_keys', 'release_outbox', 'claimed_references', 'webhook_events', 'webhook_deliveries', 'waitlist_entries'];

t.test('the background queries of ticket-service reach their rows through an index (SQLite)', async (t) => {
  const { database, db, recorded } = await recordedStore<TicketDatabase>(t, ticketMigrations('sqlite'));
  const now = new Date().toISOString();
  const queries: Array<[name: string, run: () => Promise<unknown>]> = [
    ['reservations that lapsed (sweeper)', () => tickets.selectTicketsByStatusBefore(db, 'RESERVED', 'expires_at', now, 100)],
    ['stale PENDING tickets (sweeper)', () => tickets.selectTicketsByStatusBefore(db, 'PENDING', 'created_at', now, 100)],
    ['interrupted confirms (sweeper)', () => tickets.selectTicketsByStatusBefore(db, 'RESERVED', 'confirming_at', now, 100)],
    ['expired idempotency keys', () => tickets.deleteExpiredIdempotencyKeys(db, now)],
    ['due releases (outbox)', () => tickets.dueReleases(db, now, 100)],
    ['stale waiting-list offers', () => waitlist.staleOfferings(db, now, 100)],
    ['events with someone waiting', () => waitlist.eventsWithWaiting(db, 100)],
    ['an event’s waiting entries', () => waitlist.waitingEntries(db, 1, 100)],
    ['webhook events to fan out', () => webhooks.eventsToFanOut(db, 200)],
    ['due webhook deliveries', () => webhooks.dueDeliveries(db, now, 64, [])],
    ['due webhook deliveries, some endpoints skipped', () => webhooks.dueDeliveries(db, now, 64, [1, 2])],
    ['an endpoint’s next due delivery', () => webhooks.claimNextDue(db, 1, now, now)],
    ['finished deliveries past retention', () => webhooks.deleteFinishedDeliveries(db, now)],
    ['spent webhook events', () => webhooks.deleteSpentEvents(db, now)],
  ];
  for (const [name, run] of queries) {
    recorded.length = 0;
    await run();
    t.ok(recorded.length > 0, `${name}: ran a statement`);
    for (const statement of recorded) t.same(planProblems(database, statement, GROWING), [], `${name}: ${statement.sql.slice(0, 100)}`);
  }
});
