/**
 * Every conditional update that decides what happens next is judged by the rows it changed, not by
 * what was read before it (DESIGN.md, Store and scale-out). Another replica is simulated: its change
 * is committed on the same database just before the service's next UPDATE of a table runs, which
 * is what that UPDATE sees at READ COMMITTED when the other replica wins the race.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase } from 'kysely';
import t, { type Test } from 'tap';
import { GroupCommitter } from '../platform/store/sqlite/group-commit.js';
import { ReadCache } from '../platform/read-cache.js';
import { migrateToLatest, openSqlite } from '../platform/store/sqlite/store.js';
import type { EventServiceContext } from '../event-service/domain/context.js';
import * as eventsDomain from '../event-service/domain/events.js';
import * as holdsDomain from '../event-service/domain/holds.js';
import { eventMigrations } from '../event-service/store/migrations/index.js';
import type { EventDatabase } from '../event-service/store/schema.js';
import { textSearchFor } from '../event-service/store/search.js';
import { eventTestConfig, tempDir } from './helpers/event-app.js';

interface Harness {
  context: EventServiceContext;
  database: Database.Database;
  /** Runs `change` (as another replica) right before the service's next UPDATE of `table`. */
  beforeNextUpdate(table: 'holds' | 'events', change: () => void): void;
  /** Whether that change has run. */
  replicaActed(): boolean;
}

async function harness(t: Test): Promise<Harness> {
  const dir = tempDir(t);
  const config = eventTestConfig(dir);
  const database = openSqlite({ path: join(dir, 'event_data.db'), synchronous: 'NORMAL' });
  let pending: { table: string; change: () => void } | undefined;
  let acted = false;
  const beforeStatement = (sql: string) => {
    if (!pending || !new RegExp(`^update "${pending.table}"`, 'i').test(sql)) return;
    const { change } = pending;
    pending = undefined;
    change();
    acted = true;
  };
  const wrapped: SqliteDatabase = {
    close: () => database.close(),
    prepare: (sql) => {
      const statement = database.prepare(sql);
      return {
        reader: statement.reader,
        all: (parameters) => {
          beforeStatement(sql);
          return statement.all(parameters);
        },
        run: (parameters) => {
          beforeStatement(sql);
          return statement.run(parameters);
        },
        iterate: (parameters) => statement.iterate(parameters),
      };
    },
  };
  const db = new Kysely<EventDatabase>({ dialect: new SqliteDialect({ database: wrapped }) });
  t.teardown(() => db.destroy());
  await migrateToLatest(db, eventMigrations('sqlite'));
  const committer = new GroupCommitter(db);
  const context: EventServiceContext = { db, config, search: textSearchFor('sqlite'), write: (work) => committer.run(work), searchPages: new ReadCache(), searchResults: new ReadCache() };
  return {
    context,
    database,
    beforeNextUpdate: (table, change) => {
      pending = { table, change };
      acted = false;
    },
    replicaActed: () => acted,
  };
}

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

async function eventWithTwoHolds(h: Harness, total = 10) {
  const event = await eventsDomain.createEvent(h.context, { name: 'Replica Night', event_date: '2027-06-15T20:00:00Z', total_tickets: total });
  const hold = async () => (await holdsDomain.createHold(h.context, { hold_id: randomUUID(), event_id: event.id, quantity: 2, expires_at: inAnHour() })).hold;
  return { event, target: await hold(), other: await hold() };
}

/** What another replica's release of the hold writes: the hold RELEASED and its seats back. */
function releasedElsewhere(database: Database.Database, holdId: string, eventId: number, quantity: number): () => void {
  return () => {
    database.prepare(`UPDATE holds SET state = 'RELEASED', updated_at = ? WHERE hold_id = ? AND state = 'HELD'`).run(new Date().toISOString(), holdId);
    database.prepare('UPDATE events SET held_tickets = held_tickets - ?, available_tickets = available_tickets + ? WHERE id = ?').run(quantity, quantity, eventId);
  };
}

