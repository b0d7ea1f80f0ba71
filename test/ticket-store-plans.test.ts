/**
 * The queries ticket-service runs over and over in the background (the sweeper, the reconciler, the
 * release outbox, the waiting list's offers and the webhook dispatcher) reach their rows through an
 * index on SQLite: none reads a whole table that grows with sales, or sorts it, each time it runs.
 * Each store function runs on a migrated database while its statements are recorded; SQLite's
 * `EXPLAIN QUERY PLAN` of each, with the values it ran with, must not scan or sort such a table.
 * (SQLite uses a partial index only where the query states the index's condition itself, not
 * through a bound value: a `fanned_out = ?` scanned every outbox row.)
 */
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase } from 'kysely';
import t from 'tap';
import { migrateToLatest } from '../platform/store/sqlite/store.js';
import { WithoutRowLocks } from '../platform/store/sqlite/row-locks.js';
import { ticketMigrations } from '../ticket-service/store/migrations/index.js';
import type { TicketDatabase } from '../ticket-service/store/schema.js';
import * as tickets from '../ticket-service/store/tickets.js';
import * as waitlist from '../ticket-service/store/waitlist.js';
import * as webhooks from '../ticket-service/store/webhooks.js';

/** Tables that grow with sales; a small table (subscriptions, gates) may be read whole. */
const GROWING = ['tickets', 'idempotency_keys', 'release_outbox', 'claimed_references', 'webhook_events', 'webhook_deliveries', 'waitlist_entries'];

type Recorded = { sql: string; values: unknown[] };

function recordingDatabase(database: Database.Database, recorded: Recorded[]): SqliteDatabase {
  return {
    close: () => database.close(),
    prepare: (sql: string) => {
      const statement = database.prepare(sql);
      const record = (values: unknown[]) => recorded.push({ sql, values });
      return {
        reader: statement.reader,
        all: (values: readonly unknown[]) => (record([...values]), statement.all(...values)),
        run: (values: readonly unknown[]) => (record([...values]), statement.run(...values)),
        iterate: (values: readonly unknown[]) => (record([...values]), statement.iterate(...values)),
      };
    },
  };
}

/**
 * What is wrong with a statement's plan: the lines that scan a growing table (other than through a
 * partial index, which holds only the rows the query is after), or sort rows (all that match, before
 * the limit applies).
 */
function planProblems(database: Database.Database, { sql, values }: Recorded): string[] {
  const partial = (database.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'`).all() as Array<{ name: string }>).map((row) => row.name);
  const plan = database.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...values) as Array<{ detail: string }>;
  const details = plan.map((row) => row.detail);
  const wholeScan = (detail: string) => GROWING.some((table) => new RegExp(`^SCAN ${table}( |$)`).test(detail)) && !partial.some((index) => detail.endsWith(` INDEX ${index}`));
  const problems = details.filter((detail) => wholeScan(detail) || detail.startsWith('USE TEMP B-TREE'));
  return problems.map((problem) => `${problem} (plan: ${details.join(' | ')})`);
}

t.test('the background queries of ticket-service reach their rows through an index (SQLite)', async (t) => {
  const database = new Database(':memory:');
  const recorded: Recorded[] = [];
  const db = new Kysely<TicketDatabase>({ dialect: new SqliteDialect({ database: recordingDatabase(database, recorded) }), plugins: [new WithoutRowLocks()] });
  t.teardown(() => db.destroy());
  await migrateToLatest(db, ticketMigrations('sqlite'));
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
    for (const statement of recorded) t.same(planProblems(database, statement), [], `${name}: ${statement.sql.slice(0, 100)}`);
  }
});
