import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';

/**
 * The waiting-list gate of DESIGN.md: seats kept back from the public for an event's waiting list,
 * the sequence of the last value ticket-service sent (bigint on PostgreSQL, as the API allows up to
 * 2^53 − 1), and whether the event has a waiting list at all (0/1 on both engines: better-sqlite3
 * binds no booleans).
 */
export const forDialect = (dialect: StoreDialect): Migration => ({
  up: async (db: Kysely<unknown>) => {
    const sequence = dialect === 'postgres' ? ('bigint' as const) : ('integer' as const);
    await db.schema
      .alterTable('events')
      .addColumn('waitlist_reserved_tickets', 'integer', (c) => c.notNull().defaultTo(0).check(sql`waitlist_reserved_tickets >= 0`))
      .execute();
    await db.schema
      .alterTable('events')
      .addColumn('waitlist_sequence', sequence, (c) => c.notNull().defaultTo(0).check(sql`waitlist_sequence >= 0`))
      .execute();
    await db.schema
      .alterTable('events')
      .addColumn('waitlist_enabled', 'integer', (c) => c.notNull().defaultTo(1).check(sql`waitlist_enabled IN (0, 1)`))
      .execute();
  },
  down: async (db: Kysely<unknown>) => {
    for (const column of ['waitlist_enabled', 'waitlist_sequence', 'waitlist_reserved_tickets']) await db.schema.alterTable('events').dropColumn(column).execute();
  },
});
