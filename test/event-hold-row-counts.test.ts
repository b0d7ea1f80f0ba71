/**
 * Every conditional update that decides what happens next is judged by the rows it changed, not by
 * what was read before it (DESIGN.md, Store and scale-out). Another replica is simulated: its change
 * is committed on the same database just before the service's next UPDATE of a table runs, which
 * is what that UPDATE sees at READ COMMITTED when the other replica wins the race. On SQLite the
 * change is made on the service's own connection; on PostgreSQL by a second session, as a replica would.
 */
import { EventMetrics } from '../event-service/metrics.js';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type PostgresPool, type PostgresPoolClient, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import t, { type Test } from 'tap';
import { GroupCommitter } from '../platform/store/sqlite/group-commit.js';
import { WithoutRowLocks } from '../platform/store/sqlite/row-locks.js';
import { ReadCache } from '../platform/read-cache.js';
import { migrateToLatest, openSqlite } from '../platform/store/sqlite/store.js';
import type { EventServiceContext } from '../event-service/domain/context.js';
import * as eventsDomain from '../event-service/domain/events.js';
import * as holdsDomain from '../event-service/domain/holds.js';
import { eventMigrations } from '../event-service/store/migrations/index.js';
import type { EventDatabase } from '../event-service/store/schema.js';
import { textSearchFor } from '../event-service/store/search.js';
import { heldHoldCreationInWrite } from '../event-service/store/holds.js';
import { heldHoldCreationInOneStatement } from '../event-service/store/holds-postgres.js';
import { eventTestConfig, tempDir, type TestStore } from './helpers/event-app.js';
import { createTestDatabase, testStores } from './helpers/postgres.js';

/** A statement and its values, with `?` for each value. */
type Statement = [sql: string, ...values: unknown[]];

interface Harness {
  context: EventServiceContext;
  /** Commits `statements` as another replica right before the service's next UPDATE of `table`. */
  beforeNextUpdate(table: 'holds' | 'events', statements: Statement[]): void;
  /** Whether that change has run. */
  replicaActed(): boolean;
  /** Commits `statements` now, outside the service. */
  change(statements: Statement[]): Promise<void>;
  /** The first row of a query, read outside the service. */
  read(sql: string, ...values: unknown[]): Promise<unknown>;
}

/** Runs the replica's pending change if `sql` is the UPDATE it waits for. */
function updateWatcher(run: (statements: Statement[]) => unknown) {
  let pending: { table: string; statements: Statement[] } | undefined;
  let acted = false;
  return {
    before: (sql: string): unknown => {
      if (!pending || !new RegExp(`^update "${pending.table}"`, 'i').test(sql)) return undefined;
      const { statements } = pending;
      pending = undefined;
      acted = true;
      return run(statements);
    },
    arm: (table: string, statements: Statement[]) => {
      pending = { table, statements };
      acted = false;
    },
    acted: () => acted,
  };
}

async function sqliteHarness(t: Test): Promise<Harness> {
  const dir = tempDir(t);
  const config = eventTestConfig(dir);
  const database = openSqlite({ path: join(dir, 'event_data.db'), synchronous: 'NORMAL' });
  const run = (statements: Statement[]) => {
    for (const [sql, ...values] of statements) database.prepare(sql).run(...values);
  };
  const watcher = updateWatcher(run);
  const wrapped: SqliteDatabase = {
    close: () => database.close(),
    prepare: (sql) => {
      const statement = database.prepare(sql);
      return {
        reader: statement.reader,
        all: (parameters) => {
          watcher.before(sql);
          return statement.all(parameters);
        },
        run: (parameters) => {
          watcher.before(sql);
          return statement.run(parameters);
        },
        iterate: (parameters) => statement.iterate(parameters),
      };
    },
  };
  const db = new Kysely<EventDatabase>({ dialect: new SqliteDialect({ database: wrapped }), plugins: [new WithoutRowLocks()] });
  t.teardown(() => db.destroy());
  await migrateToLatest(db, eventMigrations('sqlite'));
  const committer = new GroupCommitter(db);
  const write: EventServiceContext['write'] = (work) => committer.run(work);
  const createHeldHold = heldHoldCreationInWrite(write);
  const context: EventServiceContext = { db, config, search: textSearchFor('sqlite'), write, createHeldHold, searchPages: new ReadCache(), searchResults: new ReadCache() };
  return {
    context,
    beforeNextUpdate: watcher.arm,
    replicaActed: watcher.acted,
    change: async (statements) => run(statements),
    read: async (sql, ...values) => database.prepare(sql).get(...values),
  };
}