function counters(h: Harness, eventId: number) {
  return h.database.prepare('SELECT total_tickets, available_tickets, held_tickets, sold_tickets FROM events WHERE id = ?').get(eventId);
}

function holdState(h: Harness, holdId: string): unknown {
  return (h.database.prepare('SELECT state FROM holds WHERE hold_id = ?').get(holdId) as { state: string }).state;
}

t.test('a hold that another replica released between the read and the update is not released twice: its seats come back once', async (t) => {
  const h = await harness(t);
  const { event, target } = await eventWithTwoHolds(h);
  h.beforeNextUpdate('holds', releasedElsewhere(h.database, target.hold_id, event.id, 2));

  const answer = await holdsDomain.releaseHold(h.context, target.hold_id);
  t.ok(h.replicaActed(), 'the other replica released it first');
  t.equal(answer.state, 'RELEASED', 'the release answers with the released hold');
  t.same(counters(h, event.id), { total_tickets: 10, available_tickets: 8, held_tickets: 2, sold_tickets: 0 }, 'only the other hold is counted: its 2 seats were returned once');
});

t.test('a hold that another replica released between the read and the commit is not committed: 409 hold-state and no seat is sold', async (t) => {
  const h = await harness(t);
  const { event, target } = await eventWithTwoHolds(h);
  h.beforeNextUpdate('holds', releasedElsewhere(h.database, target.hold_id, event.id, 2));

  const refusal = await holdsDomain.commitHold(h.context, target.hold_id).catch((error: unknown) => error);
  t.match(refusal, { kind: 'hold-state' }, 'the commit is refused');
  t.ok(h.replicaActed(), 'the other replica released it first');
  t.equal(holdState(h, target.hold_id), 'RELEASED');
  t.same(counters(h, event.id), { total_tickets: 10, available_tickets: 8, held_tickets: 2, sold_tickets: 0 }, 'nothing moved to sold');
});

t.test('a total_tickets change another replica made between the read and the update is not counted twice', async (t) => {
  const h = await harness(t);
  const event = await eventsDomain.createEvent(h.context, { name: 'Growing Gala', event_date: '2027-06-15T20:00:00Z', total_tickets: 10 });
  h.beforeNextUpdate('events', () => {
    h.database.prepare('UPDATE events SET total_tickets = 20, available_tickets = available_tickets + 10, version = version + 1 WHERE id = ?').run(event.id);
  });

  const updated = await eventsDomain.updateEvent(h.context, event.id, { total_tickets: 15 }, undefined);
  t.ok(h.replicaActed(), 'the other replica raised it to 20 first');
  t.equal(updated.total_tickets, 15);
  t.equal(updated.available_tickets, 15, 'available follows the total it replaced (20 → 15), not the one read before (10 → 15)');
});

t.test('a seat counter that refuses to move with its hold rolls the hold change back instead of leaving a wrong count', async (t) => {
  const h = await harness(t);
  const { event, target } = await eventWithTwoHolds(h);
  // The counters no longer match the holds: HELD holds of 4 seats, held_tickets 1.
  h.database.prepare('UPDATE events SET held_tickets = 1, available_tickets = 9 WHERE id = ?').run(event.id);
  const before = counters(h, event.id);

  await t.rejects(holdsDomain.releaseHold(h.context, target.hold_id), 'the release fails');
  t.equal(holdState(h, target.hold_id), 'HELD', 'and the hold is still HELD');
  await t.rejects(holdsDomain.commitHold(h.context, target.hold_id), 'the commit fails');
  t.equal(holdState(h, target.hold_id), 'HELD', 'and the hold is still HELD');
  await t.rejects(holdsDomain.expireLapsedHolds(h.context, new Date(Date.now() + 86_400_000)), 'the expiry sweep fails');
  t.equal(holdState(h, target.hold_id), 'HELD', 'and the hold is still HELD');
  t.same(counters(h, event.id), before, 'no counter moved');
});