/** `?` placeholders as PostgreSQL's `$1`, `$2`, … */
const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${(n += 1)}`);
};

/** As the service's store reads them: bigint ids as numbers. */
const types = { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser };

async function postgresHarness(t: Test): Promise<Harness> {
  const url = await createTestDatabase(t, 'row_counts');
  const config = eventTestConfig(tempDir(t), { EVENT_DATABASE_URL: url });
  const replica = new pg.Client({ connectionString: url, types });
  await replica.connect();
  t.teardown(() => replica.end());
  const run = async (statements: Statement[]) => {
    await replica.query('BEGIN');
    for (const [sql, ...values] of statements) await replica.query(numbered(sql), values);
    await replica.query('COMMIT');
  };
  const watcher = updateWatcher(run);
  const pool = new pg.Pool({ connectionString: url, types });
  // The service's sessions, with the replica's change run (and committed) just before the UPDATE it waits for.
  const watched: PostgresPool = {
    connect: async () => {
      const client = await pool.connect();
      const query = async (sql: string, values: ReadonlyArray<unknown>) => {
        await watcher.before(sql);
        return client.query(sql, [...values]);
      };
      return { query, release: () => client.release() } as unknown as PostgresPoolClient;
    },
    end: () => pool.end(),
  };
  const db = new Kysely<EventDatabase>({ dialect: new PostgresDialect({ pool: watched }) });
  t.teardown(() => db.destroy());
  const migrator = new Migrator({ db: db as unknown as Kysely<unknown>, provider: { getMigrations: async () => eventMigrations('postgres') } });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
  const write: EventServiceContext['write'] = (work) => db.transaction().execute(work);
  const createHeldHold = heldHoldCreationInOneStatement(db, { writeStatement: (statement) => db.executeQuery(statement), metrics: new EventMetrics() });
  const context: EventServiceContext = { db, config, search: textSearchFor('postgres'), write, createHeldHold, searchPages: new ReadCache(0), searchResults: new ReadCache(0) };
  return {
    context,
    beforeNextUpdate: watcher.arm,
    replicaActed: watcher.acted,
    change: run,
    read: async (sql, ...values) => (await replica.query(numbered(sql), values)).rows[0],
  };
}

const harness = (t: Test, store: TestStore): Promise<Harness> => (store === 'postgres' ? postgresHarness(t) : sqliteHarness(t));

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

async function eventWithTwoHolds(h: Harness, total = 10) {
  const event = await eventsDomain.createEvent(h.context, { name: 'Replica Night', event_date: '2027-06-15T20:00:00Z', total_tickets: total });
  const hold = async () => (await holdsDomain.createHold(h.context, { hold_id: randomUUID(), event_id: event.id, quantity: 2, expires_at: inAnHour() })).hold;
  return { event, target: await hold(), other: await hold() };
}

/** What another replica's release of the hold writes: the hold RELEASED and its seats back. */
function releasedElsewhere(holdId: string, eventId: number, quantity: number): Statement[] {
  return [
    [`UPDATE holds SET state = 'RELEASED', updated_at = ? WHERE hold_id = ? AND state = 'HELD'`, new Date().toISOString(), holdId],
    ['UPDATE events SET held_tickets = held_tickets - ?, available_tickets = available_tickets + ? WHERE id = ?', quantity, quantity, eventId],
  ];
}

function counters(h: Harness, eventId: number): Promise<unknown> {
  return h.read('SELECT total_tickets, available_tickets, held_tickets, sold_tickets FROM events WHERE id = ?', eventId);
}

async function holdState(h: Harness, holdId: string): Promise<unknown> {
  return ((await h.read('SELECT state FROM holds WHERE hold_id = ?', holdId)) as { state: string }).state;
}

// On PostgreSQL updateEvent reads the event FOR UPDATE, so no replica can change it in between.
t.test('a total_tickets change another replica made between the read and the update is not counted twice', async (t) => {
  const h = await harness(t, 'sqlite');
  const event = await eventsDomain.createEvent(h.context, { name: 'Growing Gala', event_date: '2027-06-15T20:00:00Z', total_tickets: 10 });
  h.beforeNextUpdate('events', [['UPDATE events SET total_tickets = 20, available_tickets = available_tickets + 10, version = version + 1 WHERE id = ?', event.id]]);

  const updated = await eventsDomain.updateEvent(h.context, event.id, { total_tickets: 15 }, undefined);
  t.ok(h.replicaActed(), 'the other replica raised it to 20 first');
  t.equal(updated.total_tickets, 15);
  t.equal(updated.available_tickets, 15, 'available follows the total it replaced (20 → 15), not the one read before (10 → 15)');
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('a hold that another replica released between the read and the update is not released twice: its seats come back once', async (t) => {
      const h = await harness(t, store);
      const { event, target } = await eventWithTwoHolds(h);
      h.beforeNextUpdate('holds', releasedElsewhere(target.hold_id, event.id, 2));

      const answer = await holdsDomain.releaseHold(h.context, target.hold_id);
      t.ok(h.replicaActed(), 'the other replica released it first');
      t.equal(answer.state, 'RELEASED', 'the release answers with the released hold');
      t.same(await counters(h, event.id), { total_tickets: 10, available_tickets: 8, held_tickets: 2, sold_tickets: 0 }, 'only the other hold is counted: its 2 seats were returned once');
    });

    t.test('a hold that another replica released between the read and the commit is not committed: 409 hold-state and no seat is sold', async (t) => {
      const h = await harness(t, store);
      const { event, target } = await eventWithTwoHolds(h);
      h.beforeNextUpdate('holds', releasedElsewhere(target.hold_id, event.id, 2));

      const refusal = await holdsDomain.commitHold(h.context, target.hold_id).catch((error: unknown) => error);
      t.match(refusal, { kind: 'hold-state' }, 'the commit is refused');
      t.ok(h.replicaActed(), 'the other replica released it first');
      t.equal(await holdState(h, target.hold_id), 'RELEASED');
      t.same(await counters(h, event.id), { total_tickets: 10, available_tickets: 8, held_tickets: 2, sold_tickets: 0 }, 'nothing moved to sold');
    });

    t.test('a hold that another replica expired between the read and the release is not released: its seats come back once', async (t) => {
      const h = await harness(t, store);
      const { event, target } = await eventWithTwoHolds(h);
      h.beforeNextUpdate('holds', [
        [`UPDATE holds SET state = 'EXPIRED', updated_at = ? WHERE hold_id = ? AND state = 'HELD'`, new Date().toISOString(), target.hold_id],
        ['UPDATE events SET held_tickets = held_tickets - 2, available_tickets = available_tickets + 2 WHERE id = ?', event.id],
      ]);

      const answer = await holdsDomain.releaseHold(h.context, target.hold_id);
      t.ok(h.replicaActed(), 'the other replica expired it first');
      t.equal(answer.state, 'EXPIRED', 'the release answers with the hold as the replica left it');
      t.same(await counters(h, event.id), { total_tickets: 10, available_tickets: 8, held_tickets: 2, sold_tickets: 0 }, 'its seats were returned once');
    });

    t.test('a seat counter that refuses to move with its hold rolls the hold change back instead of leaving a wrong count', async (t) => {
      const h = await harness(t, store);
      const { event, target } = await eventWithTwoHolds(h);
      // The counters no longer match the holds: HELD holds of 4 seats, held_tickets 1.
      await h.change([['UPDATE events SET held_tickets = 1, available_tickets = 9 WHERE id = ?', event.id]]);
      const before = await counters(h, event.id);

      await t.rejects(holdsDomain.releaseHold(h.context, target.hold_id), 'the release fails');
      t.equal(await holdState(h, target.hold_id), 'HELD', 'and the hold is still HELD');
      await t.rejects(holdsDomain.commitHold(h.context, target.hold_id), 'the commit fails');
      t.equal(await holdState(h, target.hold_id), 'HELD', 'and the hold is still HELD');
      await t.rejects(holdsDomain.expireLapsedHolds(h.context, new Date(Date.now() + 86_400_000)), 'the expiry sweep fails');
      t.equal(await holdState(h, target.hold_id), 'HELD', 'and the hold is still HELD');
      t.same(await counters(h, event.id), before, 'no counter moved');
    });
  });
}
